"""Installed models: the built-in starter, downloads and imported files, in `models.json`."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from app import fileio, paths
from app.engine.modelfile import real_path
from app.errors import UserError

log = logging.getLogger(__name__)

_lock = threading.RLock()
# Files kept beside a model and deleted with it: Meta's licence and use policy.
SIDECARS = (".LICENSE", ".USE_POLICY.md")


@dataclass(frozen=True)
class InstalledModel:
    """A model the engine can load."""

    name: str
    path: Path
    size_bytes: int
    quantization: str
    source: str  # "built-in", "hub", "converted", "imported" or "path"
    repo_id: str | None = None
    filename: str | None = None
    sha256: str | None = None
    added: float = 0.0

    @property
    def builtin(self) -> bool:
        return self.source == "built-in"

    @property
    def exists(self) -> bool:
        return self.path.is_file()

    @property
    def origin(self) -> str:
        """Where it came from, for a table cell."""
        if self.source == "hub" and self.repo_id:
            return f"{self.repo_id}"
        if self.source == "converted" and (self.repo_id or "").startswith("meta:"):
            return f"converted from Meta's download ({(self.repo_id or '').removeprefix('meta:')})"
        if self.source == "converted":
            return f"converted from {self.repo_id or Path(self.filename or '?').name}"
        return self.source

    @property
    def owns_file(self) -> bool:
        """Whether the app made the file (a download or a conversion) and so deletes it on removal."""
        return self.source in ("hub", "converted")

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["path"] = str(self.path)
        return data


def registry_path() -> Path:
    return paths.data_dir() / "models.json"


def _read() -> list[InstalledModel]:
    models = []
    for item in fileio.read_json_list(registry_path(), "models"):
        try:
            item = dict(item)
            item["path"] = Path(item["path"])
            models.append(InstalledModel(**item))
        except (TypeError, KeyError) as err:
            log.warning("skipping bad entry in %s: %s", registry_path(), err)
    return models


def _write(models: list[InstalledModel]) -> None:
    fileio.write_text(registry_path(), json.dumps({"models": [m.to_json() for m in models]},
                                                  indent=1))


def starter() -> InstalledModel | None:
    from app.starter import STARTER_NAME, starter_path

    path = starter_path()
    if path is None:
        return None
    return InstalledModel(STARTER_NAME, path, path.stat().st_size, "Q4_1", "built-in")


def list_installed() -> list[InstalledModel]:
    """The starter (when installed) then registered models, in the order they were added."""
    with _lock:
        models = _read()
    first = starter()
    return ([first] if first else []) + models


def _unique_name(wanted: str, models: list[InstalledModel]) -> str:
    taken = {m.name.lower() for m in models}
    name, n = wanted, 2
    while name.lower() in taken:
        name, n = f"{wanted} ({n})", n + 1
    return name


def add(model: InstalledModel) -> InstalledModel:
    """Register ``model`` (replacing an entry with the same path); returns it as stored."""
    with _lock:
        models = [m for m in _read() if real_path(m.path) != real_path(model.path)]
        everyone = models + ([s] if (s := starter()) else [])
        model = replace(model, name=_unique_name(model.name, everyone), added=time.time())
        _write([*models, model])
    return model


def add_download(path: Path, *, repo_id: str, filename: str, quantization: str,
                 sha256: str | None) -> InstalledModel:
    """Register a verified download in the models folder."""
    name = Path(filename).name.removesuffix(".gguf")
    return add(InstalledModel(name, path, path.stat().st_size, quantization, "hub", repo_id,
                              filename, sha256))


def add_converted(path: Path, *, name: str, quantization: str, repo_id: str | None,
                  source_folder: Path | None) -> InstalledModel:
    """Register a GGUF the converter wrote into the models folder (deleted again on removal)."""
    return add(InstalledModel(name, path, path.stat().st_size, quantization, "converted", repo_id,
                              str(source_folder) if source_folder else None))


def import_model(path: str | Path, name: str | None = None) -> InstalledModel:
    """Register a local .gguf in place (validated like the engine does; never copied)."""
    from app.engine.modelfile import check_model_file

    info = check_model_file(path)
    with _lock:
        for existing in _read():
            if real_path(existing.path) == info.path:
                raise UserError(f"{info.path} is already installed as {existing.name!r}.")
    return add(InstalledModel(
        name or info.path.stem, info.path, info.size_bytes, info.file_type or "?", "imported",
    ))


def remove_model(name: str) -> InstalledModel:
    """Forget a model; a downloaded file is deleted, an imported one is left where it is."""
    target = resolve_model(name, allow_path=False)
    if target.builtin:
        raise UserError(f"{target.name} is built in and cannot be removed.")
    with _lock:
        _write([m for m in _read() if m.path != target.path])
    if target.owns_file:
        stem = target.path.name.removesuffix(".gguf")
        for path in (target.path, *(target.path.with_name(stem + s) for s in SIDECARS)):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
    return target


def resolve_model(name_or_path: str, *, allow_path: bool = True) -> InstalledModel:
    """The installed model named ``name_or_path`` (name, file name or path), or a .gguf path.

    Raises UserError listing the installed names when nothing matches.
    """
    wanted = name_or_path.strip()
    models = list_installed()
    lowered = wanted.lower()
    tests: tuple[Callable[[InstalledModel], bool], ...] = (
        lambda m: m.name == wanted,
        lambda m: m.name.lower() == lowered,
        lambda m: m.path.name.lower() == lowered or (m.filename or "").lower() == lowered,
        lambda m: m.path.stem.lower() == lowered,
    )
    for test in tests:
        found = [m for m in models if test(m)]
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise UserError(f"{wanted!r} matches several models: "
                            + ", ".join(m.name for m in found) + "; use the full name or path.")
    candidate = Path(wanted).expanduser()
    if candidate.exists() or os.sep in wanted or wanted.endswith(".gguf"):
        resolved = real_path(candidate)
        for m in models:
            if real_path(m.path) == resolved:
                return m
        if allow_path and candidate.is_file():
            size = candidate.stat().st_size
            from app.hub.catalogue import quant_of

            return InstalledModel(candidate.stem, resolved, size, quant_of(candidate.name), "path")
    names = ", ".join(repr(m.name) for m in models) or "none (run `llama-desk download`)"
    raise UserError(f"No installed model called {wanted!r}. Installed: {names}.")


def default_model() -> InstalledModel | None:
    """The most recently added model that still exists and did not fail to load last time
    (``load_failures``), else the starter."""
    from app.hub import load_failures

    models = [m for m in list_installed() if m.exists]
    added = [m for m in models if not m.builtin and load_failures.failure(m.path) is None]
    if added:
        return max(added, key=lambda m: m.added)
    return models[0] if models else None
