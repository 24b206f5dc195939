"""The settings dialog: per-model prompt-format override, and sampling boxes on the engine ranges."""

from __future__ import annotations

from typing import Any

from app.engine.types import Sampling
from app.settings import AppSettings


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
