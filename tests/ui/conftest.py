"""Window fixtures: a MainWindow on a scripted FakeEngine (or the real one), offscreen."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.ui.fakes import FakeEngine

# The offscreen platform plugin says this whenever a top-level window is shown.
OFFSCREEN_NOISE = r"This plugin does not support (propagateSizeHints|raise)\(\)"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/ui" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.qt_log_ignore(OFFSCREEN_NOISE))


@pytest.fixture(autouse=True)
def _app_look(qapp: Any) -> Iterator[None]:
    """A window sets the app's font, palette and style sheet (the settings): put them back."""
    from PySide6.QtGui import QPalette

    from app.ui import theme

    font, palette, sheet = qapp.font(), QPalette(qapp.palette()), qapp.styleSheet()
    yield
    theme.set_choice("system")
    qapp.setFont(font)
    qapp.setPalette(palette)
    qapp.setStyleSheet(sheet)


@pytest.fixture
def fake_engine() -> FakeEngine:
    return FakeEngine()


@pytest.fixture
def make_window(qtbot: Any, starter_model: Any) -> Iterator[Callable[..., Any]]:
    """Build a shown MainWindow whose model thread runs ``engine``; waits for the model to load."""
    from app.ui.main_window import MainWindow

    made: list[Any] = []

    def make(engine: Any = None, *, wait_ready: bool = True) -> Any:
        factory = (lambda: engine) if engine is not None else None
        window = MainWindow(engine_factory=factory)
        qtbot.add_widget(window)
        window.show()
        made.append(window)
        if wait_ready:
            qtbot.waitUntil(lambda: window.model_state == "ready", timeout=30_000)
        return window

    yield make
    for window in made:
        window.close()
    from app.ui.tasks import wait_for_background

    wait_for_background(10_000)


def wait_idle(qtbot: Any, window: Any, timeout: int = 30_000) -> None:
    """Wait until the window is not generating any more."""
    qtbot.waitUntil(lambda: not window.generating, timeout=timeout)
