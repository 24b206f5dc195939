"""The settings dialog's per-model prompt-format override."""

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
