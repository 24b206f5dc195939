"""Dialogs that fit their screen at any font size: eliding labels, wrapping check boxes, capped sizes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QSize, Qt
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QSizePolicy, QWidget

from app.ui.plain import plain_tip

if TYPE_CHECKING:
    from PySide6.QtGui import QMouseEvent, QResizeEvent


def available_size(widget: QWidget) -> QSize:
    """The available geometry (without panels and docks) of the screen ``widget`` opens on:
    its parent window's screen while it has not been shown."""
    parent = widget.parentWidget()
    screen = (parent.window() if parent is not None else widget).screen()
    return screen.availableGeometry().size()


def resize_within_screen(widget: QWidget, width: int, height: int) -> None:
    """``widget.resize(width, height)``, but never larger than its screen's available size."""
    room = available_size(widget)
    widget.resize(min(width, room.width()), min(height, room.height()))


class CheckRow(QWidget):
    """A check box (``box``) whose text wraps, which a QCheckBox's own text never does: a long
    one must not widen the page at a large font. Clicking the text toggles the box."""

    def __init__(self, text: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.box = QCheckBox(self)
        self.box.setAccessibleName(text)
        self.label = _ClickLabel(text, self.box, self)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.box, 0, Qt.AlignmentFlag.AlignTop)
        row.addWidget(self.label, 1)


class _ClickLabel(QLabel):
    def __init__(self, text: str, box: QCheckBox, parent: QWidget) -> None:
        super().__init__(text, parent)
        self.setTextFormat(Qt.TextFormat.PlainText)
        self.setWordWrap(True)
        self._box = box

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton and self._box.isEnabled():
            self._box.toggle()
        super().mouseReleaseEvent(event)


class ElidedLabel(QLabel):
    """One line of plain text cut with "…" to the width it is given (it never widens its
    window); the whole text is in the tooltip."""

    def __init__(self, text: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setTextFormat(Qt.TextFormat.PlainText)
        self.full_text = text
        self.setToolTip(plain_tip(text))
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        super().setText(text)

    def sizeHint(self) -> QSize:
        margins = self.contentsMargins()
        width = self.fontMetrics().horizontalAdvance(self.full_text)
        return QSize(width + margins.left() + margins.right(), super().sizeHint().height())

    def minimumSizeHint(self) -> QSize:
        return QSize(12 * self.fontMetrics().averageCharWidth(), super().sizeHint().height())

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        shown = self.fontMetrics().elidedText(self.full_text, Qt.TextElideMode.ElideRight,
                                              self.contentsRect().width())
        if shown != self.text():
            super().setText(shown)
