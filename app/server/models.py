"""The models the API offers: the loaded one first, then the installed ones, by registry name."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.hub import installed
from app.server.responses import model_object

if TYPE_CHECKING:
    from app.chat.service import ChatService
    from app.hub.installed import InstalledModel


@dataclass(frozen=True)
class Loaded:
    """The model the service has loaded, under the id the API shows for it."""

    id: str
    path: Path

    def matches(self, requested: str) -> bool:
        wanted = requested.strip().lower()
        return wanted in (self.id.lower(), self.path.name.lower(), self.path.stem.lower())


def loaded_model(service: ChatService, *, on_owner: bool = True) -> Loaded | None:
    """The loaded model. Off the owner thread (the model list) only the service's own record
    is read; on it, the engine is asked too (a failed load leaves nothing loaded)."""
    info = service.model
    if info is None or (on_owner and service.engine.info is None):
        return None
    return Loaded(info.name, info.path.resolve())


def resolve(requested: str) -> InstalledModel | None:
    """The installed model called ``requested`` (name, file name or file stem, any case).

    Paths are never accepted: a client must not make the server open files of its choosing.
    """
    wanted = requested.strip()
    if "/" in wanted or "\\" in wanted:
        return None
    lowered = wanted.lower()
    models = [m for m in installed.list_installed() if m.exists]
    keys: tuple[Callable[[InstalledModel], str], ...] = (
        lambda m: m.name, lambda m: m.name.lower(), lambda m: m.path.name.lower(),
        lambda m: m.path.stem.lower())
    for key, value in zip(keys, (wanted, lowered, lowered, lowered), strict=True):
        for model in models:
            if key(model) == value:
                return model
    return None


def listing(service: ChatService) -> list[dict[str, Any]]:
    """``/v1/models``: the loaded model first, then every installed model that exists."""
    loaded = loaded_model(service, on_owner=False)
    out = []
    if loaded is not None:
        out.append(model_object(loaded.id, _mtime(loaded.path)))
    for model in installed.list_installed():
        if model.exists and (loaded is None or model.path.resolve() != loaded.path):
            out.append(model_object(model.name, model.added or _mtime(model.path)))
    return out


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0
