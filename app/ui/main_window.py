"""The main window: sidebar, chat view, composer, model picker, status line and shortcuts."""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings, QSize, Qt, Signal
from PySide6.QtGui import QCloseEvent, QKeySequence, QResizeEvent, QShortcut
from PySide6.QtWidgets import (
    QApplication,
    QHBoxLayout,
    QMainWindow,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from app import APP_NAME, notices, paths
from app import settings as app_settings
from app.chat.service import ChatService
from app.ui import icons
from app.ui.banners import BannerArea
from app.ui.chat_actions import ChatActions
from app.ui.chat_view import ChatView
from app.ui.composer import Composer
from app.ui.conversation_actions import ConversationActions
from app.ui.model_actions import ModelActions
from app.ui.model_picker import ModelPicker
from app.ui.rich_text import icon_button
from app.ui.sidebar import Sidebar
from app.ui.status_line import build_status_line
from app.ui.tasks import keep_window_responsive, on_ui_thread
from app.ui.theme import apply_theme, is_dark, set_choice
from app.ui.worker import EngineHost

log = logging.getLogger(__name__)
_startup_frozen = False  # gc.freeze() done (once per process, by the first window)
CLOSE_WAIT_MS = 10_000  # on close, wait this long for the model thread before closing later
COLLAPSE_BELOW = 900  # the sidebar folds away below this window width
MINIMUM_SIZE = QSize(560, 420)


def default_engine_factory() -> Any:
    from app.engine.local import LocalEngine

    return LocalEngine()


def window_settings() -> QSettings:
    """Window geometry, splitter and last conversation (an ini file in the config dir)."""
    return QSettings(str(paths.config_dir() / "window.ini"), QSettings.Format.IniFormat)


class MainWindow(ChatActions, ConversationActions, ModelActions, QMainWindow):
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

        keep_window_responsive()
        self.setWindowTitle(APP_NAME)
        self.setMinimumSize(MINIMUM_SIZE)
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
        self._sidebar_auto = False  # the sidebar was folded because the window got narrow
        self._sidebar_chars = 0  # the character width the sidebar's width was last set for
        self._build()
        for text in notices.take():  # e.g. a damaged settings file set aside: said once
            self.banners.show_banner(text, "warning")
        if self.store.damaged:
            self.banners.show_banner(
                f"The conversations database {self.db_path} is damaged: reading works, but "
                "nothing new is saved. Repair saves every readable conversation into a fresh "
                "database (the damaged file is kept).", "error", "store"
            ).add_action("Repair…", self.repair_database)
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
        from PySide6.QtGui import QGuiApplication

        QGuiApplication.styleHints().colorSchemeChanged.connect(self.on_theme_changed)
        self.sidebar.refresh()
        self._restore_state()
        self._watch_registry()
        self.host.detect_backend()
        if auto_load:
            self.load_initial_model()
        else:
            self.show_model_state()
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

        top = QWidget(self)
        top.setObjectName("topBar")
        bar = QHBoxLayout(top)
        bar.setContentsMargins(8, 6, 8, 6)
        self.sidebar_button = icon_button("sidebar", "Show or hide the sidebar (Ctrl+B)", top)
        self.picker = ModelPicker(top)
        self.settings_button = icon_button("settings", "Settings (Ctrl+,)", top, size=18)
        self.settings_button.setObjectName("settingsButton")
        self.settings_button.setAccessibleName("Settings")
        bar.addWidget(self.sidebar_button)
        bar.addWidget(self.picker)
        bar.addStretch(1)
        bar.addWidget(self.settings_button)

        center = QWidget(self)
        center.setObjectName("chatArea")
        column = QVBoxLayout(center)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(0)
        column.addWidget(top)
        banner_row = QHBoxLayout()
        banner_row.setContentsMargins(16, 8, 16, 0)
        banner_row.addWidget(self.banners)
        column.addLayout(banner_row)
        column.addWidget(self.chat, 1)
        composer_row = QHBoxLayout()
        composer_row.setContentsMargins(20, 4, 20, 10)
        composer_row.addStretch(1)
        composer_row.addWidget(self.composer, 100)
        composer_row.addStretch(1)
        column.addLayout(composer_row)

        self.splitter = QSplitter(Qt.Orientation.Horizontal, self)
        self.splitter.setObjectName("mainSplitter")
        self.splitter.setHandleWidth(1)
        self.splitter.setChildrenCollapsible(False)
        self.splitter.addWidget(self.sidebar)
        self.splitter.addWidget(center)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([264, 856])
        self.setCentralWidget(self.splitter)

        self.meter, self.backend_label, self.state_label = build_status_line(self)
        self.setTabOrder(self.sidebar.new_button, self.sidebar.search)
        self.setTabOrder(self.sidebar.search, self.sidebar.list)
        self.setTabOrder(self.sidebar.list, self.chat)
        self.setTabOrder(self.chat, self.composer.edit)
        self.setTabOrder(self.composer.edit, self.composer.button)
        self.resize(1180, 780)

    def _connect(self) -> None:
        sb, picker, composer, chat, w = self.sidebar, self.picker, self.composer, self.chat, self.host
        for signal, slot in (
            (sb.open_requested, self.open_conversation), (sb.new_requested, self.new_chat),
            (sb.rename_requested, self.rename_conversation),
            (sb.pin_requested, self.pin_conversation), (sb.delete_requested, self.delete_conversation),
            (sb.restore_requested, self.restore_conversation),
            (sb.purge_requested, self.purge_conversation),
            (sb.models_requested, self.open_model_manager),
            (picker.model_chosen, self.choose_model), (picker.manager_requested, self.open_model_manager),
            (self.settings_button.clicked, self.open_settings),
            (self.sidebar_button.clicked, self.toggle_sidebar),
            (composer.send_requested, self.send), (composer.stop_requested, self.stop),
            (chat.action, self.on_chat_action), (chat.edit_requested, self.edit_message),
            (chat.example_chosen, self.use_example), (chat.link_failed, self.on_link_failed),
            (chat.link_hovered, self.on_link_hovered),
            # The host's signals: bound methods only (a lambda would run in the model thread,
            # having no receiver object).
            (w.backend_ready, self.on_backend), (w.load_started, self.on_load_started),
            (w.loaded, self.on_loaded), (w.load_note, self.on_load_note),
            (w.load_failed, self.on_load_failed), (w.user_stored, self.on_user_stored),
            (w.reply_started, self.on_reply_started), (w.prompt_progress, self.on_prompt_progress),
            (w.chunk, self.on_chunk), (w.reply_finished, self.on_reply_finished),
            (w.request_failed, self.on_request_failed), (w.counted, self.on_counted),
            (w.prompt_ready, self.on_prompt_ready),
        ):
            signal.connect(slot)
        quit_keys = QKeySequence(QKeySequence.StandardKey.Quit)  # Ctrl+Q (Cmd+Q on macOS)
        for keys, slot in (
            (QKeySequence("Ctrl+N"), self.new_chat),
            (QKeySequence("Ctrl+F"), self.focus_search),
            (QKeySequence("Ctrl+L"), self.composer.focus),
            (QKeySequence("Esc"), self.stop),
            (QKeySequence("Ctrl+Shift+C"), self.copy_last_reply),
            (QKeySequence("Ctrl+,"), self.open_settings),
            (QKeySequence("Ctrl+B"), self.toggle_sidebar),
            (quit_keys if not quit_keys.isEmpty() else QKeySequence("Ctrl+Q"), self.quit_app),
        ):
            shortcut = QShortcut(keys, self)
            shortcut.setContext(Qt.ShortcutContext.WindowShortcut)
            shortcut.activated.connect(slot)

    def quit_app(self) -> None:
        """Quit (Ctrl+Q): the window closes as with its close button, and the app ends with it."""
        self.close()

    # -- look ----------------------------------------------------------------------------------
    def on_theme_changed(self, *_args: Any) -> None:
        """The OS switched light/dark (or the setting changed): colours follow."""
        set_choice(self.settings.theme)
        app = QApplication.instance()
        if isinstance(app, QApplication):
            apply_theme(app, self.settings.font_size)
        self.chat.dark = is_dark()
        self.composer.set_generating(self.generating)  # the send button's icon colours
        if not self.generating:
            self.render_branch()
        self.sidebar.list.viewport().update()
        icons.retheme(self)
        self.picker.refresh(self.settings.context_size)

    def apply_font(self) -> None:
        """The font-size setting applies to the whole window (sidebar included)."""
        set_choice(self.settings.theme)
        app = QApplication.instance()
        if isinstance(app, QApplication):
            apply_theme(app, self.settings.font_size)
        font = app.font() if isinstance(app, QApplication) else self.font()
        for widget in (self, self.chat, self.sidebar, self.composer.edit):
            widget.setFont(font)
        chars = self.sidebar.fontMetrics().averageCharWidth()
        self._scale_sidebar(self._sidebar_chars, chars)
        self._sidebar_chars = chars
        self.chat.dark = is_dark()
        self.chat.fit_column()
        self.composer.setMaximumWidth(self.chat.column.maximumWidth())
        self.sidebar.list.doItemsLayout()

    def _scale_sidebar(self, before: int, after: int) -> None:
        """A larger font widens the sidebar in step (titles stay as long as they were)."""
        sizes = self.splitter.sizes()
        if before > 0 and after != before and len(sizes) == 2 and sizes[0] > 0:
            width = min(sum(sizes) // 2, round(sizes[0] * after / before))
            self.splitter.setSizes([width, sum(sizes) - width])

    def add_status_item(self, widget: QWidget) -> None:
        """A permanent item on the status line, left of the context meter (e.g. a local API
        server's "API on :8765")."""
        status = self.statusBar()
        status.removeWidget(self.meter)
        status.removeWidget(self.backend_label)
        for item in (widget, self.meter, self.backend_label):
            status.addPermanentWidget(item)
            item.show()

    def on_backend(self, name: str) -> None:
        self.backend_label.setText(f"Backend: {name}")

    def focus_search(self) -> None:
        self.set_sidebar_visible(True)
        self.sidebar.trash_button.setChecked(False)
        self.sidebar.search.setFocus()
        self.sidebar.search.selectAll()

    def on_link_hovered(self, url: str) -> None:
        """A web link under the mouse shows its address in the status line before any click."""
        from app.ui.markdown import SAFE_LINK

        if SAFE_LINK.match(url):
            self.statusBar().showMessage(url)
        else:
            self.statusBar().clearMessage()

    def on_link_failed(self, url: str) -> None:
        self.banners.show_banner(
            f"No web browser could open {url}. The address is copied to the clipboard: paste "
            "it into a browser.", "warning", "link", timeout_ms=15_000)

    # -- sidebar: a toggle, folded away automatically when the window is narrow -----------------
    def toggle_sidebar(self) -> None:
        self.set_sidebar_visible(not self.sidebar.isVisibleTo(self))

    def set_sidebar_visible(self, on: bool) -> None:
        self._sidebar_auto = False
        self.sidebar.setVisible(on)
        self.sidebar_button.setToolTip(("Hide" if on else "Show") + " the sidebar (Ctrl+B)")

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        narrow = event.size().width() < COLLAPSE_BELOW
        if narrow and self.sidebar.isVisibleTo(self) and not self._sidebar_auto:
            self.set_sidebar_visible(False)
            self._sidebar_auto = True
        elif not narrow and self._sidebar_auto:
            self.set_sidebar_visible(True)

    # -- the model registry: models imported elsewhere (the CLI) appear at once -----------------
    def _watch_registry(self) -> None:
        from app.ui.registry_watch import RegistryWatch

        self.registry_watch = RegistryWatch(self)
        self.registry_watch.changed.connect(self._registry_changed)

    def _registry_changed(self) -> None:
        self.picker.refresh(self.settings.context_size)
        manager = getattr(self, "_manager", None)
        if manager is not None:
            manager.refresh_installed()

    # -- window state --------------------------------------------------------------------------
    def _restore_state(self) -> None:
        qs = window_settings()
        geometry = qs.value("geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        sizes = qs.value("splitter")
        if sizes is not None:
            self.splitter.restoreState(sizes)
        if str(qs.value("sidebar", "true")).lower() == "false":
            self.set_sidebar_visible(False)
        last = qs.value("last_conversation")
        try:
            conv_id = int(str(last)) if last not in (None, "") else 0
        except ValueError:
            conv_id = 0
        if conv_id:
            self.open_conversation(conv_id, 0)
        else:
            self.show_conversation(None)

    def save_state(self) -> None:
        qs = window_settings()
        qs.setValue("geometry", self.saveGeometry())
        qs.setValue("splitter", self.splitter.saveState())
        qs.setValue("sidebar", "true" if self.sidebar.isVisibleTo(self) or self._sidebar_auto
                    else "false")
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
                manager.hide()
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
