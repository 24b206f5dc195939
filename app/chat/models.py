"""Which model a face loads: an explicit choice, else the conversation's, else the last used."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from app.errors import UserError

if TYPE_CHECKING:
    from app.hub.installed import InstalledModel


@dataclass(frozen=True)
class ModelChoice:
    """A model file to load and the name every face shows for it."""

    path: str
    name: str


def display_name(path: str | Path) -> str:
    """The installed model's registry name for ``path``, else the file's name."""
    from app.hub import installed

    resolved = Path(path).expanduser().resolve()
    for model in installed.list_installed():
        if model.path.resolve() == resolved:
            return model.name
    return Path(path).name


def name_of(model: InstalledModel) -> str:
    """The name every face shows for an installed model: its registered name; a file loaded
    by path is called by its file name."""
    return model.path.name if model.source == "path" else model.name


def choose_model(requested: str | None = None, *, conversation: str | None = None,
                 last_used: str | None = None) -> ModelChoice:
    """The model to load, by the one rule every face follows.

    An explicit ``requested`` name or path must resolve (a path that is not installed is used
    as given, so the engine can name what is wrong with the file). Otherwise the conversation's
    model, then the last used one, when still installed; otherwise the newest installed model,
    else the starter.
    """
    from app.hub import installed

    if requested:
        try:
            found = installed.resolve_model(requested)
            return ModelChoice(str(found.path), name_of(found))
        except UserError:
            if Path(requested).suffix == ".gguf" or "/" in requested:
                return ModelChoice(requested, Path(requested).name)
            raise
    for wanted in (conversation, last_used):
        if not wanted:
            continue
        try:
            found = installed.resolve_model(wanted)
        except UserError:
            continue
        if found.exists:
            return ModelChoice(str(found.path), name_of(found))
    default = installed.default_model()
    if default is None:
        raise UserError("No model is installed; run `llama-desk download "
                        "TheBloke/Llama-2-7B-Chat-GGUF` or reinstall to get the starter model.")
    return ModelChoice(str(default.path), default.name)
