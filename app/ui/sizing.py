"""Dialogs that fit their screen at any font size: eliding labels, wrapping check boxes, capped sizes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QPainter, QPaintEvent, QResizeEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QStyle,
    QStyleOptionFrame,
    QWidget,
)

from app.ui.plain import plain_tip

if TYPE_CHECKING:
    from PySide6.QtGui import QMouseEvent


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
    """A one-line label that shrinks first and ends in "…" when it has too little room.

    ``text()`` is always the whole text; while it is cut, the tooltip shows it whole (above
    the tooltip set with ``setToolTip``, which is kept).
    """

    def __init__(self, text: str = "", parent: QWidget | None = None) -> None:
        super().__init__(text, parent)
        self._tip = ""
        self.setTextFormat(Qt.TextFormat.PlainText)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)

    def minimumSizeHint(self) -> QSize:
        hint = super().minimumSizeHint()
        margins = self.contentsMargins()
        ellipsis = self.fontMetrics().horizontalAdvance("…")
        return QSize(ellipsis + margins.left() + margins.right(), hint.height())

    def elided_text(self) -> str:
        """The text as drawn now: whole, or cut at the right with "…"."""
        return self.fontMetrics().elidedText(self.text(), Qt.TextElideMode.ElideRight,
                                             self.contentsRect().width())

    def is_elided(self) -> bool:
        return self.elided_text() != self.text()

    def setText(self, text: str) -> None:
        super().setText(text)
        self._update_tip()

    def setToolTip(self, tip: str) -> None:
        self._tip = tip
        self._update_tip()

    def _update_tip(self) -> None:
        whole = self.text() if self.is_elided() else ""
        tip = "\n".join(t for t in (whole, self._tip) if t)
        super().setToolTip(plain_tip(tip) if tip else "")  # names shown literally, never HTML

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._update_tip()

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        option = QStyleOptionFrame()
        option.initFrom(self)
        self.style().drawPrimitive(QStyle.PrimitiveElement.PE_Widget, option, painter, self)
        align = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter
        self.style().drawItemText(painter, self.contentsRect(), int(align), self.palette(),
                                  self.isEnabled(), self.elided_text(), self.foregroundRole())
        painter.end()
