"""The conversation sidebar: chats grouped by date with a one-line preview, search with snippets, Trash."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from PySide6.QtCore import (
    QPoint,
    QSize,
    Qt,
    QTimer,
    Signal,
    SignalInstance,
)
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QVBoxLayout,
    QWidget,
)

from app import APP_NAME
from app.errors import UserError
from app.ui import icons
from app.ui.plain import plain_tip
from app.ui.rich_text import icon_button
from app.ui.sidebar_items import (
    HEADER_ROLE,
    ID_ROLE,
    MATCH_END,
    MATCH_START,
    MATCHES_ROLE,
    MESSAGE_ROLE,
    PINNED_ROLE,
    PREVIEW_CHARS,
    PREVIEW_ROLE,
    WRITING_ROLE,
    ConversationDelegate,
    date_group,
    plain_preview,
    snippet_spans,
)
from app.ui.sidebar_list import ConversationList, SearchField, TrashButtons

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from app.store import Store

SEARCH_DELAY_MS = 150
NAVIGATE_DELAY_MS = 150  # arrow keys open the chat they stop on, not each one passed


class Sidebar(QWidget):
    """Lists conversations from the window's Store; emits what the user asks for."""

    open_requested = Signal(int, int)  # conversation id, message id (0: none)
    new_requested = Signal()
    rename_requested = Signal(int, str)
    pin_requested = Signal(int, bool)
    delete_requested = Signal(int)
    restore_requested = Signal(int)
    purge_requested = Signal(int)
    models_requested = Signal()

    def __init__(self, store: Store, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("sidebar")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        self.store = store
        self.current_id: int | None = None
        self.writing_id: int | None = None  # the chat a reply is being written into
        name = QLabel(APP_NAME, self)
        name.setProperty("strong", True)
        self.new_button = icon_button("new", "New chat (Ctrl+N)", self, size=18)
        self.new_button.setObjectName("newChatButton")
        self.search = SearchField(self)
        self.search.setObjectName("searchField")
        self.search.setPlaceholderText("Search all messages (Ctrl+F)")
        self.search.setAccessibleName("Search conversations")
        self.search.setClearButtonEnabled(True)
        self.search.addAction(icons.themed("search", 16), QLineEdit.ActionPosition.LeadingPosition)
        self.title = QLabel("", self)
        self.title.setProperty("muted", True)
        self.title.setProperty("small", True)
        self.title.setWordWrap(True)
        self.list = ConversationList(self)
        self.list.setObjectName("conversationList")
        self.list.setAccessibleName("Conversations")
        self.list.setItemDelegate(ConversationDelegate(self.list))
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.list.setMouseTracking(True)
        self.list.setUniformItemSizes(False)
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.list.setEditTriggers(
            QListWidget.EditTrigger.EditKeyPressed | QListWidget.EditTrigger.DoubleClicked
        )
        self._trash_row = TrashButtons(self)
        self.restore_button = self._trash_row.restore
        self.purge_button = self._trash_row.purge
        self._trash_row.hide()
        self.trash_button = icon_button(
            "trash", "Trash: restore deleted conversations or delete them for good", self,
            text="Trash")
        self.trash_button.setCheckable(True)
        self.trash_button.setAccessibleName("Show trash")
        self.models_button = icon_button("model", "Models: get, import and manage models", self,
                                         text="Models")
        self.models_button.setAccessibleName("Models")

        top = QHBoxLayout()
        top.setContentsMargins(6, 0, 0, 0)
        top.addWidget(name)
        top.addStretch(1)
        top.addWidget(self.new_button)
        bottom = QHBoxLayout()
        bottom.addWidget(self.trash_button)
        bottom.addWidget(self.models_button)
        bottom.addStretch(1)
        column = QVBoxLayout(self)
        column.setContentsMargins(8, 10, 8, 8)
        column.setSpacing(8)
        column.addLayout(top)
        column.addWidget(self.search)
        column.addWidget(self.title)
        column.addWidget(self.list, 1)
        column.addWidget(self._trash_row)
        column.addLayout(bottom)

        self._search_timer = QTimer(self)
        self._search_timer.setSingleShot(True)
        self._search_timer.setInterval(SEARCH_DELAY_MS)
        self._search_timer.timeout.connect(self.refresh)
        self._navigate_timer = QTimer(self)
        self._navigate_timer.setSingleShot(True)
        self._navigate_timer.setInterval(NAVIGATE_DELAY_MS)
        self._navigate_timer.timeout.connect(self._open_current)
        self.search.textChanged.connect(self._search_changed)
        self.new_button.clicked.connect(self.new_requested)
        self.models_button.clicked.connect(self.models_requested)
        self.trash_button.toggled.connect(lambda _on: self.refresh())
        self.list.itemActivated.connect(self._activated)
        self.list.itemClicked.connect(self._activated)
        self.list.itemChanged.connect(self._changed)
        self.list.customContextMenuRequested.connect(self._menu)
        self.list.navigated.connect(self._navigated)
        self.list.itemSelectionChanged.connect(self._update_trash_buttons)
        self.restore_button.clicked.connect(lambda: self._on_selected(self.restore_requested))
        self.purge_button.clicked.connect(lambda: self._on_selected(self.purge_requested))
        delete = QShortcut(QKeySequence(QKeySequence.StandardKey.Delete), self.list)
        delete.setContext(Qt.ShortcutContext.WidgetShortcut)
        delete.activated.connect(self._delete_key)
        self._filling = False

    @property
    def mode(self) -> str:
        if self.trash_button.isChecked():
            return "trash"
        return "search" if self.search.text().strip() else "list"

    def refresh(self) -> None:
        """Re-read the list for the current mode (cheap: a few indexed queries)."""
        self._filling = True
        scroll = self.list.verticalScrollBar().value()
        self.list.clear()
        mode = self.mode
        self._trash_row.setVisible(mode == "trash")
        try:
            if mode == "trash":
                trashed = self.store.list_trash()
                self.title.setText("Trash — select a conversation to restore it or delete it "
                                   "for good" if trashed else "The Trash is empty.")
                self.title.setVisible(True)
                for conv in trashed:
                    self._add(conv.id, conv.display_title, editable=False)
            elif mode == "search":
                self._fill_search()
            else:
                self._fill_list()
        except UserError as err:  # a damaged or unreadable database: say so where the list is
            self.title.setText(str(err))
            self.title.setVisible(True)
        finally:
            self._filling = False
        self.list.verticalScrollBar().setValue(scroll)
        self._update_trash_buttons()

    def _fill_search(self) -> None:
        hits = self.store.search(self.search.text(), limit=100, prefix=True,
                                 marks=(MATCH_START, MATCH_END))
        self.title.setText(f"{len(hits)} matching message{'s' if len(hits) != 1 else ''}")
        self.title.setVisible(True)
        for hit in hits:
            spans = snippet_spans(hit.snippet)  # the delegate draws the matches bold
            plain = "".join(text for text, _match in spans)
            title = hit.conversation_title or "New conversation"
            item = self._add(hit.conversation_id, title, editable=False, preview=plain)
            item.setData(MESSAGE_ROLE, hit.message_id)
            item.setData(MATCHES_ROLE, spans)
            item.setData(Qt.ItemDataRole.AccessibleTextRole, f"{title}: {plain}")
            item.setToolTip(plain_tip(f"{title}\n{plain}"))

    def _fill_list(self) -> None:
        conversations = self.store.list_conversations()
        try:
            previews = self.store.previews(PREVIEW_CHARS)
        except UserError as err:  # a damaged page among the messages: titles still show
            log.warning("no previews: %s", err)
            previews = {}
        self.title.setVisible(not conversations)
        self.title.setText("No conversations yet. Start one with New chat (Ctrl+N).")
        group = ""
        now = time.time()
        for conv in conversations:
            heading = "Pinned" if conv.pinned else date_group(conv.updated_at, now)
            if heading != group:
                group = heading
                self._heading(heading)
            item = self._add(conv.id, conv.display_title, editable=True,
                             preview=plain_preview(previews.get(conv.id, "")))
            item.setData(PINNED_ROLE, conv.pinned)
            item.setData(Qt.ItemDataRole.AccessibleTextRole, conv.display_title)
            if conv.id == self.current_id:
                self.list.setCurrentItem(item)

    def _heading(self, text: str) -> None:
        item = QListWidgetItem(text)
        item.setData(HEADER_ROLE, True)
        item.setFlags(Qt.ItemFlag.NoItemFlags)
        self.list.addItem(item)

    def set_writing(self, conv_id: int | None) -> None:
        """Mark the chat a reply is being written into ("writing…"; None: no reply now)."""
        self.writing_id = conv_id
        for item in self.conversation_items():
            on = item.data(ID_ROLE) == conv_id
            if bool(item.data(WRITING_ROLE)) != on:
                self._filling = True  # setData would otherwise read as a rename
                try:
                    item.setData(WRITING_ROLE, on)
                finally:
                    self._filling = False

    def _add(self, conv_id: int, text: str, *, editable: bool, preview: str = ""
             ) -> QListWidgetItem:
        item = QListWidgetItem(text)
        item.setData(ID_ROLE, conv_id)
        item.setData(WRITING_ROLE, conv_id == self.writing_id)
        item.setData(PREVIEW_ROLE, preview)
        item.setToolTip(text if not preview else f"{text}\n{preview}")
        if editable:
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsEditable)
        self.list.addItem(item)
        return item

    def touched(self, conv_id: int, latest: str) -> None:
        """``conv_id`` just got a message (``latest``): it goes to the top of its group with
        that as its preview. When it is there already only its preview changes (no store read,
        nothing rebuilt: this runs as a reply ends); otherwise the list is read again."""
        preview = plain_preview(" ".join(latest[:PREVIEW_CHARS].split()))
        row = self._row_of(conv_id) if self.mode == "list" and preview else -1
        item = self.list.item(row) if row >= 0 else None
        if item is None or not self._leads_its_group(row):
            self.refresh()
            return
        self._filling = True  # setData would otherwise read as a rename
        try:
            item.setData(PREVIEW_ROLE, preview)
            item.setToolTip(f"{item.text()}\n{preview}")
        finally:
            self._filling = False

    def _row_of(self, conv_id: int) -> int:
        for row in range(self.list.count()):
            item = self.list.item(row)
            if not item.data(HEADER_ROLE) and item.data(ID_ROLE) == conv_id:
                return row
        return -1

    def _leads_its_group(self, row: int) -> bool:
        """Whether the conversation at ``row`` is where the newest one of its kind goes:
        first of the pinned ones, or first under "Today"."""
        above = self.list.item(row - 1) if row > 0 else None
        group = "Pinned" if self.list.item(row).data(PINNED_ROLE) else "Today"
        return above is not None and bool(above.data(HEADER_ROLE)) and above.text() == group

    def conversation_items(self) -> list[QListWidgetItem]:
        """The listed conversations (not the date headings), in order."""
        items = (self.list.item(row) for row in range(self.list.count()))
        return [item for item in items if not item.data(HEADER_ROLE)]

    def set_current(self, conv_id: int | None) -> None:
        """Select ``conv_id`` in the list (None: a new chat, nothing selected)."""
        self.current_id = conv_id
        self._navigate_timer.stop()
        if self.mode != "list":
            return
        self._filling = True
        try:
            for item in self.conversation_items():
                if item.data(ID_ROLE) == conv_id:
                    self.list.setCurrentItem(item)
                    self.list.reveal(item)  # scrolls only when it is out of view
                    return
            self.list.clearSelection()
            self.list.setCurrentRow(-1)
        finally:
            self._filling = False

    def selected_id(self) -> int | None:
        item = self.list.currentItem()
        if item is None or item.data(HEADER_ROLE) or not item.isSelected():
            return None
        return int(item.data(ID_ROLE))

    def _on_selected(self, signal: SignalInstance) -> None:
        conv_id = self.selected_id()
        if conv_id is not None:
            signal.emit(conv_id)

    def show_list(self) -> None:
        """Back to the conversation list (out of the Trash, search cleared)."""
        self.search.clear()
        self.trash_button.setChecked(False)

    def _search_changed(self, text: str) -> None:
        if text.strip():
            self._search_timer.start()
        else:  # cleared (Esc, its clear button): the list again at once
            self._search_timer.stop()
            self.refresh()

    def _update_trash_buttons(self) -> None:
        self._trash_row.set_active(self.mode == "trash" and self.selected_id() is not None)

    def _navigated(self) -> None:
        """An arrow key moved the highlight: the chat there opens once the keys rest
        (NAVIGATE_DELAY_MS), so the highlighted row is the open chat."""
        current = self.list.currentItem()
        if self.mode != "list" or current is None or current.data(HEADER_ROLE):
            self._navigate_timer.stop()
        elif current.data(ID_ROLE) != self.current_id:
            self._navigate_timer.start()

    def _open_current(self) -> None:
        item = self.list.currentItem()
        if self.mode != "list" or item is None or item.data(HEADER_ROLE):
            return
        conv_id = int(item.data(ID_ROLE))
        if conv_id == self.current_id:
            return
        keyboard = self.list.hasFocus()
        self.open_requested.emit(conv_id, 0)
        if keyboard:  # opening a chat focuses its composer; the arrow keys stay here
            self.list.setFocus(Qt.FocusReason.OtherFocusReason)

    def _delete_key(self) -> None:
        self._on_selected(self.purge_requested if self.mode == "trash" else self.delete_requested)

    def _activated(self, item: QListWidgetItem) -> None:
        self._navigate_timer.stop()  # a click or Enter opens it now
        if self.mode == "trash" or item.data(HEADER_ROLE):
            return
        message_id = item.data(MESSAGE_ROLE) or 0
        self.open_requested.emit(int(item.data(ID_ROLE)), int(message_id))

    def _changed(self, item: QListWidgetItem) -> None:
        if self._filling or self.mode != "list" or item.data(HEADER_ROLE):
            return
        self.rename_requested.emit(int(item.data(ID_ROLE)), item.text().strip())

    def start_rename(self, conv_id: int) -> None:
        for item in self.conversation_items():
            if item.data(ID_ROLE) == conv_id:
                self.list.setCurrentItem(item)
                self.list.editItem(item)
                return

    def _menu(self, pos: QPoint) -> None:
        item = self.list.itemAt(pos)
        if item is None or item.data(HEADER_ROLE) or self.mode == "search":
            return
        conv_id = int(item.data(ID_ROLE))
        menu = QMenu(self)
        if self.mode == "trash":
            menu.addAction(icons.themed("restore"), "Restore",
                           lambda: self.restore_requested.emit(conv_id))
            menu.addAction(icons.themed("trash"), "Delete forever…",
                           lambda: self.purge_requested.emit(conv_id))
        else:
            pinned = bool(item.data(PINNED_ROLE))
            menu.addAction(icons.themed("edit"), "Rename", lambda: self.start_rename(conv_id))
            menu.addAction(icons.themed("pin"), "Unpin" if pinned else "Pin",
                           lambda: self.pin_requested.emit(conv_id, not pinned))
            menu.addAction(icons.themed("trash"), "Delete",
                           lambda: self.delete_requested.emit(conv_id))
        menu.popup(self.list.viewport().mapToGlobal(pos))

    def sizeHint(self) -> QSize:
        return QSize(max(220, 37 * self.fontMetrics().averageCharWidth()), 600)  # ~37 characters
