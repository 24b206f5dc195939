"""The window's status line: the model state (elided when narrow), the context meter, the backend."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QMainWindow

from app.ui.sizing import ElidedLabel


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
