"""Models that failed to load, or took the process down while loading: never the default again.

``loading(path)`` wraps a model load. Before llama.cpp sees the file, the attempt is recorded
in ``<data>/load-failures.json`` (0600); a normal return clears it, an exception records it as
failed with its message. If llama.cpp aborts the process (SIGABRT, a segfault, the OOM killer)
the "loading" entry stays behind, and ``failure(path)`` reports it once that process is gone.
Entries are keyed by the resolved path, size and modification time, so a file that is replaced
(downloaded again, converted again) is tried afresh. The CLI and the window consult
``failure`` before loading a model nobody asked for (see ``app.chat.models.choose_model``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from app import fileio, paths
from app.errors import UserError

log = logging.getLogger(__name__)
RECORD_FILE = "load-failures.json"
CRASHED = ("Llama Desk ended unexpectedly while loading this model last time (llama.cpp may "
           "have aborted on it)")
_lock = threading.Lock()


def record_path() -> Path:
    return paths.data_dir() / RECORD_FILE


def _key(path: str | Path) -> str | None:
    from app.engine.modelfile import real_path

    p = real_path(Path(path).expanduser())
    try:
        st = p.stat()
    except OSError:
        return None
    return f"{p}|{st.st_size}|{st.st_mtime_ns}"


def _read() -> dict[str, Any]:
    try:
        data = json.loads(record_path().read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _update(key: str, entry: dict[str, Any] | None) -> None:
    with _lock:
        data = _read()
        if entry is None:
            if key not in data:
                return
            data.pop(key)
        else:
            data[key] = entry
        try:
            fileio.write_text(record_path(), json.dumps(data, indent=1))
        except UserError as err:  # a read-only data folder: loading still works
            log.info("load record not written: %s", err)


def _process_started() -> float:
    try:
        import psutil

        return float(psutil.Process().create_time())
    except Exception:
        return 0.0


def _alive(pid: Any, started: Any) -> bool:
    if not isinstance(pid, int) or not isinstance(started, int | float):
        return False
    if pid == os.getpid():
        return abs(started - _process_started()) < 0.01
    try:
        import psutil

        return abs(psutil.Process(pid).create_time() - started) < 1.0
    except Exception:
        return False


@contextlib.contextmanager
def loading(path: str | Path) -> Iterator[None]:
    """Record a load attempt around the block: cleared on success, kept on failure or a crash.

    KeyboardInterrupt (the user stopped the load) clears the entry: nothing is wrong with the file.
    """
    key = _key(path)
    if key is None:  # no such file: the load reports that itself
        yield
        return
    _update(key, {"state": "loading", "pid": os.getpid(), "started": _process_started(),
                  "at": time.time()})
    try:
        yield
    except KeyboardInterrupt:
        _update(key, None)
        raise
    except Exception as err:
        message = str(err) if isinstance(err, UserError) else f"{type(err).__name__}: {err}"
        _update(key, {"state": "failed", "message": message[:2000], "at": time.time()})
        raise
    _update(key, None)


def failure(path: str | Path) -> str | None:
    """Why ``path`` (this version of the file) could not be loaded last time, or None."""
    key = _key(path)
    entry = _read().get(key) if key else None
    if not isinstance(entry, dict):
        return None
    if entry.get("state") == "loading":
        return None if _alive(entry.get("pid"), entry.get("started")) else CRASHED
    if entry.get("state") == "failed":
        return str(entry.get("message") or "it failed to load")
    return None


def forget(path: str | Path) -> None:
    """Try ``path`` again next time (the user picked it explicitly, or it loaded fine)."""
    key = _key(path)
    if key is not None:
        _update(key, None)
