"""The QApplication (themed by app.ui.theme), an excepthook that never shows a traceback, run_app."""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from PySide6.QtCore import QTimer
from PySide6.QtGui import QGuiApplication, QIcon
from PySide6.QtWidgets import QApplication, QMessageBox

from app import APP_ID, APP_NAME, __version__
from app.errors import UserError
from app.ui.theme import apply_theme

log = logging.getLogger(__name__)
SHOWN_ENV = "LLAMA_DESK_REPORT_SHOWN"  # benchmark: print time-to-shown and quit


def create_app(argv: list[str] | None = None) -> QApplication:
    existing = QApplication.instance()
    if isinstance(existing, QApplication):
        return existing
    app = QApplication(argv if argv is not None else sys.argv[:1])
    app.setApplicationName(APP_NAME)
    app.setApplicationVersion(__version__)
    app.setOrganizationName(APP_ID)
    app.setDesktopFileName(APP_ID)
    app.setWindowIcon(app_icon())
    apply_theme(app)
    return app


def app_icon() -> QIcon:
    """The llama icon at every size shipped in resources/icons (PNG: no SVG plugin needed)."""
    from app import paths

    icon = QIcon()
    for png in sorted((paths.resources_dir() / "icons").glob("llama-desk-*.png")):
        icon.addFile(str(png))
    return icon


_window: Any = None


def show_for_self_test() -> tuple[QApplication, Any, str]:
    """`--self-test`: the app and its main window shown offscreen, with no model loaded."""
    from app.ui.main_window import MainWindow

    app = create_app()
    window = MainWindow(auto_load=False)  # the self-test loads the model itself
    window.show()
    app.processEvents()
    return app, window, f"MainWindow shown on the {QGuiApplication.platformName()} platform"


def excepthook(kind: type[BaseException], err: BaseException, tb: TracebackType | None) -> None:
    """Log unexpected errors; show a short message (never a traceback) and keep running.

    PySide calls this on the thread where a slot raised (the model thread, too): widgets are
    only ever made on the GUI thread, so from any other thread the message is sent there.
    """
    if issubclass(kind, KeyboardInterrupt):
        QApplication.quit()  # thread-safe: it posts to the event loop
        return
    if isinstance(err, UserError):
        text = str(err)
    else:
        log.error("unexpected error", exc_info=(kind, err, tb))
        from app import paths

        text = (f"Something went wrong ({kind.__name__}: {err}). The details are in "
                f"{paths.logs_dir() / 'llama-desk.log'}; your conversations are safe.")
    if threading.current_thread() is threading.main_thread():
        show_error(text)
    else:
        from app.ui.tasks import on_ui_thread

        on_ui_thread(show_error, text)


def show_error(text: str) -> None:
    """An unexpected error's message: a banner in the window, else a message box (GUI thread)."""
    window = _window
    if window is not None and hasattr(window, "banners"):
        window.banners.show_banner(text, "error", "unexpected")
    else:
        QMessageBox.warning(None, APP_NAME, text)


def run_app(argv: list[str] | None = None) -> int:
    """Open the window and run until it closes; returns the exit status."""
    global _window
    started = time.perf_counter()
    if QApplication.instance() is None:
        from app.ui.platform_check import check_display

        problem = check_display()
        if problem:  # Qt would abort with "Could not load the Qt platform plugin xcb"
            print(problem, file=sys.stderr)
            return 1
    app = create_app(argv)
    from app.ui.tasks import funnel

    funnel()  # made on the GUI thread, so that other threads' results are delivered there
    previous_hook = sys.excepthook
    sys.excepthook = excepthook
    try:
        from app.ui.main_window import MainWindow

        try:
            window = MainWindow()
        except UserError as err:  # e.g. the conversations database cannot be opened
            QMessageBox.critical(None, APP_NAME, str(err))
            return 1
        _window = window
        window.show()
        if os.environ.get(SHOWN_ENV):
            QTimer.singleShot(0, lambda: _report_shown(started, window))
        return int(app.exec())
    finally:
        sys.excepthook = previous_hook
        if _window is not None:  # e.g. Ctrl+C quit with the window open: the model thread
            _window.host.close(timeout_ms=None)  # must end before its QThread is destroyed
        _window = None


def process_age_s() -> float:
    """Seconds since this process was created (-1 if unknown).

    On Linux from /proc (the process's start and the uptime, both counted from boot): psutil's
    create_time adds the start to /proc/stat's boot time, which is whole seconds, so its figure
    is up to a second too early (0.72 s on the machine this was found on).
    """
    try:
        ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return uptime - ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        pass
    try:
        import psutil

        return time.time() - psutil.Process().create_time()
    except Exception:
        return -1.0


def _report_shown(started: float, window: Any) -> None:
    """Print seconds from process start to the window's first event loop turn, then close."""
    print(f"shown_after_run_app_s={time.perf_counter() - started:.3f}", flush=True)
    print(f"shown_after_process_start_s={process_age_s():.3f}", flush=True)
    print(f"shown_at_epoch_s={time.time():.3f}", flush=True)
    window.close()
