"""The one sampling rule: app defaults < conversation settings < per-request overrides."""

from __future__ import annotations

import pytest

from app.chat.sampling import resolve_sampling
from app.engine.types import Sampling
from app.errors import SettingsError


def test_layers_override_in_order() -> None:
    app = {"temperature": 0.6, "top_p": 0.9, "top_k": 40}
    conv = {"temperature": 0.3, "top_k": 10}
    got = resolve_sampling(app, conv, {"temperature": 0.1})
    assert (got.temperature, got.top_k, got.top_p) == (0.1, 10, 0.9)
    assert resolve_sampling(app, conv) == Sampling(temperature=0.3, top_p=0.9, top_k=10)
    assert resolve_sampling(app) == Sampling(temperature=0.6, top_p=0.9, top_k=40)
    assert resolve_sampling(None) == Sampling()


def test_stored_layers_ignore_unknown_names_but_requests_may_not() -> None:
    assert resolve_sampling({"temperature": 0.5, "mirostat": 2}, {"old_knob": 1}).temperature == 0.5
    with pytest.raises(SettingsError, match="Unknown sampling setting"):
        resolve_sampling({}, {}, {"temprature": 0.5})


def test_a_bad_stored_value_names_where_it_is() -> None:
    with pytest.raises(SettingsError, match="this conversation's settings"):
        resolve_sampling({}, {"top_p": 7})
    with pytest.raises(SettingsError, match="the app settings"):
        resolve_sampling({"temperature": -1})
    with pytest.raises(SettingsError, match="out of range"):
        resolve_sampling({}, {}, {"temperature": 9.0})
