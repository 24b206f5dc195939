"""The one sampling rule: app defaults < conversation settings < per-request overrides."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from app.engine.types import Sampling
from app.errors import SettingsError

SAMPLING_NAMES: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Sampling))


def resolve_sampling(app: Mapping[str, Any] | None, conversation: Mapping[str, Any] | None = None,
                     request: Mapping[str, Any] | None = None) -> Sampling:
    """Lay the conversation's settings over the app's, and the request's over both.

    Stored layers (app settings, a conversation) may hold names an older or newer version
    wrote: those are ignored. A request naming an unknown setting is refused, and any value out
    of range is refused with where it came from.
    """
    values: dict[str, Any] = {}
    for where, layer in (("the app settings", app), ("this conversation's settings", conversation)):
        known = {k: v for k, v in (layer or {}).items() if k in SAMPLING_NAMES}
        try:
            Sampling.from_dict({**values, **known})
        except SettingsError as err:
            raise SettingsError(f"{err} (in {where}; fix it in Settings)") from err
        values.update(known)
    return Sampling.from_dict({**values, **(request or {})})
