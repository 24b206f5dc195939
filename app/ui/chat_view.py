"""The conversation: message widgets in a centred column of readable width, streamed by appending.

Only the newest messages are built when a conversation opens (older ones come in pages as the
reader scrolls up), a streamed reply appends settled paragraphs to its own widget and redraws
only its unfinished tail, at most ~30 times a second: nothing is rebuilt per token.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QFontMetrics, QGuiApplication, QKeyEvent, QKeySequence
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from app.store.models import StoredMessage
from app.ui.chat_stream import Streaming
from app.ui.markdown import (
    ACTION_SCHEME,
    SAFE_LINK,
    Segment,
    render_plain,
    render_segments,
)
from app.ui.message_widget import MessageWidget, cut_marker
from app.ui.selection import SelectionSpan, plain_text
from app.ui.welcome import Welcome

FIRST_PAGE = 16  # messages built when a conversation opens (the screen holds fewer)
PAGE = 24  # earlier messages built at a time as the reader scrolls up
FILL_CHECK_MS = 30  # after building, whether the view can scroll yet (layout comes first)
COLUMN_CHARS = 80  # the text column holds about this many characters
BOTTOM_SLACK = 24  # pixels from the end that still count as "at the bottom"


class ChatView(Streaming, QScrollArea):
    """Shows a branch of messages; streams one reply at its end."""

    action = Signal(str, int, int)  # kind, message id, argument (regen/prompt/prev/next)
    edit_requested = Signal(int, str)  # user message id, new text (edited in place)
    example_chosen = Signal(str)
    anchorClicked = Signal(QUrl)  # a link in any message
    link_failed = Signal(str)  # a web link no browser could open
    link_hovered = Signal(str)  # the address of the link under the mouse ("" once it left)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("chatView")
        self.setAccessibleName("Conversation")
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        host = QWidget(self)
        host.setObjectName("chatColumnHost")
        row = QHBoxLayout(host)
        row.setContentsMargins(20, 12, 20, 20)
        self.column = QWidget(host)
        self.column.setObjectName("chatColumn")
        row.addStretch(1)
        row.addWidget(self.column, 100)
        row.addStretch(1)
        self._layout = QVBoxLayout(self.column)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setSpacing(10)
        self.earlier = QPushButton("Show earlier messages", self.column)
        self.earlier.setFlat(True)
        self.earlier.clicked.connect(self.show_earlier)
        self.earlier.hide()
        self.welcome = Welcome(self.column)
        self.welcome.example_chosen.connect(self.example_chosen)
        self.welcome.hide()
        self._layout.addWidget(self.earlier)
        self._layout.addWidget(self.welcome)
        self._layout.addStretch(1)
        self.setWidget(host)
        # found by each message's text; Ctrl+A copies the unbuilt top of a long chat too
        self.selection_span = SelectionSpan(self, self.column, self.unbuilt_texts)
        self.anchorClicked.connect(self._on_anchor)
        bar = self.verticalScrollBar()
        bar.rangeChanged.connect(self._on_range)
        bar.actionTriggered.connect(self._on_user_scroll)
        bar.valueChanged.connect(self._on_value)
        self._user_scroll = False  # the next value change comes from the reader

        self.dark = False
        self.branch: list[StoredMessage] = []
        self.messages: dict[int, StoredMessage] = {}
        self.widgets: dict[int, MessageWidget] = {}
        self.code_blocks: dict[int, list[str]] = {}
        self._items: list[QWidget] = []  # message widgets and the cut marker, in order
        self._first = 0  # index in ``branch`` of the first message built
        self._cut = 0
        self._marker: QWidget | None = None
        self._newest: int | None = None  # the message whose buttons show without hovering
        self._hold: tuple[str, Any] | None = ("bottom", 0)  # what scrolling keeps in view
        self._scrolling = False  # the view itself is moving the scroll bar
        self._cache: dict[tuple[int, float, bool], tuple[list[Segment], list[str]]] = {}
        self._init_streaming()
        self.fit_column()

    # -- geometry ------------------------------------------------------------------------------
    def fit_column(self) -> None:
        """Cap the text column at about COLUMN_CHARS characters of the current font."""
        width = QFontMetrics(self.font()).averageCharWidth() * COLUMN_CHARS
        self.column.setMaximumWidth(max(480, width + 40))

    # -- scrolling: stay at the bottom, or keep what the reader looks at ------------------------
    def _set_scroll(self, value: int) -> None:
        self._scrolling = True
        try:
            self.verticalScrollBar().setValue(value)
        finally:
            self._scrolling = False

    def _apply_hold(self) -> None:
        bar = self.verticalScrollBar()
        if self._hold is None:
            return
        kind, what = self._hold
        if kind == "bottom":
            self._set_scroll(bar.maximum() - int(what))
        elif kind == "widget" and isinstance(what, QWidget):
            top = what.mapTo(self.column, what.rect().topLeft()).y() + self.column.y()
            self._set_scroll(max(0, top - 12))

    def _on_range(self, _low: int, high: int) -> None:
        self._apply_hold()
        if high == 0 and self._first > 0:
            QTimer.singleShot(FILL_CHECK_MS, self, self._fill_view)

    def _fill_view(self) -> None:
        """Too little to scroll up to (short messages): build the previous page at once."""
        if self.verticalScrollBar().maximum() == 0 and self._first > 0:
            self.show_earlier()

    def _on_user_scroll(self, _action: int) -> None:
        """Wheel, keys, scroll bar: the reader moves (layout changes never count as that)."""
        self._user_scroll = True

    def _on_value(self, value: int) -> None:
        if self._scrolling or not self._user_scroll:
            return
        self._user_scroll = False
        bar = self.verticalScrollBar()
        self._hold = ("bottom", 0) if value >= bar.maximum() - BOTTOM_SLACK else None
        if value == 0 and self._first > 0:
            self.show_earlier()

    def scroll_to_bottom(self) -> None:
        self._hold = ("bottom", 0)
        self._apply_hold()

    def at_bottom(self) -> bool:
        bar = self.verticalScrollBar()
        return bar.value() >= bar.maximum() - BOTTOM_SLACK

    def scroll_to_message(self, message_id: int) -> None:
        """Bring message ``message_id`` to the top of the view (a search hit)."""
        if message_id not in self.widgets:
            index = next((i for i, m in enumerate(self.branch) if m.id == message_id), None)
            if index is None:
                return
            self._build_from(max(0, index - 2))
        self._hold = ("widget", self.widgets[message_id])
        QTimer.singleShot(0, self, self._apply_hold)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        """Ctrl+A / Ctrl+C with the chat itself focused (a click between messages) act on the
        messages' text as they do inside one."""
        span = self.selection_span
        if event.matches(QKeySequence.StandardKey.SelectAll):
            span.select_all()
            return
        chosen = [t for t in span.texts() if t.textCursor().hasSelection()]
        if event.matches(QKeySequence.StandardKey.Copy) and chosen:
            QGuiApplication.clipboard().setMimeData(chosen[0].createMimeDataFromSelection())
            return
        super().keyPressEvent(event)

    # -- links ---------------------------------------------------------------------------------
    def _on_anchor(self, url: QUrl) -> None:
        text = url.toString()
        if text.startswith(ACTION_SCHEME + ":"):
            parts = text.split(":", 1)[1].split("/")
            kind = parts[0]
            mid = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
            arg = int(parts[2]) if len(parts) > 2 and parts[2].isdigit() else 0
            if kind == "copy":
                self.copy_message(mid)
            elif kind == "code":
                blocks = self.code_blocks.get(mid, [])
                if arg < len(blocks):
                    QGuiApplication.clipboard().setText(blocks[arg])
            else:
                self.action.emit(kind, mid, arg)
        elif SAFE_LINK.match(text) and not QDesktopServices.openUrl(url):
            # opened only when clicked, in the system browser; none there: say so
            QGuiApplication.clipboard().setText(text)
            self.link_failed.emit(text)

    def copy_message(self, message_id: int) -> None:
        msg = self.messages.get(message_id)
        if msg is not None:
            QGuiApplication.clipboard().setText(msg.content)

    # -- whole conversation --------------------------------------------------------------------
    def _segments(self, msg: StoredMessage) -> list[Segment]:
        key = (msg.id, msg.updated_at, self.dark)
        cached = self._cache.get(key)
        if cached is None:
            segments = render_segments(msg.content, msg.id, self.dark)
            cached = (segments, [s.code for s in segments if not isinstance(s, str)])
            if len(self._cache) > 2000:
                self._cache.clear()
            self._cache[key] = cached
        return cached[0]

    def _make(self, msg: StoredMessage) -> MessageWidget:
        widget = MessageWidget(msg, self.column)
        if msg.role == "assistant":
            segments = self._segments(msg)
            widget.body.set_segments(segments)
            self.code_blocks[msg.id] = [s.code for s in segments if not isinstance(s, str)]
        widget.action.connect(self.action)
        widget.edit_submitted.connect(self.edit_requested)
        widget.link.connect(self.anchorClicked)
        self.widgets[msg.id] = widget
        return widget

    def _clear(self) -> None:
        for item in self._items:
            self._layout.removeWidget(item)
            item.hide()
            item.deleteLater()
        self._items = []
        self.widgets = {}
        self._marker = None
        self._newest = None

    def show_messages(self, messages: list[StoredMessage], dropped: int = 0,
                      around: int = 0) -> None:
        """Show a branch (on opening a conversation or after edits, never per token).

        ``dropped``: the index of the first message the latest prompt kept (0: all were kept);
        a marker is drawn there. ``around``: a message id to build the branch from.
        """
        self._stop_live()
        self.branch = list(messages)
        self.messages = {m.id: m for m in messages}
        self.code_blocks = {}
        self._cut = dropped
        start = max(0, len(messages) - FIRST_PAGE)
        if around:
            index = next((i for i, m in enumerate(messages) if m.id == around), None)
            if index is not None:
                start = min(start, max(0, index - 2))
        self._hold = ("bottom", 0)
        self._clear()
        self._build_from(start)
        self.welcome.setVisible(not messages)

    def _build_from(self, start: int) -> None:
        """Build messages ``branch[start:_first]`` (all of them the first time) at the top."""
        end = self._first if self._items else len(self.branch)
        widgets: list[QWidget] = []
        for index in range(start, end):
            if self._cut and index == self._cut:
                self._marker = cut_marker(self._cut_count(), self.column)
                widgets.append(self._marker)
            widgets.append(self._make(self.branch[index]))
        for offset, widget in enumerate(widgets):
            self._layout.insertWidget(1 + offset, widget)
            widget.show()  # now, not queued: the layout and the scroll range follow at once
        self._items[0:0] = widgets
        self._first = start
        if start > 0:
            QTimer.singleShot(FILL_CHECK_MS, self, self._fill_view)  # once laid out
        self._mark_newest()
        remaining = start
        self.earlier.setVisible(remaining > 0)
        self.earlier.setText(f"Show {remaining:,} earlier message{'s' if remaining != 1 else ''}")

    def _cut_count(self) -> int:
        from app.chat.service import branch_cut

        return branch_cut(self.branch)[1] or self._cut

    def show_earlier(self) -> None:
        """Build the previous page of messages above, keeping the reader's place."""
        if self._first <= 0:
            return
        bar = self.verticalScrollBar()
        self._hold = ("bottom", bar.maximum() - bar.value())
        self._build_from(max(0, self._first - PAGE))

    def _mark_newest(self) -> None:
        """The newest message shows its buttons without hovering (the others on hover)."""
        last = self.branch[-1].id if self.branch else None
        if self._newest is not None and self._newest != last:
            previous = self.widgets.get(self._newest)
            if previous is not None:
                previous.set_keep_actions(False)
        if last in self.widgets:
            self.widgets[last].set_keep_actions(True)
        self._newest = last

    def append_message(self, msg: StoredMessage) -> None:
        """Add one finished message at the end (the user's, as soon as it is stored)."""
        self.welcome.hide()
        self.branch.append(msg)
        self.messages[msg.id] = msg
        widget = self._make(msg)
        self._layout.insertWidget(1 + len(self._items), widget)
        widget.show()
        self._items.append(widget)
        self._mark_newest()
        self.scroll_to_bottom()  # what was just sent is shown

    def unbuilt_texts(self) -> list[str]:
        """The plain text of the messages above the first one built, piece by piece."""
        pieces: list[str] = []
        for m in self.branch[:self._first]:
            pieces += plain_text([render_plain(m.content)] if m.role == "user" else self._segments(m))
        return pieces

    def focus_pager(self, index: int, kind: str) -> bool:
        """After switching alternates the keyboard stays on ‹ (``kind`` "prev") or › of the
        message now at ``index`` (the other one when that end is reached); False: neither."""
        msg = self.branch[index] if 0 <= index < len(self.branch) else None
        widget = self.widgets.get(msg.id) if msg is not None else None
        if widget is None:
            return False
        pair = (widget.prev_button, widget.next_button)
        for button in pair if kind == "prev" else pair[::-1]:
            if button.isVisibleTo(widget) and button.isEnabled():
                button.setFocus(Qt.FocusReason.OtherFocusReason)
                return True
        return False

    def message_widget(self, message_id: int) -> MessageWidget | None:
        return self.widgets.get(message_id)

    def start_edit(self, message_id: int) -> bool:
        widget = self.widgets.get(message_id)
        if widget is None:
            return False
        widget.start_edit()
        return True

    def toPlainText(self) -> str:
        """Everything shown, as plain text (the welcome, or the messages)."""
        if self.welcome.isVisibleTo(self) and not self.branch:
            return self.welcome.text()
        out = []
        for item in self._items:
            out.append(item.text() if isinstance(item, MessageWidget) else getattr(
                item, "text", lambda: "")())
        return "\n\n".join(out)

    def update_message(self, msg: StoredMessage) -> None:
        """New stats or alternates for a shown message (its text unchanged)."""
        self.messages[msg.id] = msg
        self.branch = [msg if m.id == msg.id else m for m in self.branch]
        widget = self.widgets.get(msg.id)
        if widget is not None:
            widget.update_footer(msg)
