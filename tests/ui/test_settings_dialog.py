"""The settings dialog: per-model prompt-format override, and sampling boxes on the engine ranges."""

from __future__ import annotations

from typing import Any

import pytest

from app.engine.types import Sampling
from app.settings import AppSettings
from app.ui.plain import plain_tip


def test_prompt_format_override_per_model(qtbot: Any) -> None:
    from app.ui.settings_dialog import SettingsDialog

    settings = AppSettings()
    dialog = SettingsDialog("", Sampling(), settings, model_path="/models/llama.gguf")
    qtbot.add_widget(dialog)
    assert dialog.prompt_format.currentData() == "auto"
    dialog.prompt_format.setCurrentIndex(dialog.prompt_format.findData("llama-2"))
    assert dialog.apply_app_settings() is True  # a format change reloads the model
    assert settings.prompt_formats == {"/models/llama.gguf": "llama-2"}
    assert settings.load_options("/models/llama.gguf").prompt_format == "llama-2"

    again = SettingsDialog("", Sampling(), settings, model_path="/models/llama.gguf")
    qtbot.add_widget(again)
    assert again.prompt_format.currentData() == "llama-2"
    again.prompt_format.setCurrentIndex(again.prompt_format.findData("auto"))
    assert again.apply_app_settings() is True
    assert settings.prompt_formats == {}


def test_no_model_means_no_format_choice(qtbot: Any) -> None:
    from app.ui.settings_dialog import SettingsDialog

    dialog = SettingsDialog("", Sampling(), AppSettings())
    qtbot.add_widget(dialog)
    assert not dialog.prompt_format.isEnabled()
    assert dialog.apply_app_settings() is False


def test_sampling_boxes_follow_the_engine_ranges(qtbot: Any) -> None:
    from app.engine.types import SAMPLING_RANGES
    from app.ui.settings_dialog import INT_MAX, SettingsDialog

    dialog = SettingsDialog("", Sampling(), AppSettings())
    qtbot.add_widget(dialog)
    for name, allowed in SAMPLING_RANGES.items():
        box = getattr(dialog, name)
        assert (box.minimum(), box.maximum()) == (allowed.low, min(allowed.high, INT_MAX)), name
        assert box.singleStep() == allowed.step, name
        if not allowed.whole:
            assert box.decimals() == allowed.decimals, name
    dialog.min_p.setValue(0.123)  # two decimals, as the range says
    dialog.temperature.setValue(99)  # clamped to the engine's maximum
    chosen = dialog.sampling()
    assert (chosen.min_p, chosen.temperature) == (0.12, SAMPLING_RANGES["temperature"].high)


def test_a_seed_beyond_the_spin_box_is_kept(qtbot: Any) -> None:
    from app.ui.settings_dialog import INT_MAX, SettingsDialog

    big = 2**32 - 5
    dialog = SettingsDialog("", Sampling(seed=big), AppSettings())
    qtbot.add_widget(dialog)
    assert dialog.seed.value() == INT_MAX and dialog.sampling().seed == big
    dialog.seed.setValue(7)
    assert dialog.sampling().seed == 7


LONG_TITLE = "Explain how a hash table works, with a small Python example."


def _show_each_page(qtbot: Any, dialog: Any) -> list[tuple[str, Any]]:
    """Show ``dialog`` at its default size and visit each page; (title, its scroll area)."""
    dialog.show()
    qtbot.waitExposed(dialog)
    shown = []
    for row in range(dialog.pages.count()):
        dialog.pages.setCurrentRow(row)
        scroll = dialog.stack.currentWidget()
        qtbot.waitUntil(scroll.isVisible)
        qtbot.wait(10)  # the pending layout requests run
        shown.append((dialog.pages.item(row).text(), scroll))
    return shown


@pytest.mark.parametrize("point_size", [11, 15])  # the default font size, and large
def test_no_page_scrolls_sideways_at_the_default_size(qtbot: Any, qapp: Any,
                                                      point_size: int | None) -> None:
    from app.ui.settings_dialog import SettingsDialog
    from app.ui.theme import apply_theme

    apply_theme(qapp, point_size)  # the window's look: font size and style sheet
    dialog = SettingsDialog("", Sampling(), AppSettings(), conversation=LONG_TITLE)
    qtbot.add_widget(dialog)
    for title, scroll in _show_each_page(qtbot, dialog):
        page = scroll.widget()
        assert page.width() <= scroll.viewport().width(), title
        assert not scroll.horizontalScrollBar().isVisible(), title
    dialog.pages.setCurrentRow(0)
    assert dialog.heading.toolTip() == plain_tip(f"For this conversation: “{LONG_TITLE}”")
    assert dialog.heading.width() <= dialog.stack.width()
    assert dialog.heading.elided_text().endswith("…")  # cut to what fits, the title in the tip


def test_a_short_title_is_shown_whole(qtbot: Any) -> None:
    from app.ui.settings_dialog import SettingsDialog

    dialog = SettingsDialog("", Sampling(), AppSettings(), conversation="hi")
    qtbot.add_widget(dialog)
    _show_each_page(qtbot, dialog)
    dialog.pages.setCurrentRow(0)
    assert dialog.heading.text() == "For this conversation: “hi”"


@pytest.mark.parametrize("point_size", [11, 15])  # the default font size, and large
def test_the_page_list_fits_its_entries_at_any_font_size(qtbot: Any, qapp: Any,
                                                          point_size: int | None) -> None:
    from app.ui.settings_dialog import SettingsDialog
    from app.ui.theme import apply_theme

    apply_theme(qapp, point_size)
    dialog = SettingsDialog("", Sampling(), AppSettings())
    qtbot.add_widget(dialog)
    _show_each_page(qtbot, dialog)
    pages = dialog.pages
    assert not pages.horizontalScrollBar().isVisible()
    metrics = pages.fontMetrics()
    for row in range(pages.count()):
        item = pages.item(row)
        rect = pages.visualItemRect(item)
        # the text and the style sheet's 10 px side padding fit inside the visible list
        assert metrics.horizontalAdvance(item.text()) + 20 <= rect.width(), item.text()
        assert rect.right() <= pages.viewport().width(), item.text()


def test_a_wrapping_check_box_toggles_from_its_text(qtbot: Any) -> None:
    from PySide6.QtCore import Qt

    from app.ui.settings_dialog import SettingsDialog

    dialog = SettingsDialog("", Sampling(), AppSettings())
    qtbot.add_widget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    row = dialog.default_box.parentWidget()
    assert row.label.wordWrap() and not dialog.make_default()
    qtbot.mouseClick(row.label, Qt.MouseButton.LeftButton)
    assert dialog.make_default()
