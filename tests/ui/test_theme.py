"""The theme: Fusion with a light or dark palette and style sheet, as the OS or the setting asks."""

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


def test_disabled_text_looks_disabled_in_both_themes() -> None:
    for colors in (theme.LIGHT, theme.DARK):
        palette = theme._palette(colors)
        for role in (QPalette.ColorRole.ButtonText, QPalette.ColorRole.Text):
            enabled = palette.color(QPalette.ColorGroup.Active, role)
            disabled = palette.color(QPalette.ColorGroup.Disabled, role)
            assert abs(enabled.lightness() - disabled.lightness()) > 60, (colors.dark, role)
    sheet = theme.style_sheet(theme.DARK, 11)
    assert "QToolButton#sendButton:disabled" in sheet and "QPushButton:disabled" in sheet


def test_apply_theme_follows_the_scheme_and_the_setting(qapp: QApplication,
                                                        monkeypatch: Any) -> None:
    before = (QPalette(qapp.palette()), qapp.styleSheet(), qapp.font())
    try:
        monkeypatch.setattr(theme, "system_is_dark", lambda: True)
        theme.set_choice("system")
        theme.apply_theme(qapp, 14)
        assert qapp.palette().color(QPalette.ColorRole.Base).name() == theme.DARK.window
        assert theme.DARK.window in qapp.styleSheet()
        assert qapp.font().pointSize() == 14  # the font-size setting, for every widget
        theme.set_choice("light")  # the setting wins over the OS
        theme.apply_theme(qapp)
        assert not theme.is_dark()
        assert qapp.palette().color(QPalette.ColorRole.Base).name() == theme.LIGHT.window
        monkeypatch.setattr(theme, "system_is_dark", lambda: False)
        theme.set_choice("dark")
        assert theme.is_dark()
    finally:
        theme.set_choice("system")
        qapp.setPalette(before[0])
        qapp.setStyleSheet(before[1])
        qapp.setFont(before[2])


def test_a_coloured_meter_follows_a_theme_change(qtbot: Any, make_window: Any) -> None:
    from tests.ui.fakes import FakeEngine

    window = make_window(FakeEngine())
    theme.set_tone(window.meter, "warning")  # as when the prompt is over 90% of the context
    for choice, palette in (("light", theme.LIGHT), ("dark", theme.DARK), ("light", theme.LIGHT)):
        window.settings.theme = choice
        window.on_theme_changed()
        QApplication.processEvents()
        assert window.meter.palette().color(window.meter.foregroundRole()).name() == \
            palette.warning
    theme.set_tone(window.meter)
    assert window.meter.palette().color(window.meter.foregroundRole()).name() != \
        theme.LIGHT.warning
