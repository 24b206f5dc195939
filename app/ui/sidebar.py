"""The conversation sidebar: pinned then recent chats, full-text search with snippets, and Trash."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QPoint, Qt, QTimer, Signal, SignalInstance
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.ui.plain import plain_tip

if TYPE_CHECKING:
    from app.store import Store

ID_ROLE = Qt.ItemDataRole.UserRole
MESSAGE_ROLE = Qt.ItemDataRole.UserRole + 1
SEARCH_DELAY_MS = 150
PIN = "★ "  # pinned marker (in every common font, unlike an emoji)


def snippet_text(snippet: str) -> str:
    """A store snippet ('[word]' marks matches) as plain text with the marks kept visible."""
    return " ".join(snippet.split())


class Sidebar(QWidget):
    """Lists conversations from the window's Store; emits what the user asks for."""

    open_requested = Signal(int, int)  # conversation id, message id (0: none)
    new_requested = Signal()
    rename_requested = Signal(int, str)
    pin_requested = Signal(int, bool)
    delete_requested = Signal(int)
    restore_requested = Signal(int)
    purge_requested = Signal(int)

    def __init__(self, store: Store, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.store = store
        self.current_id: int | None = None
        self.search = QLineEdit(self)
        self.search.setObjectName("searchField")
        self.search.setPlaceholderText("Search all messages (Ctrl+F)")
        self.search.setAccessibleName("Search conversations")
        self.search.setClearButtonEnabled(True)
        self.new_button = QPushButton("New chat", self)
        self.new_button.setObjectName("newChatButton")
        self.new_button.setAccessibleName("New chat")
        self.new_button.setToolTip("New chat (Ctrl+N)")
        self.trash_button = QPushButton("Trash", self)
        self.trash_button.setCheckable(True)
        self.trash_button.setAccessibleName("Show trash")
        self.title = QLabel("Conversations", self)
        self.list = QListWidget(self)
        self.list.setObjectName("conversationList")
        self.list.setAccessibleName("Conversations")
        self.list.setWordWrap(True)
        self.list.setStyleSheet("QListWidget::item { padding: 4px 2px; }")
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.list.setEditTriggers(
            QListWidget.EditTrigger.EditKeyPressed | QListWidget.EditTrigger.DoubleClicked
        )
        self.restore_button = QPushButton("Restore", self)
        self.restore_button.setAccessibleName("Restore conversation")
        self.purge_button = QPushButton("Delete forever", self)
        self.purge_button.setAccessibleName("Delete conversation forever")
        trash_row = QHBoxLayout()
        trash_row.addWidget(self.restore_button)
        trash_row.addWidget(self.purge_button)
        self._trash_row = QWidget(self)
        self._trash_row.setLayout(trash_row)
        self._trash_row.hide()

        top = QHBoxLayout()
        top.addWidget(self.new_button, 1)
        top.addWidget(self.trash_button)
        column = QVBoxLayout(self)
        column.setContentsMargins(6, 6, 6, 6)
        column.addLayout(top)
        column.addWidget(self.search)
        column.addWidget(self.title)
        column.addWidget(self.list, 1)
        column.addWidget(self._trash_row)

        self._search_timer = QTimer(self)
        self._search_timer.setSingleShot(True)
        self._search_timer.setInterval(SEARCH_DELAY_MS)
        self._search_timer.timeout.connect(self.refresh)
        self.search.textChanged.connect(lambda _t: self._search_timer.start())
        self.new_button.clicked.connect(self.new_requested)
        self.trash_button.toggled.connect(lambda _on: self.refresh())
        self.list.itemActivated.connect(self._activated)
        self.list.itemClicked.connect(self._activated)
        self.list.itemChanged.connect(self._changed)
        self.list.customContextMenuRequested.connect(self._menu)
        self.restore_button.clicked.connect(lambda: self._on_selected(self.restore_requested))
        self.purge_button.clicked.connect(lambda: self._on_selected(self.purge_requested))
        delete = QShortcut(QKeySequence(QKeySequence.StandardKey.Delete), self.list)
        delete.setContext(Qt.ShortcutContext.WidgetShortcut)
        delete.activated.connect(lambda: self._on_selected(self.delete_requested))
        self._filling = False

    @property
    def mode(self) -> str:
        if self.trash_button.isChecked():
            return "trash"
        return "search" if self.search.text().strip() else "list"

    def refresh(self) -> None:
        """Re-read the list for the current mode (cheap: a few indexed queries)."""
        self._filling = True
        self.list.clear()
        mode = self.mode
        self._trash_row.setVisible(mode == "trash")
        try:
            if mode == "trash":
                self.title.setText("Trash — select a conversation to restore it")
                for conv in self.store.list_trash():
                    self._add(conv.id, conv.display_title, editable=False)
            elif mode == "search":
                hits = self.store.search(self.search.text(), limit=100, prefix=True, marks=("«", "»"))
                self.title.setText(f"{len(hits)} matching message{'s' if len(hits) != 1 else ''}")
                for hit in hits:
                    text = f"{hit.conversation_title or 'New conversation'}\n{snippet_text(hit.snippet)}"
                    item = self._add(hit.conversation_id, text, editable=False)
                    item.setData(MESSAGE_ROLE, hit.message_id)
                    item.setToolTip(plain_tip(hit.snippet))
            else:
                self.title.setText("Conversations")
                for conv in self.store.list_conversations():
                    label = (PIN if conv.pinned else "") + conv.display_title
                    item = self._add(conv.id, label, editable=True)
                    item.setData(Qt.ItemDataRole.AccessibleTextRole, conv.display_title)
                    if conv.id == self.current_id:
                        self.list.setCurrentItem(item)
        finally:
            self._filling = False

    def _add(self, conv_id: int, text: str, *, editable: bool) -> QListWidgetItem:
        item = QListWidgetItem(text)
        item.setData(ID_ROLE, conv_id)
        if editable:
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsEditable)
        self.list.addItem(item)
        return item

    def set_current(self, conv_id: int | None) -> None:
        self.current_id = conv_id
        if self.mode != "list":
            return
        for row in range(self.list.count()):
            item = self.list.item(row)
            if item.data(ID_ROLE) == conv_id:
                self._filling = True
                self.list.setCurrentItem(item)
                self._filling = False
                return

    def selected_id(self) -> int | None:
        item = self.list.currentItem()
        return None if item is None else int(item.data(ID_ROLE))

    def _on_selected(self, signal: SignalInstance) -> None:
        conv_id = self.selected_id()
        if conv_id is not None:
            signal.emit(conv_id)

    def _activated(self, item: QListWidgetItem) -> None:
        if self.mode == "trash":
            return
        message_id = item.data(MESSAGE_ROLE) or 0
        self.open_requested.emit(int(item.data(ID_ROLE)), int(message_id))

    def _changed(self, item: QListWidgetItem) -> None:
        if self._filling or self.mode != "list":
            return
        title = item.text().removeprefix(PIN).strip()
        self.rename_requested.emit(int(item.data(ID_ROLE)), title)

    def start_rename(self, conv_id: int) -> None:
        for row in range(self.list.count()):
            item = self.list.item(row)
            if item.data(ID_ROLE) == conv_id:
                self._filling = True
                item.setText(item.text().removeprefix(PIN))
                self._filling = False
                self.list.setCurrentItem(item)
                self.list.editItem(item)
                return

    def _menu(self, pos: QPoint) -> None:
        item = self.list.itemAt(pos)
        if item is None or self.mode == "search":
            return
        conv_id = int(item.data(ID_ROLE))
        menu = QMenu(self)
        if self.mode == "trash":
            menu.addAction("Restore", lambda: self.restore_requested.emit(conv_id))
            menu.addAction("Delete forever", lambda: self.purge_requested.emit(conv_id))
        else:
            pinned = item.text().startswith(PIN)
            menu.addAction("Rename", lambda: self.start_rename(conv_id))
            menu.addAction("Unpin" if pinned else "Pin",
                           lambda: self.pin_requested.emit(conv_id, not pinned))
            menu.addAction("Delete", lambda: self.delete_requested.emit(conv_id))
        menu.popup(self.list.viewport().mapToGlobal(pos))
