"""The main window: sidebar, chat view, composer, model picker, status line and shortcuts."""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings, Qt, Signal
from PySide6.QtGui import QCloseEvent, QFont, QGuiApplication, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QLabel,
    QMainWindow,
    QPushButton,
    QSplitter,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from app import APP_NAME, notices, paths
from app import settings as app_settings
from app.chat.sampling import resolve_sampling
from app.chat.service import ChatService
from app.engine.types import Sampling
from app.errors import SettingsError, UserError
from app.ui.banners import BannerArea
from app.ui.chat_actions import ChatActions
from app.ui.chat_view import ChatView
from app.ui.composer import Composer
from app.ui.model_actions import ModelActions
from app.ui.model_picker import ModelPicker
from app.ui.sidebar import Sidebar
from app.ui.tasks import on_ui_thread
from app.ui.theme import is_dark
from app.ui.worker import EngineHost

log = logging.getLogger(__name__)
_startup_frozen = False  # gc.freeze() done (once per process, by the first window)
CLOSE_WAIT_MS = 10_000  # on close, wait this long for the model thread before closing later


def default_engine_factory() -> Any:
    from app.engine.local import LocalEngine

    return LocalEngine()


def window_settings() -> QSettings:
    """Window geometry, splitter and last conversation (an ini file in the config dir)."""
    return QSettings(str(paths.config_dir() / "window.ini"), QSettings.Format.IniFormat)


class MainWindow(ChatActions, ModelActions, QMainWindow):
    """The whole app window. ``engine_factory`` builds the engine inside the model thread."""

    reply_done = Signal(object)  # ReplyDone, after the window has shown it
    model_ready = Signal(object)  # ModelInfo
    model_failed = Signal(str)
    request_done = Signal()  # a request ended without a reply (error or cancelled early)
    close_wait_ms = CLOSE_WAIT_MS

    def __init__(self, engine_factory: Callable[[], Any] | None = None, *,
                 db_path: Path | None = None, auto_load: bool = True) -> None:
        super().__init__()
        from app.store import Store

        self.setWindowTitle(APP_NAME)
        self.settings = app_settings.load()
        self.db_path = db_path or paths.database_path()
        self.store = Store.open(self.db_path)
        make_engine = engine_factory or default_engine_factory
        db_path_now = self.db_path

        def make_service() -> ChatService:  # runs on the model thread
            return ChatService(make_engine(), settings=lambda: self.settings, db_path=db_path_now)

        self.host = EngineHost(make_service, self)
        self._closing = False  # closeEvent has begun (it finishes once the model thread ends)
        self._close_later = False  # closing again when the model thread ends
        self._build()
        for text in notices.take():  # e.g. a damaged settings file set aside: said once
            self.banners.show_banner(text, "warning")
        if self.store.damaged:
            self.banners.show_banner(
                f"The conversations database {self.db_path} is damaged: reading works, but "
                "nothing new is saved. Close Llama Desk and run `llama-desk history repair` to "
                "save every readable conversation into a fresh database.", "error", "store")
        elif self.store.read_only:
            self.banners.show_banner(
                f"The conversations database {self.db_path} is read-only: you can read your "
                "conversations, but nothing new is saved. Check the permissions of the file "
                "and its folder.", "warning", "store")
        self._connect()
        # -- hook: Local API server (app/ui/api_server.py), on the window's own engine owner --
        from app.ui.api_server import ApiServerController

        self.api = ApiServerController(self.host.owner, lambda: self.settings, self)
        self.statusBar().addPermanentWidget(self.api.label)
        self.api.failed.connect(self.show_error)
        self.api.history_changed.connect(self.sidebar.refresh)
        self.api.apply()
        # -- end hook --
        self._init_chat_state()
        self.apply_font()
        self.chat.dark = is_dark()
        QGuiApplication.styleHints().colorSchemeChanged.connect(self.on_theme_changed)
        self.sidebar.refresh()
        self._restore_state()
        self.host.detect_backend()
        if auto_load:
            self.load_initial_model()
        self._freeze_startup_objects()

    @staticmethod
    def _freeze_startup_objects() -> None:
        """Keep the cyclic GC's full passes short: they hold the GIL and so freeze the window.

        Imported modules, the widgets and the opened conversation are some 85,000 objects that
        live as long as the app; traversing them made a full collection during a streamed reply
        stall the event loop for ~45 ms. Collected once (for the first window), they are moved
        out of the GC's generations, so later passes only visit what was created since.
        """
        global _startup_frozen
        if not _startup_frozen:
            _startup_frozen = True
            gc.collect()
            gc.freeze()

    # -- layout --------------------------------------------------------------------------------
    def _build(self) -> None:
        self.sidebar = Sidebar(self.store, self)
        self.chat = ChatView(self)
        self.composer = Composer(self)
        self.banners = BannerArea(self)
        center = QWidget(self)
        column = QVBoxLayout(center)
        column.setContentsMargins(6, 6, 6, 6)
        column.addWidget(self.banners)
        column.addWidget(self.chat, 1)
        column.addWidget(self.composer)
        self.splitter = QSplitter(Qt.Orientation.Horizontal, self)
        self.splitter.setObjectName("mainSplitter")
        self.splitter.addWidget(self.sidebar)
        self.splitter.addWidget(center)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([260, 840])
        self.setCentralWidget(self.splitter)

        toolbar = QToolBar("Main", self)
        toolbar.setObjectName("mainToolbar")
        toolbar.setMovable(False)
        self.picker = ModelPicker(self)
        toolbar.addWidget(QLabel(" Model: "))
        toolbar.addWidget(self.picker)
        self.settings_button = QPushButton("Settings", self)
        self.settings_button.setAccessibleName("Settings")
        self.settings_button.setToolTip("Conversation and app settings (Ctrl+,)")
        toolbar.addWidget(self.settings_button)
        self.addToolBar(toolbar)

        self.meter = QLabel("", self)
        self.meter.setObjectName("contextMeter")
        self.meter.setAccessibleName("Context used")
        self.backend_label = QLabel("Backend: …", self)
        self.state_label = QLabel("No model", self)
        self.state_label.setObjectName("modelState")
        # They show model names and file names: never interpreted as rich text (HTML).
        for label in (self.meter, self.backend_label, self.state_label):
            label.setTextFormat(Qt.TextFormat.PlainText)
        bar = self.statusBar()
        bar.addWidget(self.state_label, 1)
        bar.addPermanentWidget(self.meter)
        bar.addPermanentWidget(self.backend_label)
        self.setTabOrder(self.sidebar.new_button, self.sidebar.search)
        self.setTabOrder(self.sidebar.search, self.sidebar.list)
        self.setTabOrder(self.sidebar.list, self.chat)
        self.setTabOrder(self.chat, self.composer.edit)
        self.setTabOrder(self.composer.edit, self.composer.button)
        self.resize(1120, 760)

    def _connect(self) -> None:
        sb, picker, composer = self.sidebar, self.picker, self.composer
        for signal, slot in (
            (sb.open_requested, self.open_conversation), (sb.new_requested, self.new_chat),
            (sb.rename_requested, self.rename_conversation),
            (sb.pin_requested, self.pin_conversation), (sb.delete_requested, self.delete_conversation),
            (sb.restore_requested, self.restore_conversation),
            (sb.purge_requested, self.purge_conversation),
            (picker.model_chosen, self.load_model), (picker.manager_requested, self.open_model_manager),
            (self.settings_button.clicked, self.open_settings),
            (composer.send_requested, self.send), (composer.stop_requested, self.stop),
            (self.chat.action, self.on_chat_action),
        ):
            signal.connect(slot)
        w = self.host
        # Bound methods only: a lambda would run in the model thread (no receiver object).
        w.backend_ready.connect(self.on_backend)
        w.load_started.connect(self.on_load_started)
        w.loaded.connect(self.on_loaded)
        w.load_note.connect(self.on_load_note)
        w.load_failed.connect(self.on_load_failed)
        w.user_stored.connect(self.on_user_stored)
        w.reply_started.connect(self.on_reply_started)
        w.chunk.connect(self.on_chunk)
        w.reply_finished.connect(self.on_reply_finished)
        w.request_failed.connect(self.on_request_failed)
        w.counted.connect(self.on_counted)
        w.prompt_ready.connect(self.on_prompt_ready)
        for keys, slot in (
            ("Ctrl+N", self.new_chat),
            ("Ctrl+F", self.focus_search),
            ("Ctrl+L", self.composer.edit.setFocus),
            ("Esc", self.stop),
            ("Ctrl+Shift+C", self.copy_last_reply),
            ("Ctrl+,", self.open_settings),
        ):
            shortcut = QShortcut(QKeySequence(keys), self)
            shortcut.setContext(Qt.ShortcutContext.WindowShortcut)
            shortcut.activated.connect(slot)

    def on_theme_changed(self, *_args: Any) -> None:
        """The OS switched light/dark: code colours follow (the palette is set by the app)."""
        self.chat.dark = is_dark()
        if not self.generating:
            self.render_branch()

    def on_backend(self, name: str) -> None:
        self.backend_label.setText(f"Backend: {name}")

    def focus_search(self) -> None:
        self.sidebar.trash_button.setChecked(False)
        self.sidebar.search.setFocus()
        self.sidebar.search.selectAll()

    def apply_font(self) -> None:
        font = QFont(self.chat.font())
        font.setPointSize(self.settings.font_size)
        self.chat.setFont(font)
        self.chat.document().setDefaultFont(font)
        self.composer.edit.setFont(font)

    def show_error(self, message: str, key: str = "error") -> Any:
        return self.banners.show_banner(message, "error", key)

    # -- conversations -------------------------------------------------------------------------
    def rename_conversation(self, conv_id: int, title: str) -> None:
        try:
            self.store.rename(conv_id, title)
        except UserError as err:
            self.show_error(str(err))
        self.sidebar.refresh()

    def pin_conversation(self, conv_id: int, pinned: bool) -> None:
        self.store.set_pinned(conv_id, pinned)
        self.sidebar.refresh()

    def delete_conversation(self, conv_id: int) -> None:
        conv = self.store.trash(conv_id)
        if conv_id == self.conv_id:
            self.show_conversation(None)
        self.sidebar.refresh()
        banner = self.banners.show_banner(
            f"“{conv.display_title}” moved to Trash.", "info", key="undo", timeout_ms=15_000
        )
        banner.add_action("Undo", lambda: self.restore_conversation(conv_id))

    def restore_conversation(self, conv_id: int) -> None:
        self.store.restore(conv_id)
        self.sidebar.refresh()
        self.open_conversation(conv_id, 0)

    def purge_conversation(self, conv_id: int) -> None:
        self.stop_reply_in(conv_id)  # its reply has nowhere left to go
        self.store.delete_forever(conv_id)
        self.sidebar.refresh()

    # -- dialogs -------------------------------------------------------------------------------
    def open_model_manager(self) -> None:
        from app.ui.model_manager import ModelManager

        dialog = getattr(self, "_manager", None)
        if dialog is None:
            dialog = ModelManager(self.settings, self)
            dialog.installed_changed.connect(lambda: self.picker.refresh(self.settings.context_size))
            dialog.use_model.connect(self.load_model)
            self._manager = dialog
        dialog.show()
        dialog.raise_()

    def open_settings(self) -> None:
        from app.ui.settings_dialog import SettingsDialog

        conv = self.load_conversation()
        system = conv.system_prompt if conv else self.settings.default_system_prompt
        try:
            shown = resolve_sampling(self.settings.sampling, conv.sampling if conv else None)
        except SettingsError as err:
            self.banners.show_banner(f"{err} Showing the defaults instead.", "warning", "sampling")
            shown = Sampling()
        dialog = SettingsDialog(system, shown, self.settings, self,
                                model_path=self.picker.current_path() or None)
        if dialog.exec() != SettingsDialog.DialogCode.Accepted:
            return
        sampling = dialog.sampling().to_dict()
        if conv is not None:
            self.store.update_settings(conv.id, system_prompt=dialog.system_prompt(),
                                       sampling=sampling)
        self.settings.default_system_prompt = dialog.system_prompt()
        self.settings.sampling = sampling
        reload = dialog.apply_app_settings()
        try:
            app_settings.save(self.settings)
        except UserError as err:
            self.show_error(str(err))
        self.apply_font()
        self.api.apply()  # hook: the Local API server follows its settings
        self.picker.refresh(self.settings.context_size)  # fit verdicts depend on the context
        if reload and self.picker.current_path():
            self.load_model(self.picker.current_path())
        else:
            self.request_count()

    # -- window state --------------------------------------------------------------------------
    def _restore_state(self) -> None:
        qs = window_settings()
        geometry = qs.value("geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        sizes = qs.value("splitter")
        if sizes is not None:
            self.splitter.restoreState(sizes)
        last = qs.value("last_conversation")
        try:
            conv_id = int(str(last)) if last not in (None, "") else 0
        except ValueError:
            conv_id = 0
        if conv_id:
            self.open_conversation(conv_id, 0)

    def save_state(self) -> None:
        qs = window_settings()
        qs.setValue("geometry", self.saveGeometry())
        qs.setValue("splitter", self.splitter.saveState())
        qs.setValue("last_conversation", self.conv_id or "")
        qs.sync()

    def _close_again(self, _value: object = None) -> None:
        self.close()

    def closeEvent(self, event: QCloseEvent) -> None:
        if not self._closing:
            self._closing = True
            self.api.shutdown()  # hook: stop the Local API server before the engine owner
            self.save_state()
            manager = getattr(self, "_manager", None)
            if manager is not None:
                manager.shutdown()
        if not self.host.close(0 if self._close_later else self.close_wait_ms):
            # A model load cannot be cancelled, and destroying its running thread would abort
            # the app: close again once the thread has ended.
            self.state_label.setText("Closing after the model finishes loading…")
            self.splitter.setEnabled(False)
            self.picker.setEnabled(False)
            if not self._close_later:
                self._close_later = True
                closed = self.host.closed_future()
                if closed is not None:
                    closed.add_done_callback(lambda _f: on_ui_thread(self._close_again))
            event.ignore()
            return
        if not self.store.closed:
            self.store.close()
        super().closeEvent(event)
