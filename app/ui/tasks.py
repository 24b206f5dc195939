"""Background work for the window: run slow calls in a pool, deliver results on the UI thread."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal, Slot

from app.errors import UserError

log = logging.getLogger(__name__)

# Every event the window hands to Python code takes the GIL first. A Python thread busy in the
# background (Markdown parsed aside, the chat service, a download) lets go of it only when
# Python's switch interval (5 ms by default) forces it, so each such event could wait up to
# 5 ms, and a burst of them stalled the window for tens of ms. 0.5 ms keeps those waits short;
# llama.cpp's own work runs with the GIL released and is not affected.
GUI_SWITCH_INTERVAL_S = 0.0005


def keep_window_responsive() -> None:
    """Shorten the GIL switch interval for a process that shows the window (see above)."""
    sys.setswitchinterval(min(sys.getswitchinterval(), GUI_SWITCH_INTERVAL_S))


class _Funnel(QObject):
    """Lives on the UI thread; signals emitted from pool threads arrive here queued."""

    call = Signal(object, object)

    def __init__(self) -> None:
        super().__init__()
        self.call.connect(self._run)

    @Slot(object, object)
    def _run(self, fn: Callable[[Any], None], value: Any) -> None:
        try:
            fn(value)
        except Exception:
            log.exception("UI callback failed")


_funnel: _Funnel | None = None


def funnel() -> _Funnel:
    """The run-on-UI-thread funnel (created on the UI thread on first use)."""
    global _funnel
    if _funnel is None:
        _funnel = _Funnel()
    return _funnel


def on_ui_thread(fn: Callable[[Any], None], value: Any = None) -> None:
    """Call ``fn(value)`` on the UI thread (safe from any thread).

    During shutdown the funnel may already be gone; a late result is then dropped (logged).
    """
    try:
        funnel().call.emit(fn, value)
    except RuntimeError as err:  # "Signal source has been deleted": the app is closing
        log.debug("dropped a late background result during shutdown: %s", err)


class _Task(QRunnable):
    def __init__(self, fn: Callable[[], Any], done: Callable[[Any], None] | None,
                 failed: Callable[[str], None] | None) -> None:
        super().__init__()
        self.fn, self.done, self.failed = fn, done, failed

    def run(self) -> None:
        try:
            value = self.fn()
        except UserError as err:
            if self.failed:
                on_ui_thread(self.failed, str(err))
            return
        except Exception as err:
            log.exception("background task failed")
            if self.failed:
                on_ui_thread(self.failed, f"{type(err).__name__}: {err}")
            return
        if self.done:
            on_ui_thread(self.done, value)


def run_in_background(fn: Callable[[], Any], done: Callable[[Any], None] | None = None,
                      failed: Callable[[str], None] | None = None) -> None:
    """Run ``fn()`` off the UI thread; ``done(result)`` or ``failed(message)`` run on it after."""
    funnel()
    QThreadPool.globalInstance().start(_Task(fn, done, failed))


def wait_for_background(timeout_ms: int = 10_000) -> bool:
    """Wait for pending background tasks (tests and shutdown)."""
    return QThreadPool.globalInstance().waitForDone(timeout_ms)
