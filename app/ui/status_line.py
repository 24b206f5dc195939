"""The window's status line: the model state (elided when narrow), the context meter, the backend."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QPainter, QPaintEvent, QResizeEvent
from PySide6.QtWidgets import QLabel, QMainWindow, QSizePolicy, QStyle, QStyleOptionFrame, QWidget


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
        super().setToolTip("\n".join(t for t in (whole, self._tip) if t))

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


def build_status_line(window: QMainWindow) -> tuple[QLabel, QLabel, QLabel]:
    """The model state (left, it gives way first), then the meter and the backend (kept whole)."""
    meter = QLabel("", window)
    meter.setObjectName("contextMeter")
    meter.setAccessibleName("Context used")
    backend = QLabel("Backend: …", window)
    state = ElidedLabel("No model", window)
    state.setObjectName("modelState")
    for label in (meter, backend):
        label.setTextFormat(Qt.TextFormat.PlainText)  # model and file names: never HTML
    status = window.statusBar()
    status.setSizeGripEnabled(False)
    status.addWidget(state, 1)
    status.addPermanentWidget(meter)
    status.addPermanentWidget(backend)
    return meter, backend, state
