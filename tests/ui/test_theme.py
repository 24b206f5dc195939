"""The theme follows the OS: Fusion, with the dark palette only when the OS asks for dark."""

from __future__ import annotations

from typing import Any

from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QApplication

from app.ui import theme


def test_dark_palette_is_light_text_on_dark() -> None:
    palette = theme.dark_palette()
    base = palette.color(QPalette.ColorRole.Base).lightness()
    text = palette.color(QPalette.ColorRole.Text).lightness()
    assert base < 64 and text > 192


def test_apply_theme_follows_the_scheme(qapp: QApplication, monkeypatch: Any) -> None:
    before = (qapp.style().name(), QPalette(qapp.palette()))
    try:
        monkeypatch.setattr(theme, "is_dark", lambda: True)
        theme.apply_theme(qapp)
        assert qapp.style().name().lower() == "fusion"
        assert qapp.palette().color(QPalette.ColorRole.Base) == theme.dark_palette().color(
            QPalette.ColorRole.Base)
        monkeypatch.setattr(theme, "is_dark", lambda: False)
        theme.apply_theme(qapp)
        assert qapp.palette().color(QPalette.ColorRole.Base) == qapp.style().standardPalette().color(
            QPalette.ColorRole.Base)
    finally:
        qapp.setStyle(before[0])
        qapp.setPalette(before[1])
