"""Logging set-up: a rotating file in the logs dir, with llama.cpp's own lines routed into it."""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys
import threading
from typing import Any

from app import paths
from app.errors import UserError

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
_configured = False


class PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """A rotating log whose files are created 0600 (they hold model names, paths, errors)."""

    def _open(self) -> Any:
        return open(self.baseFilename, self.mode, encoding=self.encoding, errors=self.errors,
                    opener=lambda name, flags: os.open(name, flags, 0o600))


def setup(verbose: bool = False, *, route_llama: bool = True) -> None:
    """Send app and llama.cpp logs to ``logs_dir()/llama-desk.log`` (idempotent; never raises).

    ``route_llama`` False leaves llama.cpp's lines to the first code that uses llama.cpp (each
    such place calls ``route_llama_cpp_logs``), so that the window does not import llama_cpp
    on its main thread before it is shown.

    With ``verbose`` warnings and above are echoed to stderr as well. When the log file cannot
    be written (a read-only home, a log file owned by another user) the app goes on without it
    and says so in one line on stderr.
    """
    global _configured
    if _configured:
        return
    _configured = True
    root = logging.getLogger()
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    try:
        handler: logging.Handler = PrivateRotatingFileHandler(
            paths.logs_dir() / "llama-desk.log", maxBytes=2_000_000, backupCount=3,
            encoding="utf-8",
        )
    except (OSError, UserError) as err:
        from app.fileio import reason

        why = reason(err) if isinstance(err, OSError) else str(err)
        from app import notices

        notices.add(f"No log file this time ({why.rstrip('.')}).")
        handler = logging.NullHandler()
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root.addHandler(handler)
    # A log write that fails later (disk full) must not print logging's own traceback.
    logging.raiseExceptions = False
    if verbose:
        console = logging.StreamHandler(sys.stderr)
        console.setLevel(logging.WARNING)
        console.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        root.addHandler(console)
    if route_llama:
        route_llama_cpp_logs()


# ggml_log_level (ggml.h): 0 none, 1 debug, 2 info, 3 warn, 4 error, 5 continues the last line.
_LEVELS = {0: logging.DEBUG, 1: logging.DEBUG, 2: logging.INFO, 3: logging.WARNING, 4: logging.ERROR}
_callback: object | None = None  # keep a reference: llama.cpp holds only a raw pointer
_pending: list[str] = []
_pending_level = [logging.DEBUG]
_route_lock = threading.Lock()


def route_llama_cpp_logs() -> None:
    """Install a llama.cpp log callback that forwards its lines to the ``llama_cpp`` logger.

    llama.cpp prints to stderr by default (even with ``verbose=False`` for some lines); this keeps
    the terminal clean and the lines in our log file instead.
    """
    with _route_lock:  # the engine thread and a background check may both get here first
        _route()


def _route() -> None:
    global _callback
    if _callback is not None:
        return
    import ctypes

    import llama_cpp

    logger = logging.getLogger("llama_cpp")

    def forward(level: int, text: bytes, _user: ctypes.c_void_p) -> None:
        piece = text.decode("utf-8", errors="replace")
        if int(level) != 5 and not _pending:
            _pending_level[0] = _LEVELS.get(int(level), logging.DEBUG)
        _pending.append(piece)
        if piece.endswith("\n"):
            line = "".join(_pending).rstrip()
            _pending.clear()
            if line:
                logger.log(_pending_level[0], "%s", line)

    _callback = llama_cpp.llama_log_callback(forward)  # the ctypes wrapper llama.cpp calls
    llama_cpp.llama_log_set(_callback, ctypes.c_void_p(0))
