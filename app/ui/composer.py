"""The message composer: a rounded box that grows with its text (Enter sends, Shift+Enter adds a
line) and one round button that is Send while idle and Stop while a reply streams."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QEvent, QObject, QSize, Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QPlainTextEdit,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.ui import icons
from app.ui.rich_text import muted_label
from app.ui.theme import colors, set_style_property

MAX_LINES = 8  # the box grows up to this many lines, then scrolls
HINT = "Enter to send · Shift+Enter for a new line · Esc stops a reply"


class ComposerEdit(QPlainTextEdit):
    """Enter submits; Shift+Enter inserts a new line."""

    submitted = Signal()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and not (
            event.modifiers() & Qt.KeyboardModifier.ShiftModifier
        ):
            self.submitted.emit()
            return
        super().keyPressEvent(event)


class Composer(QWidget):
    """Input plus one button that is Send while idle and Stop while a reply streams.

    While a message is being sent, its text stays in the box (read-only) until the chat service
    has stored it (``sent``); a refused message is simply still there (``unsent``).
    """

    send_requested = Signal(str)
    stop_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.box = QFrame(self)
        self.box.setObjectName("composerBox")
        self.edit = ComposerEdit(self.box)
        self.edit.setObjectName("composer")
        self.edit.setAccessibleName("Message")
        self.edit.setPlaceholderText("Message the model…")
        self.edit.setTabChangesFocus(True)
        self.edit.setFrameShape(QFrame.Shape.NoFrame)
        self.edit.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.edit.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.button = QToolButton(self.box)
        self.button.setObjectName("sendButton")
        self.button.setIconSize(QSize(18, 18))
        self.button.setFixedSize(32, 32)
        self.button.setCursor(Qt.CursorShape.PointingHandCursor)
        self.button.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        row = QHBoxLayout(self.box)
        row.setContentsMargins(14, 8, 8, 8)
        row.setSpacing(8)
        row.addWidget(self.edit, 1)
        row.addWidget(self.button, 0, Qt.AlignmentFlag.AlignBottom)
        self.hint = muted_label(HINT, self)
        self.hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(4)
        column.addWidget(self.box)
        column.addWidget(self.hint)
        self._generating = False
        self._elsewhere = ""  # while generating: the title of another chat the reply goes to
        self._model_ready = False
        self._sending = False
        self.edit.textChanged.connect(self._update)
        self.edit.textChanged.connect(self._grow)
        # textChanged can come before the layout has counted the lines (a selection deleted):
        # the layout's own size change is the one that is always up to date
        self.edit.document().documentLayout().documentSizeChanged.connect(self._grow)
        self.edit.submitted.connect(self._submit)
        self.button.clicked.connect(self._clicked)
        self.edit.installEventFilter(self)
        self._update()
        self._grow()

    # -- state ---------------------------------------------------------------------------------
    @property
    def generating(self) -> bool:
        return self._generating

    def set_generating(self, on: bool, elsewhere: str = "") -> None:
        """Send becomes Stop while a reply is written (``elsewhere``: the title of another
        chat it goes to, which the Stop button's tooltip names)."""
        self._generating = on
        self._elsewhere = elsewhere
        self._update()

    def set_model_ready(self, ready: bool) -> None:
        self._model_ready = ready
        self._update()

    def text(self) -> str:
        return self.edit.toPlainText()

    def set_text(self, text: str) -> None:
        self.edit.setPlainText(text)
        self.edit.moveCursor(self.edit.textCursor().MoveOperation.End)

    def sent(self) -> None:
        """The message was stored: the box empties and takes typing again."""
        if self._sending:
            self._sending = False
            self.edit.setReadOnly(False)
            self.edit.clear()
            self._update()

    def unsent(self) -> None:
        """The message was refused: its text stays in the box, editable."""
        if self._sending:
            self._sending = False
            self.edit.setReadOnly(False)
            self._update()

    def focus(self) -> None:
        self.edit.setFocus(Qt.FocusReason.OtherFocusReason)

    def _update(self) -> None:
        c = colors()
        if self._generating:
            self.button.setIcon(icons.icon("stop", c.window, c.window, c.muted))
            self.button.setText("Stop")  # icon only; the text names it for tests and a11y tools
            self.button.setAccessibleName("Stop generating")
            where = self._elsewhere
            self.button.setToolTip(f"Stop the reply being written in “{where}” (Esc)" if where
                                   else "Stop the reply (Esc)")
            self.button.setEnabled(True)
        else:
            self.button.setIcon(icons.icon("send", c.window, c.window, c.muted))
            self.button.setText("Send")
            self.button.setAccessibleName("Send message")
            self.button.setToolTip("Send (Enter)" if self._model_ready else
                                   "Waiting for the model")
            self.button.setEnabled(self._model_ready and not self._sending
                                   and bool(self.text().strip()))

    def _grow(self) -> None:
        """The box is as tall as its text, from one line up to MAX_LINES."""
        doc = self.edit.document()
        line = self.edit.fontMetrics().lineSpacing()
        lines = max(1, min(MAX_LINES, int(doc.size().height())))
        margins = self.edit.contentsMargins()
        self.edit.setFixedHeight(lines * line + 2 * int(doc.documentMargin())
                                 + margins.top() + margins.bottom() + 2)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.edit and event.type() in (QEvent.Type.FocusIn, QEvent.Type.FocusOut):
            set_style_property(self.box, "focused", event.type() == QEvent.Type.FocusIn)
        return False

    def resizeEvent(self, event: Any) -> None:
        super().resizeEvent(event)
        self._grow()

    def _clicked(self) -> None:
        if self._generating:
            self.stop_requested.emit()
        else:
            self._submit()

    def _submit(self) -> None:
        if self._generating or not self._model_ready or self._sending:
            return
        text = self.text().strip()
        if not text:
            return
        self._sending = True
        self.edit.setReadOnly(True)
        self._update()
        self.send_requested.emit(text)
