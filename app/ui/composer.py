"""The message composer: multi-line input (Enter sends, Shift+Enter adds a line) and Send/Stop."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QHBoxLayout, QPlainTextEdit, QPushButton, QVBoxLayout, QWidget


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
    """Input plus one button that is Send while idle and Stop while a reply streams."""

    send_requested = Signal(str)
    stop_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.edit = ComposerEdit(self)
        self.edit.setObjectName("composer")
        self.edit.setAccessibleName("Message")
        self.edit.setPlaceholderText("Message the model — Enter sends, Shift+Enter adds a line")
        self.edit.setTabChangesFocus(True)
        self.edit.setMaximumHeight(96)
        self.edit.setMinimumHeight(56)
        self.button = QPushButton("Send", self)
        self.button.setObjectName("sendButton")
        self.button.setAccessibleName("Send message")
        self.button.setDefault(False)
        self.button.setMinimumWidth(80)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.edit, 1)
        side = QVBoxLayout()
        side.addStretch(1)
        side.addWidget(self.button)
        row.addLayout(side)
        self.setLayout(row)
        self._generating = False
        self._model_ready = False
        self.edit.textChanged.connect(self._update)
        self.edit.submitted.connect(self._submit)
        self.button.clicked.connect(self._clicked)
        self._update()

    @property
    def generating(self) -> bool:
        return self._generating

    def set_generating(self, on: bool) -> None:
        self._generating = on
        self._update()

    def set_model_ready(self, ready: bool) -> None:
        self._model_ready = ready
        self._update()

    def text(self) -> str:
        return self.edit.toPlainText()

    def set_text(self, text: str) -> None:
        self.edit.setPlainText(text)

    def _update(self) -> None:
        if self._generating:
            self.button.setText("Stop")
            self.button.setAccessibleName("Stop generating")
            self.button.setToolTip("Stop the reply (Esc)")
            self.button.setEnabled(True)
        else:
            self.button.setText("Send")
            self.button.setAccessibleName("Send message")
            self.button.setToolTip("Send (Enter)" if self._model_ready else "Waiting for the model")
            self.button.setEnabled(self._model_ready and bool(self.text().strip()))

    def _clicked(self) -> None:
        if self._generating:
            self.stop_requested.emit()
        else:
            self._submit()

    def _submit(self) -> None:
        if self._generating or not self._model_ready:
            return
        text = self.text().strip()
        if not text:
            return
        self.edit.clear()
        self.send_requested.emit(text)
