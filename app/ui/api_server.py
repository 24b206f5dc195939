"""The window's local API server: its Settings page and the controller that runs it beside the chat."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QWidget,
)

from app.errors import UserError
from app.server import keys
from app.server.config import DEFAULT_HOST, ServerConfig, base_url, check_key
from app.ui.tasks import funnel, on_ui_thread

if TYPE_CHECKING:
    from app.chat.service import ChatService
    from app.engine.owner import EngineOwner
    from app.server.runner import ApiServer
    from app.settings import AppSettings

log = logging.getLogger(__name__)
LAN_HOST = "0.0.0.0"


def split_origins(text: str) -> list[str]:
    return [o for o in re.split(r"[\s,]+", text.strip()) if o]


def server_config(settings: AppSettings, key: str | None) -> ServerConfig | None:
    """What the window serves with these settings (None: off); UserError when refused."""
    if not settings.api_server:
        return None
    return ServerConfig(host=LAN_HOST if settings.api_lan else DEFAULT_HOST,
                        port=settings.api_port, api_key=key or None,
                        cors_origins=tuple(settings.api_origins), switch_models=False).checked()


class ApiServerPage(QGroupBox):
    """Settings > Local API server: on/off, port, network reach, key, web origins, history.

    ``error()`` says why the fields cannot be used (shown by the dialog, which then stays
    open); ``apply(settings)`` copies them into the settings and keeps the key in the keyring.
    """

    def __init__(self, settings: AppSettings, parent: QWidget | None = None) -> None:
        super().__init__("Local API server (OpenAI-compatible)", parent)
        from app.ui.sizing import CheckRow  # its text wraps at a large font

        enabled = CheckRow("Serve the loaded model to other programs on this computer")
        self.enabled = enabled.box
        self.enabled.setChecked(settings.api_server)
        self.port = QSpinBox()
        self.port.setRange(1, 65535)
        self.port.setValue(settings.api_port)
        self.port.setAccessibleName("API server port")
        lan = CheckRow("Also reachable from other devices on the network (needs a key)")
        self.lan = lan.box
        self.lan.setChecked(settings.api_lan)
        self.key = QLineEdit(keys.get_key() or "")
        self.key.setEchoMode(QLineEdit.EchoMode.Password)
        self.key.setAccessibleName("API key")
        self.key.setPlaceholderText("Optional on this computer; kept in the OS keyring")
        show = QCheckBox("Show")
        show.toggled.connect(lambda on: self.key.setEchoMode(
            QLineEdit.EchoMode.Normal if on else QLineEdit.EchoMode.Password))
        generate = QPushButton("Generate")
        generate.setToolTip("Make a new random key")
        generate.clicked.connect(lambda: self.key.setText(keys.new_key()))
        self.origins = QLineEdit(" ".join(settings.api_origins))
        self.origins.setAccessibleName("Allowed web origins")
        self.origins.setPlaceholderText("None: web pages cannot call it (e.g. http://localhost:3000)")
        self.save_history = QCheckBox("Save API conversations to the history")
        self.save_history.setChecked(settings.api_save_history)
        self.url = QLabel("")
        self.url.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.port.valueChanged.connect(self._show_url)
        self._show_url()

        form = QFormLayout(self)
        form.addRow(enabled)
        form.addRow("Port", self.port)
        form.addRow("Base URL", self.url)
        form.addRow(lan)
        key_row = QHBoxLayout()
        key_row.setContentsMargins(0, 0, 0, 0)
        key_row.addWidget(self.key, 1)
        key_row.addWidget(show)
        key_row.addWidget(generate)
        key_box = QWidget()
        key_box.setLayout(key_row)
        form.addRow("API key", key_box)
        form.addRow("Allowed web origins", self.origins)
        form.addRow(self.save_history)

    def _show_url(self, *_args: Any) -> None:
        self.url.setText(base_url(DEFAULT_HOST, self.port.value()))

    def _fields(self, settings: AppSettings) -> None:
        settings.api_server = self.enabled.isChecked()
        settings.api_port = self.port.value()
        settings.api_lan = self.lan.isChecked()
        settings.api_origins = split_origins(self.origins.text())
        settings.api_save_history = self.save_history.isChecked()

    def error(self) -> str | None:
        """Why these fields cannot serve (None when they can, or when the server is off)."""
        from app.settings import AppSettings

        trial = AppSettings()
        self._fields(trial)
        trial.api_server = True
        key = self.key.text().strip()
        try:
            if key:
                check_key(key)
            if self.enabled.isChecked() or key or trial.api_origins:
                server_config(trial, key)
        except UserError as err:
            return f"Local API server: {err}"
        return None

    def apply(self, settings: AppSettings) -> None:
        """Copy the fields into ``settings`` and store (or clear) the key in the keyring."""
        self._fields(settings)
        key = self.key.text().strip()
        if key:
            keys.set_key(key)
        elif keys.get_key() is not None:
            keys.clear_key()


class ApiServerController(QObject):
    """Runs the window's API server on the window's own engine owner, per the settings.

    The API's requests queue on the owner with the window's (never two generations at once),
    and the window keeps working while it serves. Starting and stopping happen on a worker
    thread; ``label`` reads "API on :8765" while it runs. ``shutdown()`` stops it for good
    (the window closing).
    """

    failed = Signal(str)  # why the server could not start
    history_changed = Signal()  # an API request stored a conversation
    running_changed = Signal(bool)

    def __init__(self, owner: EngineOwner[ChatService], settings: Callable[[], AppSettings],
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        funnel()  # made here, on the UI thread: the worker thread reports through it
        self.owner = owner
        self.settings = settings
        self.label = QLabel("")
        self.label.setObjectName("apiState")
        self.label.setAccessibleName("Local API server")
        self.label.hide()
        self.server: ApiServer | None = None  # touched on the worker thread only
        self.port: int | None = None  # the port served on (UI thread)
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="api-control")
        self._closed = False

    @property
    def running(self) -> bool:
        """Serving, as far as the UI thread has been told."""
        return self.port is not None

    def apply(self) -> None:
        """Start, restart or stop the server to match the settings now."""
        if not self._closed:
            self._worker.submit(self._reconcile, self.settings())

    def shutdown(self) -> None:
        """Stop serving and end the worker (waits; the window is closing)."""
        if self._closed:
            return
        self._closed = True
        self._worker.submit(self._stop)
        self._worker.shutdown(wait=True)
        self.port = None
        self.label.hide()

    # -- on the worker thread ------------------------------------------------------------------
    def _reconcile(self, settings: AppSettings) -> None:
        try:  # the keyring is only read when serving (importing keyring takes ~0.3 s)
            wanted = server_config(settings, keys.get_key() if settings.api_server else None)
        except UserError as err:
            self._stop()
            on_ui_thread(self._on_failed, str(err))
            return
        running = self.server is not None and self.server.running
        if running and self.server is not None and wanted == self.server.config:
            return
        self._stop()
        if wanted is None:
            on_ui_thread(self._on_state, None)
            return
        from app.server.runner import ApiServer

        server = ApiServer(self.owner, wanted, save_history=lambda: self.settings().api_save_history,
                           on_stored=self._stored)
        try:
            server.start()
        except UserError as err:
            on_ui_thread(self._on_failed, str(err))
            return
        except Exception as err:
            log.exception("the API server did not start")
            on_ui_thread(self._on_failed, f"{type(err).__name__}: {err}")
            return
        self.server = server
        on_ui_thread(self._on_state, (server.port, server.url, wanted))

    def _stop(self) -> None:
        server, self.server = self.server, None
        if server is not None:
            server.stop()

    def _stored(self, _conversation_id: int) -> None:  # on the owner thread
        on_ui_thread(self._on_stored)

    # -- on the UI thread ----------------------------------------------------------------------
    def _on_stored(self, _value: object = None) -> None:
        self.history_changed.emit()

    def _on_state(self, state: tuple[int, str, ServerConfig] | None) -> None:
        if self._closed:
            return
        if state is None:
            self.port = None
            self.label.hide()
            self.running_changed.emit(False)
            return
        port, url, config = state
        self.port = port
        self.label.setText(f"API on :{port}")
        reach = "the network" if config.wildcard else "this computer"
        self.label.setToolTip(f"{url}, reachable from {reach}; "
                              f"{'a key is required' if config.api_key else 'no key'}")
        self.label.show()
        self.running_changed.emit(True)

    def _on_failed(self, message: str) -> None:
        if self._closed:
            return
        self.port = None
        self.label.hide()
        self.running_changed.emit(False)
        self.failed.emit(f"The local API server is off: {message}")
