"""Banners: colours that follow a live theme change, buttons under the text when narrow."""

from __future__ import annotations

from typing import Any

from PySide6.QtGui import QColor
from PySide6.QtWidgets import QApplication

from app.ui import theme
from app.ui.banners import MAX_LINES_BESIDE, Banner
from app.ui.model_actions import INVITE
from tests.ui.fakes import FakeEngine
from tests.ui.test_window import send


def luminance(color: QColor) -> float:
    def channel(v: float) -> float:
        return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4

    return (0.2126 * channel(color.redF()) + 0.7152 * channel(color.greenF())
            + 0.0722 * channel(color.blueF()))


def contrast(a: QColor, b: QColor) -> float:
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def drawn_colours(banner: Banner) -> tuple[QColor, QColor]:
    """The banner's background as drawn (a pixel left of the text) and its text colour."""
    QApplication.processEvents()
    background = banner.grab().toImage().pixelColor(5, banner.height() // 2)
    return background, banner.label.palette().color(banner.label.foregroundRole())


def test_live_banners_follow_a_theme_change(qtbot: Any, make_window: Any) -> None:
    window = make_window(FakeEngine())
    window.settings.theme = "light"
    window.on_theme_changed()
    send(qtbot, window, "Throw me away")
    window.delete_conversation(window.conv_id)  # the "moved to Trash — Undo" bar
    window.banners.show_banner(INVITE, "info", "invite").add_action("Get…", lambda: None)
    window.banners.show_banner("Something failed.", "error", "x")
    live = list(window.banners.banners)
    assert {b.kind for b in live} >= {"info", "error"} and len(live) >= 3
    for choice, dark in (("dark", 1), ("light", 0), ("dark", 1)):
        window.settings.theme = choice
        window.on_theme_changed()
        for banner in live:
            background, text = drawn_colours(banner)
            want_bg, want_text, _border = theme.BANNERS[banner.kind][dark]
            assert background.name() == want_bg, (choice, banner.kind, banner.text)
            assert text.name() == want_text, (choice, banner.kind, banner.text)
            assert contrast(background, text) >= 4.5, (choice, banner.kind)


def test_a_narrow_banner_puts_its_button_under_the_text(qtbot: Any, make_window: Any) -> None:
    window = make_window(FakeEngine())
    banner = window.banners.show_banner(INVITE, "info", "invite")
    button = banner.add_action("Get Llama-2-chat 7B…", lambda: None)
    line = banner.label.fontMetrics().lineSpacing()

    def fitted() -> bool:  # as tall as its text and buttons need, no taller
        return all(b.height() == b.heightForWidth(b.width()) for b in window.banners.banners)

    def lines() -> float:
        return banner.label.heightForWidth(banner.label.width()) / line  # the text's lines

    def settle() -> None:  # the banner's new width, then the height for it
        QApplication.processEvents()
        qtbot.waitUntil(fitted, timeout=2000)

    def resize(width: int, height: int) -> None:
        window.resize(width, height)
        settle()

    resize(1180, 780)
    assert not banner.stacked and lines() <= MAX_LINES_BESIDE
    assert button.geometry().top() < banner.label.geometry().bottom()  # beside the text
    resize(800, 700)
    window.sidebar_button.click()  # the sidebar opened by its toggle while narrow
    settle()
    assert window.sidebar.isVisibleTo(window)
    assert banner.stacked and lines() <= MAX_LINES_BESIDE
    assert button.mapTo(banner, button.rect().topLeft()).y() >= banner.label.geometry().bottom()
    assert banner.height() <= (MAX_LINES_BESIDE + 3) * line  # was 8 lines (~200 px) tall
    resize(1180, 780)
    assert not banner.stacked and lines() <= MAX_LINES_BESIDE
