"""The model manager's Downloads tab: job rows, an empty state, Pause/Resume/Cancel as rows allow."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.ui.plain import plain_tip

EMPTY_TEXT = "No downloads or conversions. Downloads you start from the Catalogue appear here."
STATE_ROLE = Qt.ItemDataRole.UserRole + 1  # the job's state value, on its State cell
FINISHED = ("done", "failed", "cancelled")
LEFT = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter


def allowed(action: str, state: str) -> bool:
    """Whether a job in ``state`` can take ``action`` (as the job queues in app/hub/jobs.py do:
    pause a queued or running job, resume a paused or failed one, cancel any unfinished one)."""
    if action == "pause":
        return state not in FINISHED and state != "paused"
    if action == "resume":
        return state in ("paused", "failed")
    return state not in FINISHED


def fit_columns(header: QHeaderView, count: int) -> None:
    """Columns as wide as their content; the last one takes the rest (no cut-off text).
    Headers are left-aligned like their cells."""
    header.setDefaultAlignment(LEFT)
    for column in range(count - 1):
        header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
    header.setSectionResizeMode(count - 1, QHeaderView.ResizeMode.Stretch)


class DownloadsTab(QWidget):
    """``act(action, job_id)`` runs "pause", "resume" or "cancel" on the selected row's job."""

    def __init__(self, act: Callable[[str, str], None], data_role: int,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._act = act
        self._data_role = data_role
        self.table = QTableWidget(0, 5, self)
        self.table.setAccessibleName("Downloads")
        self.table.setHorizontalHeaderLabels(["File", "Progress", "Speed", "ETA", "State"])
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.setShowGrid(False)
        header = self.table.horizontalHeader()
        fit_columns(header, 5)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)  # the progress bar
        header.setSectionResizeMode(4, QHeaderView.ResizeMode.ResizeToContents)
        header.setMinimumSectionSize(80)
        self.empty = QLabel(EMPTY_TEXT)
        self.empty.setWordWrap(True)
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty.setProperty("muted", True)
        over = QVBoxLayout(self.table.viewport())  # the empty state, under the column headers
        over.addWidget(self.empty)
        self.buttons: dict[str, QPushButton] = {}
        row = QHBoxLayout()
        row.addStretch(1)
        for label, action in (("Pause", "pause"), ("Resume", "resume"), ("Cancel", "cancel")):
            button = QPushButton(label, self)
            button.clicked.connect(lambda _c=False, a=action: self.act(a))
            self.buttons[action] = button
            row.addWidget(button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table, 1)
        layout.addLayout(row)
        self.table.itemSelectionChanged.connect(self.update_buttons)
        self.update_buttons()

    def add_row(self, job_id: str, title: str, tip: str) -> int:
        """A new row for job ``job_id`` (a progress bar and empty cells); returns its index."""
        table = self.table
        row = table.rowCount()
        table.insertRow(row)
        name = QTableWidgetItem(title)
        name.setData(self._data_role, job_id)
        name.setToolTip(plain_tip(tip))
        table.setItem(row, 0, name)
        bar = QProgressBar()
        bar.setRange(0, 1000)
        bar.setTextVisible(True)
        bar.setAccessibleName(f"Progress of {title}")
        table.setCellWidget(row, 1, bar)
        table.setRowHeight(row, max(table.rowHeight(row), 30))
        for col in (2, 3, 4):
            table.setItem(row, col, QTableWidgetItem(""))
        self.empty.hide()
        return row

    def cell(self, row: int, col: int) -> QTableWidgetItem:
        item = self.table.item(row, col)
        if item is None:
            item = QTableWidgetItem("")
            self.table.setItem(row, col, item)
        return item

    def set_state(self, row: int, state: str, text: str) -> None:
        """Row ``row``'s job is in ``state`` (a job state value), shown as ``text``."""
        cell = self.cell(row, 4)
        cell.setText(text)
        cell.setData(STATE_ROLE, state)
        self.update_buttons()

    def selected_row(self) -> int | None:
        rows = self.table.selectionModel().selectedRows()
        return rows[0].row() if rows else None

    def selected_job(self) -> str | None:
        row = self.selected_row()
        item = self.table.item(row, 0) if row is not None else None
        return None if item is None else str(item.data(self._data_role))

    def act(self, action: str) -> None:
        """Run ``action`` on the selected row's job (a queue ignores one its job cannot take:
        the row may show a state a moment old)."""
        job = self.selected_job()
        if job is not None:
            self._act(action, job)

    def _state(self, row: int) -> str:
        return str(self.cell(row, 4).data(STATE_ROLE) or "")

    def update_buttons(self) -> None:
        row = self.selected_row()
        state = self._state(row) if row is not None else None
        for action, button in self.buttons.items():
            button.setEnabled(state is not None and allowed(action, state))
