"""The new-chat welcome: the model and its state, example prompts to click, and the shortcuts."""

from __future__ import annotations

import html
import re

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeyEvent, QMouseEvent, QPixmap
from PySide6.QtWidgets import QFrame, QGridLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget

from app.ui.rich_text import muted_label

EXAMPLES = (
    ("Explain a concept", "Explain how a hash table works, with a small Python example."),
    ("Write something", "Write a short, friendly email asking to move our meeting to Friday."),
    ("Make a plan", "Make a 3-day itinerary for Lisbon as a table: day, morning, afternoon."),
    ("Fix my code", "Why does `for i in range(len(xs)): xs.remove(xs[i])` fail in Python?"),
)
_CODE = re.compile(r"`([^`]+)`")  # an inline code span of Markdown, as the prompts write it
SHORTCUTS = (("Enter", "send"), ("Shift+Enter", "new line"), ("Esc", "stop"),
             ("Ctrl+N", "new chat"), ("Ctrl+F", "search"), ("Ctrl+,", "settings"))


def readable(prompt: str) -> str:
    """``prompt`` as a reader sees it: inline code without its Markdown backticks."""
    return _CODE.sub(r"\1", prompt)


def prompt_html(prompt: str) -> str:
    """``prompt`` as rich text: the code spans in the monospace font, the rest escaped."""
    parts = _CODE.split(prompt)  # text, code, text, code, ...
    return "".join(f"<code>{html.escape(part)}</code>" if index % 2 else html.escape(part)
                   for index, part in enumerate(parts))


class ExampleCard(QFrame):
    """A clickable card: a short title over the example prompt (wrapped, muted).

    The card shows the prompt as it reads (code in monospace, no backticks); a click sends
    ``prompt`` unchanged.
    """

    clicked = Signal()

    def __init__(self, title: str, prompt: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("exampleCard")
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setAccessibleName(f"Example: {title}")
        self.setToolTip(f"Send: {readable(prompt)}")
        self.prompt = prompt
        box = QVBoxLayout(self)
        box.setContentsMargins(14, 10, 14, 10)
        box.setSpacing(2)
        self.title = QLabel(title, self)
        self.title.setProperty("strong", True)
        self.body = muted_label("", self)
        self.body.setTextFormat(Qt.TextFormat.RichText)
        self.body.setText(prompt_html(prompt))
        self.body.setWordWrap(True)
        box.addWidget(self.title)
        box.addWidget(self.body)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)

    def mousePressEvent(self, event: QMouseEvent) -> None:
        event.accept()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        event.accept()
        if event.button() == Qt.MouseButton.LeftButton and self.rect().contains(
                event.position().toPoint()):
            self.clicked.emit()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Space):
            self.clicked.emit()
            return
        super().keyPressEvent(event)

    def text(self) -> str:
        return f"{self.title.text()}\n{readable(self.prompt)}"


class Welcome(QWidget):
    """Shown in place of the conversation when a chat has no messages yet."""

    example_chosen = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("welcome")
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 48, 0, 24)
        column.setSpacing(10)
        logo = QLabel(self)
        logo.setAlignment(Qt.AlignmentFlag.AlignCenter)
        logo.setPixmap(_logo())
        self.title = QLabel("What can I help with?", self)
        self.title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.title.setStyleSheet("font-size: x-large; font-weight: 600;")
        self.model = muted_label("", self, small=False)
        self.model.setObjectName("welcomeModel")
        self.model.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.model.setWordWrap(True)
        grid = QGridLayout()
        grid.setSpacing(10)
        self.examples: list[ExampleCard] = []
        for index, (title, prompt) in enumerate(EXAMPLES):
            card = ExampleCard(title, prompt, self)
            card.clicked.connect(lambda p=prompt: self.example_chosen.emit(p))
            grid.addWidget(card, index // 2, index % 2)
            self.examples.append(card)
        keys = "   ·   ".join(f"{key} {what}" for key, what in SHORTCUTS)
        self.shortcuts = muted_label(keys, self)
        self.shortcuts.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.shortcuts.setWordWrap(True)
        column.addWidget(logo)
        column.addWidget(self.title)
        column.addWidget(self.model)
        column.addSpacing(18)
        column.addLayout(grid)
        column.addSpacing(12)
        column.addWidget(self.shortcuts)
        column.addStretch(1)

    def set_model(self, text: str) -> None:
        """The loaded model and its state ("Ready: … · 4,096-token context", "Loading …")."""
        self.model.setText(text)

    def text(self) -> str:
        return "\n".join([self.title.text(), self.model.text(),
                          *(b.text() for b in self.examples), self.shortcuts.text()])


def _logo() -> QPixmap:
    from app import paths

    px = QPixmap(str(paths.resources_dir() / "icons" / "llama-desk-128.png"))
    if px.isNull():
        return px
    px = px.scaled(112, 112, Qt.AspectRatioMode.KeepAspectRatio,
                   Qt.TransformationMode.SmoothTransformation)
    px.setDevicePixelRatio(2.0)
    return px
