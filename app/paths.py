"""Where Llama Desk keeps its files: platformdirs locations, or one folder under LLAMA_DESK_HOME."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

from app import APP_ID
from app.errors import UserError

HOME_ENV = "LLAMA_DESK_HOME"


def _dirs() -> platformdirs.PlatformDirs:
    return platformdirs.PlatformDirs(appname=APP_ID, appauthor=False, ensure_exists=False)


def _home() -> Path | None:
    value = os.environ.get(HOME_ENV, "").strip()
    return Path(value).expanduser().resolve() if value else None


_private: set[Path] = set()  # folders already made private in this process


def _ensure(path: Path) -> Path:
    """Create ``path`` (0700) if needed; the first time per process, make it and its files private.

    A folder that cannot be created (a read-only or foreign home) raises a UserError naming it.
    """
    if path in _private and os.path.isdir(path):
        return path
    from app.fileio import PRIVATE_DIR, make_private, reason

    try:
        path.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    except OSError as err:
        if not os.path.isdir(path):  # (Path.is_dir raises for a folder it may not look into)
            raise UserError(f"Cannot create the folder {path}: {reason(err)}.") from err
    make_private(path)
    _private.add(path)
    return path


def data_dir() -> Path:
    """Conversations database and other user data."""
    home = _home()
    return _ensure(home / "data" if home else Path(_dirs().user_data_dir))


def config_dir() -> Path:
    """Settings files."""
    home = _home()
    return _ensure(home / "config" if home else Path(_dirs().user_config_dir))


def cache_dir() -> Path:
    """Re-creatable data: Hub metadata cache, partial downloads' bookkeeping."""
    home = _home()
    return _ensure(home / "cache" if home else Path(_dirs().user_cache_dir))


def models_dir() -> Path:
    """Downloaded and imported model files (large; kept in the data dir, never the cache)."""
    return _ensure(data_dir() / "models")


def logs_dir() -> Path:
    """Rotating log files."""
    home = _home()
    return _ensure(home / "logs" if home else Path(_dirs().user_log_dir))


def database_path() -> Path:
    """The conversations database."""
    return data_dir() / "conversations.sqlite3"


def resources_dir() -> Path:
    """The app's read-only resources (icons): inside a PyInstaller bundle, or the source tree."""
    import sys

    bundle_root = getattr(sys, "_MEIPASS", None)
    if bundle_root:
        return Path(bundle_root) / "resources"
    return Path(__file__).resolve().parent.parent / "resources"


def describe() -> dict[str, Path]:
    """All locations by name (for diagnostics and the tests)."""
    return {
        "data": data_dir(),
        "config": config_dir(),
        "cache": cache_dir(),
        "models": models_dir(),
        "logs": logs_dir(),
        "database": database_path(),
    }
