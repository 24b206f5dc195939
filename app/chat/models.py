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
    note: str = ""  # why the usual model was skipped (it failed to load last time, or is gone)


def display_name(path: str | Path) -> str:
    """The installed model's registry name for ``path``, else the file's name."""
    from app.hub import installed

    resolved = Path(path).expanduser().resolve()
    for model in installed.list_installed():
        if model.path.resolve() == resolved:
            return model.name
    return Path(path).name


def remote_choice(requested: str, model: str = "") -> ModelChoice:
    """A model on a remote engine: ``engine:NAME/MODEL``, or an engine's name or URL with
    ``model`` (empty: the server's first); the engine must be configured (or a usable URL)."""
    from app.engine.remote import registry

    if registry.is_ref(requested):
        ref = registry.parse_ref(requested)
        ref = registry.EngineRef(ref.engine, model or ref.model)
    elif "://" in requested:
        ref = registry.EngineRef(registry.adhoc_engine(requested).url, model)
    else:
        ref = registry.EngineRef(registry.get_engine(requested).name, model)
    ref.config()  # refuses an unknown engine, or plain http to a public host
    return ModelChoice(str(ref), ref.label)


def name_of(model: InstalledModel) -> str:
    """The name every face shows for an installed model: its registered name; a file loaded
    by path is called by its file name."""
    return model.path.name if model.source == "path" else model.name


def choose_model(requested: str | None = None, *, conversation: str | None = None,
                 last_used: str | None = None) -> ModelChoice:
    """The model to load, by the one rule every face follows.

    An explicit ``requested`` name or path must resolve (a path that is not installed is used
    as given, so the engine can name what is wrong with the file). Otherwise the conversation's
    model, then the last used one, when still installed and it did not fail to load last time
    (a model that took the process down while loading is never picked again by itself: the
    ``note`` says so); otherwise the newest installed model, else the starter.
    """
    from app.engine.remote import registry
    from app.hub import installed, load_failures

    if requested and (registry.is_ref(requested) or "://" in requested):
        return remote_choice(requested)
    if requested:
        try:
            found = installed.resolve_model(requested)
            return ModelChoice(str(found.path), name_of(found))
        except UserError:
            if Path(requested).suffix == ".gguf" or "/" in requested:
                return ModelChoice(requested, Path(requested).name)
            raise
    skipped = ""
    for wanted in (conversation, last_used):
        if not wanted:
            continue
        if registry.is_ref(wanted):
            try:  # an engine still configured (whether it answers, the load will say)
                return remote_choice(wanted)
            except UserError as err:
                skipped = skipped or (f"{wanted} was not used: {str(err).rstrip('.')}. Pick it "
                                      "again once the engine is set up.")
                continue
        try:
            found = installed.resolve_model(wanted)
        except UserError:
            continue
        why = load_failures.failure(found.path) if found.exists else None
        if found.exists and why is None:
            return ModelChoice(str(found.path), name_of(found))
        if why is not None and not skipped:
            skipped = (f"{name_of(found)} was not loaded: {why.rstrip('.')}. Pick it again to "
                       "retry, or remove it with `llama-desk models remove`.")
    default = installed.default_model()
    if default is None:
        raise UserError("No model is installed; run `llama-desk download "
                        "TheBloke/Llama-2-7B-Chat-GGUF` or reinstall to get the starter model.")
    note = skipped.replace(". Pick it", f"; started with {default.name} instead. Pick it", 1)
    return ModelChoice(str(default.path), default.name, note)
