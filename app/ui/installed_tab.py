"""The model manager's Installed tab: your models, "● in use" on the loaded one, Use and Remove."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.ui.downloads_tab import fit_columns
from app.ui.plain import plain_tip
from app.ui.tasks import run_in_background
from app.units import format_size

if TYPE_CHECKING:
    from app.hub.installed import InstalledModel

IN_USE = "● in use"
IN_USE_TIP = "The model loaded in the window now"


def same_file(a: str, b: str) -> bool:
    """Whether two model paths name one file (one may be resolved and the other not)."""
    if a == b:
        return True
    try:
        return Path(a).resolve() == Path(b).resolve()
    except (OSError, RuntimeError):
        return False


class InstalledTab(QWidget):
    """Owned by the ModelManager (``dialog``: its messages, ``use_model`` and
    ``installed_changed`` signals); every call comes from the UI thread."""

    def __init__(self, dialog: Any, data_role: int) -> None:
        super().__init__()
        self.dialog = dialog
        self._data_role = data_role
        self.in_use: str | None = None  # the loaded model's path (set_in_use)
        self.table = QTableWidget(0, 5, self)
        self.table.setAccessibleName("Installed models")
        self.table.setHorizontalHeaderLabels(["Name", "Size", "Quantization", "Source", "Status"])
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.setShowGrid(False)
        self.table.setAlternatingRowColors(True)
        fit_columns(self.table.horizontalHeader(), 5)
        use = self.use_button = QPushButton("Use", self)
        use.setProperty("primary", True)
        use.clicked.connect(self.use_selected)
        remove = self.remove_button = QPushButton("Remove", self)
        remove.setProperty("danger", True)
        remove.clicked.connect(self.remove_selected)
        self.table.itemSelectionChanged.connect(self._update_buttons)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(use)
        row.addWidget(remove)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table, 1)
        layout.addLayout(row)
        self._update_buttons()

    def _update_buttons(self) -> None:
        """Use and Remove act on the selected model: without one they are off."""
        chosen = self.selected() if self.table.selectedItems() else None
        self.use_button.setEnabled(chosen is not None)
        self.remove_button.setEnabled(chosen is not None)  # the starter says why it stays

    def refresh(self) -> None:
        from app.ui.model_picker import installed_models

        models = installed_models()
        self.table.setRowCount(len(models))
        for row, model in enumerate(models):
            cells = (model.name, format_size(model.size_bytes), model.quantization, model.origin,
                     "")
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setData(self._data_role, (model.name, str(model.path), model.builtin))
                item.setToolTip(plain_tip(str(model.path)))
                self.table.setItem(row, col, item)
        self._mark_in_use()
        self._update_buttons()

    def set_in_use(self, path: str | None) -> None:
        """Mark the model at ``path`` (None: no model loaded) as the one in use."""
        self.in_use = path
        self._mark_in_use()

    def _mark_in_use(self) -> None:
        for row in range(self.table.rowCount()):
            first = self.table.item(row, 0)
            using = (first is not None and self.in_use is not None
                     and same_file(first.data(self._data_role)[1], self.in_use))
            for col in range(self.table.columnCount()):
                item = self.table.item(row, col)
                if item is not None:
                    font = QFont(item.font())
                    font.setBold(using)
                    item.setFont(font)
            status = self.table.item(row, 4)
            if status is not None:
                status.setText(IN_USE if using else "")
                if using:
                    status.setToolTip(IN_USE_TIP)

    def selected(self) -> tuple[str, str, bool] | None:
        """(name, path, built in) of the selected model, or None."""
        row = self.table.currentRow()
        item = self.table.item(row, 0) if row >= 0 else None
        return None if item is None else item.data(self._data_role)

    def use_selected(self) -> None:
        chosen = self.selected()
        if chosen:
            self.dialog.use_model.emit(chosen[1])

    def remove_selected(self) -> None:
        chosen = self.selected()
        if not chosen:
            return
        name, _path, builtin = chosen
        dialog = self.dialog
        if builtin:
            dialog.show_message(f"{name} is built in and cannot be removed.", error=True)
            return

        def work() -> InstalledModel:
            from app.hub import installed

            return installed.remove_model(name)

        def done(model: InstalledModel) -> None:
            dialog.show_message(f"Removed {model.name}.")
            self.refresh()
            dialog.installed_changed.emit()

        run_in_background(work, done, lambda m: dialog.show_message(m, error=True))
