"""The window's model logic: the first model at startup, loading, and what a load ends in."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.errors import UserError

if TYPE_CHECKING:
    from PySide6.QtCore import SignalInstance
    from PySide6.QtWidgets import QLabel

    from app.engine.types import ModelInfo
    from app.settings import AppSettings
    from app.ui.banners import BannerArea
    from app.ui.composer import Composer
    from app.ui.model_picker import ModelPicker
    from app.ui.worker import EngineHost

log = logging.getLogger(__name__)


class ModelActions:
    """Mixed into MainWindow (with ChatActions); the attributes below are built there.

    Which model to load and with which options is the chat service's rule; the window shows
    the load state and remembers the last model used.
    """

    settings: AppSettings
    host: EngineHost
    composer: Composer
    picker: ModelPicker
    banners: BannerArea
    state_label: QLabel
    model_ready: SignalInstance
    model_failed: SignalInstance
    model_info: ModelInfo | None
    model_state: str
    _closing: bool

    if TYPE_CHECKING:  # defined by MainWindow and ChatActions
        def open_model_manager(self) -> None: ...

        def request_count(self) -> None: ...

    def load_initial_model(self) -> None:
        from app.ui.model_picker import installed_models

        self.picker.refresh(self.settings.context_size)
        models = installed_models()
        if not any("llama-2" in f"{m.name} {m.path.name} {m.repo_id}".lower() for m in models):
            banner = self.banners.show_banner(
                "You are chatting with the small built-in starter model. For much better answers,"
                " download Llama-2-chat 7B (about 4 GB, runs on most computers).", "info", "invite")
            banner.add_action("Get Llama-2-chat 7B…", self.open_model_manager)
        if models:
            self.load_model(None)
        else:
            self.state_label.setText("No model installed")
            self.banners.show_banner("No model is installed: use “Get models…” to download one.",
                                     "warning", "nomodel")

    def load_model(self, path: str | None) -> None:
        """Load ``path`` (None: the last used model, else the newest installed one)."""
        self.banners.clear("load")
        if path:
            self.picker.select_path(path)
        self.model_state = "loading"
        self.composer.set_model_ready(False)
        self.state_label.setText(f"Loading {self.picker.name_for(path)}…" if path else "Loading…")
        self.host.load(path)

    def on_load_started(self, path: str) -> None:
        if path:
            self.picker.select_path(path)

    def on_load_note(self, text: str) -> None:
        """The usual model was skipped (it failed to load last time): say why, once."""
        self.banners.show_banner(text, "warning", "load-note")

    def on_loaded(self, info: ModelInfo) -> None:
        if self._closing:  # the load ended while the window was closing
            return
        self.model_info = info
        self.model_state = "ready"
        self.picker.select_path(str(info.path))
        self.composer.set_model_ready(True)
        remote = str(info.path).startswith("engine:")
        where = "remote" if remote else "CPU" if info.n_gpu_layers == 0 else "GPU"
        context = f"{info.n_ctx:,}-token context" if info.n_ctx else "context size not reported"
        self.state_label.setText(f"Ready: {info.name} ({where}, {context}, {info.format_name} format)")
        self.settings.model = str(info.path)
        try:
            from app import settings as app_settings

            app_settings.save(self.settings)
        except (UserError, OSError) as err:
            log.warning("settings not saved: %s", err)
        self.request_count()
        self.model_ready.emit(info)

    def on_load_failed(self, message: str, still_loaded: Any) -> None:
        banner = self.banners.show_banner(message, "error", "load")
        banner.add_action("Get models…", self.open_model_manager)
        if still_loaded:
            self.model_info = still_loaded
            self.model_state = "ready"
            self.picker.select_path(str(still_loaded.path))
            self.composer.set_model_ready(True)
            self.state_label.setText(f"Ready: {still_loaded.name} (the new model failed to load)")
        else:
            self.model_info = None
            self.model_state = "failed"
            self.composer.set_model_ready(False)
            failed = Path(self.picker.current_path()).name or "the model"
            self.state_label.setText(f"Model failed to load: {failed}")
        self.model_failed.emit(message)
