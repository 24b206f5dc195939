"""The prompt inspector: the exact prompt text and token count a reply's model received."""

from __future__ import annotations

import html

from PySide6.QtGui import QFont, QGuiApplication
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)


class PromptInspector(QDialog):
    """Read-only view of one prompt; ``note`` says whether it is exact or re-rendered."""

    def __init__(self, text: str, tokens: int, note: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Prompt inspector")
        count = f"{tokens:,} tokens" if tokens >= 0 else "token count unavailable"
        self.summary = QLabel(f"<b>{count}</b> — {html.escape(note)}")  # note: model's name
        self.summary.setWordWrap(True)
        self.text = QPlainTextEdit(text)
        self.text.setReadOnly(True)
        self.text.setAccessibleName("Prompt text")
        self.text.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
        mono = QFont("monospace")
        mono.setStyleHint(QFont.StyleHint.Monospace)
        self.text.setFont(mono)
        copy = QPushButton("Copy prompt")
        copy.clicked.connect(lambda: QGuiApplication.clipboard().setText(text))
        box = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        box.addButton(copy, QDialogButtonBox.ButtonRole.ActionRole)
        box.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.summary)
        layout.addWidget(self.text, 1)
        layout.addWidget(box)
        self.resize(720, 520)
