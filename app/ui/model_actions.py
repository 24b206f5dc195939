"""The window's model logic: the first model at startup, loading, and what a load ends in."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.errors import UserError

log = logging.getLogger(__name__)


class ModelActions:
    """Mixed into MainWindow (with ChatActions); the attributes below are built there."""

    settings: Any
    host: Any
    composer: Any
    picker: Any
    banners: Any
    state_label: Any
    model_ready: Any
    model_failed: Any
    model_info: Any
    model_state: str
    _closing: bool

    if TYPE_CHECKING:  # defined by MainWindow and ChatActions
        def open_model_manager(self) -> None: ...

        def request_count(self) -> None: ...

    def load_initial_model(self) -> None:
        from app.ui.model_picker import installed_models

        self.picker.refresh(self.settings.context_size)
        models = installed_models()
        wanted = self.settings.model
        paths = [str(m.path) for m in models]
        if wanted not in paths:
            wanted = paths[0] if paths else None
            if len(models) > 1:
                from app.hub import installed

                default = installed.default_model()
                wanted = str(default.path) if default else wanted
        if not any("llama-2" in f"{m.name} {m.path.name} {m.repo_id}".lower() for m in models):
            banner = self.banners.show_banner(
                "You are chatting with the small built-in starter model. For much better answers,"
                " download Llama-2-chat 7B (about 4 GB, runs on most computers).", "info", "invite")
            banner.add_action("Get Llama-2-chat 7B…", self.open_model_manager)
        if wanted:
            self.load_model(wanted)
        else:
            self.state_label.setText("No model installed")
            self.banners.show_banner("No model is installed: use “Get models…” to download one.",
                                     "warning", "nomodel")

    def load_model(self, path: str) -> None:
        self.banners.clear("load")
        self.picker.select_path(path)
        self.model_state = "loading"
        self.composer.set_model_ready(False)
        self.state_label.setText(f"Loading {self.picker.name_for(path)}…")
        try:
            options = self.settings.load_options(path)
        except UserError as err:
            self.on_load_failed(str(err), None)
            return
        self.host.load(path, options, self.picker.name_for(path))

    def on_loaded(self, info: Any) -> None:
        if self._closing:  # the load ended while the window was closing
            return
        self.model_info = info
        self.model_state = "ready"
        self.picker.select_path(str(info.path))
        self.composer.set_model_ready(True)
        where = "CPU" if info.n_gpu_layers == 0 else "GPU"
        name = self.picker.name_for(str(info.path))
        self.state_label.setText(
            f"Ready: {name} ({where}, {info.n_ctx:,}-token context, {info.format_name} format)")
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
            self.state_label.setText(f"Model failed to load: {Path(self.picker.current_path()).name}")
        self.model_failed.emit(message)
