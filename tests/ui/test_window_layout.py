"""The window's frame: a minimum size, the sidebar folding away when narrow, dark mode complete."""

from __future__ import annotations

from typing import Any

from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

from app.ui import theme
from tests.ui.fakes import FakeEngine
from tests.ui.test_window import send


def test_minimum_size_and_the_sidebar_folds_when_narrow(qtbot: Any, make_window: Any) -> None:
    window = make_window(FakeEngine())
    assert window.minimumSize().width() >= 500 and window.minimumSize().height() >= 400
    window.resize(780, 600)
    assert not window.sidebar.isVisibleTo(window)
    window.sidebar_button.click()  # the toggle brings it back while narrow
    assert window.sidebar.isVisibleTo(window)
    window.sidebar_button.click()
    assert not window.sidebar.isVisibleTo(window)
    window.focus_search()  # Ctrl+F needs the sidebar: it opens
    assert window.sidebar.isVisibleTo(window) and window.sidebar.search.hasFocus()


def test_dark_mode_reaches_code_disabled_send_and_links(qtbot: Any, make_window: Any) -> None:
    window = make_window(FakeEngine(["```python\nprint('hi')\n```\n\nSee https://example.com"]))
    send(qtbot, window, "code please")
    window.settings.theme = "dark"
    window.on_theme_changed()
    assert theme.is_dark() and window.chat.dark
    reply = window.chat.widgets[window.branch[-1].id]
    block = reply.body.parts[0]
    code_html = block.code.toHtml().lower()
    assert "#007020" not in code_html and "#f8f8f2" in code_html  # monokai, not "friendly"
    link_html = reply.body.parts[1].document().defaultStyleSheet()
    assert theme.DARK.link in link_html
    window.composer.set_text("")
    button = window.composer.button
    assert not button.isEnabled()
    icon = button.icon()
    normal = icon.pixmap(18, QIcon.Mode.Normal).toImage()
    disabled = icon.pixmap(18, QIcon.Mode.Disabled).toImage()
    assert normal != disabled  # a disabled Send is drawn differently, not just "not clickable"
    assert "QToolButton#sendButton:disabled" in QApplication.instance().styleSheet()
