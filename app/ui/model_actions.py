"""The window's model logic: the first model at startup, loading, what a load ends in, the manager."""

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
    from app.ui.chat_view import ChatView
    from app.ui.composer import Composer
    from app.ui.model_picker import ModelPicker
    from app.ui.worker import EngineHost

log = logging.getLogger(__name__)
INVITE = ("You are chatting with the small built-in starter model. For much better answers, "
          "download Llama-2-chat 7B (about 4 GB, runs on most computers).")


def is_starter(path: str | Path) -> bool:
    from app.starter import starter_path

    starter = starter_path()
    return starter is not None and Path(path).resolve() == starter.resolve()


class ModelActions:
    """Mixed into MainWindow (with ChatActions); the attributes below are built there.

    Which model to load and with which options is the chat service's rule; the window shows
    the load state and remembers the last model used.
    """

    settings: AppSettings
    host: EngineHost
    chat: ChatView
    composer: Composer
    picker: ModelPicker
    banners: BannerArea
    state_label: QLabel
    model_ready: SignalInstance
    model_failed: SignalInstance
    model_info: ModelInfo | None
    model_state: str
    generating: bool
    _closing: bool

    if TYPE_CHECKING:  # defined by MainWindow and ChatActions
        def request_count(self) -> None: ...

    def load_initial_model(self) -> None:
        from app.ui.model_picker import installed_models

        self.picker.refresh(self.settings.context_size)
        models = installed_models()
        if models:
            self.load_model(None)
        else:
            self.model_state = "none"
            self.show_model_state()
            self.banners.show_banner("No model is installed: use “Get models…” to download one.",
                                     "warning", "nomodel").add_action(
                "Get models…", self.open_model_manager, dismiss=False)

    def _invite(self, path: str) -> None:
        """The invitation to get Llama-2 shows while the starter is the model in use."""
        from app.ui.model_picker import installed_models

        has_llama2 = any("llama-2" in f"{m.name} {m.path.name} {m.repo_id}".lower()
                         for m in installed_models())
        if is_starter(path) and not has_llama2:
            if "invite" not in {b.key for b in self.banners.banners}:
                banner = self.banners.show_banner(INVITE, "info", "invite")
                banner.add_action("Get Llama-2-chat 7B…", self.open_model_manager)
        else:
            self.banners.clear("invite")

    def choose_model(self, path: str) -> None:
        """A model picked in the picker: it loads, and typing goes on in the composer."""
        self.load_model(path)
        self.composer.focus()

    def load_model(self, path: str | None) -> None:
        """Load ``path`` (None: the last used model, else the newest installed one)."""
        self.banners.clear("load")
        if path:
            self.picker.select_path(path)
        self.model_state = "loading"
        self.composer.set_model_ready(False)
        self._loading_name = self.picker.name_for(path) if path else ""
        self.show_model_state()
        self.host.load(path)

    def on_load_started(self, path: str) -> None:
        if path:
            self.picker.select_path(path)
            self._loading_name = self.picker.name_for(path)
            self.show_model_state()

    def show_model_state(self) -> None:
        """The status line and the welcome say what the model is doing now."""
        info = self.model_info
        state = self.model_state
        tip = ""
        if state == "loading":
            name = getattr(self, "_loading_name", "") or "the model"
            text = f"Loading {name}…"
        elif state == "ready" and info is not None:
            remote = str(info.path).startswith("engine:")
            where = "remote" if remote else "CPU" if info.n_gpu_layers == 0 else "GPU"
            context = (f"{info.n_ctx:,}-token context" if info.n_ctx
                       else "context size not reported")
            threads = ""
            if info.threads and not remote:  # the thread choice, as `llama-desk bench` shows it
                from app.engine.threads import ThreadChoice

                choice = ThreadChoice(info.threads, info.batch_threads or info.threads,
                                      info.threads_why)
                threads = f", {choice.short()}"
                tip = (f"{choice.decode} threads decode, {choice.batch} read prompts "
                       f"({choice.why}); set them in settings.json (threads, batch_threads)")
            text = f"Ready: {info.name} ({where}{threads}, {context}, {info.format_name} format)"
        elif state == "failed":
            failed = Path(self.picker.current_path()).name or "the model"
            text = f"Model failed to load: {failed}"
        else:
            text = "No model installed" if not self.picker.models else "No model loaded"
        self.state_label.setText(text)
        self.state_label.setToolTip(tip)
        self.chat.welcome.set_model(
            text if state != "ready" or info is None else
            f"{info.name} · {info.n_ctx:,}-token context · ready" if info.n_ctx else
            f"{info.name} · ready")

    def on_load_note(self, text: str) -> None:
        """The usual model was skipped (it failed to load last time): say why, once."""
        self.banners.show_banner(text, "warning", "load-note")
        self._note_shown_for_load = True  # it belongs to this load: the next one retires it

    def on_loaded(self, info: ModelInfo) -> None:
        if self._closing:  # the load ended while the window was closing
            return
        self.model_info = info
        self.model_state = "ready"
        self.picker.select_path(str(info.path))
        self.composer.set_model_ready(True)
        for key in ("load", "nomodel"):
            self.banners.clear(key)  # the problem is gone: so is its message
        if not getattr(self, "_note_shown_for_load", False):
            self.banners.clear("load-note")  # a later load: "X was not loaded" is old news
        self._note_shown_for_load = False
        self._invite(str(info.path))
        self.show_model_state()
        manager = getattr(self, "_manager", None)
        if manager is not None:
            manager.clear_message()
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
        manager = getattr(self, "_manager", None)
        if manager is not None and manager.isVisible():  # "Use" there: say it there too
            manager.show_message(message, error=True)
        if still_loaded:
            self.model_info = still_loaded
            self.model_state = "ready"
            self.picker.select_path(str(still_loaded.path))
            self.composer.set_model_ready(True)
            self.show_model_state()
            self.state_label.setText(self.state_label.text() + " — the new model failed to load")
        else:
            self.model_info = None
            self.model_state = "failed"
            self.composer.set_model_ready(False)
            self.show_model_state()
        self.model_failed.emit(message)

    def open_model_manager(self) -> None:
        from app.ui.model_manager import ModelManager

        dialog = getattr(self, "_manager", None)
        if dialog is None:
            dialog = ModelManager(self.settings, self)  # type: ignore[arg-type]
            dialog.installed_changed.connect(lambda: self.picker.refresh(self.settings.context_size))
            dialog.use_model.connect(self.load_model)
            # "● in use" follows the model this window has loaded (a load, a failed one, none)
            self.model_ready.connect(lambda info: dialog.set_in_use(str(info.path)))
            self.model_failed.connect(lambda _m: dialog.set_in_use(
                str(self.model_info.path) if self.model_info is not None else None))
            self._manager = dialog
        dialog.set_in_use(str(self.model_info.path) if self.model_info is not None else None)
        dialog.show()
        dialog.raise_()
