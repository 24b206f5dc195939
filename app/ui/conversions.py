"""The model manager's official-weights part: catalogue rows, conversion jobs in the Downloads
table (stage, bytes, speed, ETA) with Pause / Resume / Cancel, and folder imports."""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QFileDialog,
    QInputDialog,
    QProgressBar,
    QTreeWidget,
    QTreeWidgetItem,
)

from app.ui.plain import plain_tip
from app.units import format_duration, format_estimate, format_size

log = logging.getLogger(__name__)
PREFIX = "official:"  # catalogue item data (repo_id, "official:<repo>:<quant>")
STAGE_NAMES = {"download": "Download", "check": "md5 check", "convert": "Convert",
               "quantize": "Quantize", "verify": "Verify"}


def official_choices() -> list[Any]:
    """Catalogue-like rows (one per official repo and --quant choice) for fit verdicts."""
    from app.convert.quantize import QUANTS
    from app.hub import catalogue

    return [catalogue.CatalogueFile(m.repo_id, f"{PREFIX}{m.repo_id}:{q}", q, m.result_bytes(q),
                                    size_class=m.size_class)
            for m in catalogue.official_models() for q in QUANTS]


def describe(repo_id: str, quant: str) -> str:
    """Gating, model page, token state, disk and time for one official choice."""
    from app.hub.official import describe_official

    return " ".join(describe_official(repo_id, quant))


class Conversions(QObject):
    """Owned by the ModelManager; every call comes from the UI thread."""

    _snapshot = Signal(object)  # ConvertSnapshot, from the conversion thread (queued here)

    def __init__(self, dialog: Any, manager: Any = None) -> None:
        super().__init__(dialog)
        self.dialog = dialog
        if manager is None:
            from app.hub.convert_jobs import ConvertManager

            manager = ConvertManager()
        self.jobs = manager
        self.rows: dict[str, int] = {}
        self._snapshot.connect(self._on_snapshot)
        self.jobs.subscribe(self._snapshot.emit)
        dialog.tree.currentItemChanged.connect(self._on_current)

    # ---- catalogue ----------------------------------------------------------------------------
    def populate(self, tree: QTreeWidget, verdicts: dict[str, str]) -> list[Any]:
        """Add the official entries to the catalogue tree; returns them for the verdicts."""
        from app.hub import catalogue

        choices = official_choices()
        for model in catalogue.official_models():
            top = QTreeWidgetItem([f"{model.title} (official weights)", "", "",
                                   f"{catalogue.OFFICIAL_NOTE}; converted here after download"])
            top.setToolTip(0, model.page)
            for f in (c for c in choices if c.repo_id == model.repo_id):
                took = format_estimate(model.convert_seconds(f.quantization))
                status = (f"needs ~{format_size(model.disk_bytes(f.quantization))} disk, {took} "
                          "to convert")
                child = QTreeWidgetItem([f.quantization, format_size(f.size_bytes) + " (approx.)",
                                         verdicts.get(f.filename, "…"), status])
                child.setData(0, self.dialog.DATA_ROLE, (f.repo_id, f.filename))
                child.setToolTip(0, model.page)
                top.addChild(child)
            tree.addTopLevelItem(top)
        return choices

    def _on_current(self, item: QTreeWidgetItem | None, _previous: Any) -> None:
        data = item.data(0, self.dialog.DATA_ROLE) if item is not None else None
        if data and str(data[1]).startswith(PREFIX):
            from app.ui.tasks import run_in_background

            repo_id, quant = data[0], data[1].rsplit(":", 1)[1]  # the keyring is read off-thread
            run_in_background(lambda: describe(repo_id, quant), self.dialog.show_message)

    def start_selected(self, data: Any) -> bool:
        """Start a conversion when ``data`` is an official catalogue choice (True if it was)."""
        if not data or not str(data[1]).startswith(PREFIX):
            return False
        repo_id, quant = data[0], data[1].rsplit(":", 1)[1]
        self.start_repo(repo_id, quant)
        return True

    def start_repo(self, repo_id: str, quant: str) -> str:
        job_id = str(self.jobs.add_repo(repo_id, quant))
        self.dialog.tabs.setCurrentIndex(2)
        self.dialog.show_message(f"Downloading {repo_id} to convert it to {quant}…")
        return job_id

    def ask_folder(self) -> None:
        from app.convert.quantize import DEFAULT_QUANT, QUANTS

        folder = QFileDialog.getExistingDirectory(self.dialog, "Convert a Llama checkpoint folder")
        if not folder:
            return
        names = list(QUANTS)
        quant, ok = QInputDialog.getItem(self.dialog, "Quantization", "Convert to:", names,
                                         names.index(DEFAULT_QUANT), False)
        if ok:
            self.start_folder(folder, quant)

    def start_folder(self, folder: str, quant: str) -> str:
        from app.convert.layout import find_checkpoint
        from app.errors import UserError

        try:
            find_checkpoint(folder)
        except UserError as err:
            self.dialog.show_message(str(err), error=True)
            return ""
        job_id = str(self.jobs.add_folder(folder, quant))
        self.dialog.tabs.setCurrentIndex(2)
        self.dialog.show_message(f"Converting {folder} to {quant}…")
        return job_id

    # ---- the Downloads table ------------------------------------------------------------------
    def owns(self, job_id: Any) -> bool:
        return str(job_id) in self.rows

    def action(self, job_id: str, action: str) -> None:
        getattr(self.jobs, action)(job_id)

    def _on_snapshot(self, snap: Any) -> None:
        tab = self.dialog.downloads_tab
        row = self.rows.get(snap.job_id)
        if row is None:
            row = self.rows[snap.job_id] = tab.add_row(snap.job_id, snap.title, snap.source)
        widget = tab.table.cellWidget(row, 1)
        running = not snap.state.settled and snap.total > 0
        if isinstance(widget, QProgressBar):
            widget.setValue(int(snap.fraction * 1000) if not snap.state.finished else 1000)
            stage = STAGE_NAMES.get(snap.stage, snap.stage or "Waiting")
            widget.setFormat(f"{stage}: {format_size(snap.done)} of {format_size(snap.total)}"
                             if snap.total else stage)
        tab.cell(row, 2).setText(f"{format_size(snap.speed)}/s" if running else "")
        tab.cell(row, 3).setText(format_duration(snap.eta, unknown="") if running else "")
        state = snap.state.value + (f" — {snap.message}" if snap.message and not
                                    snap.state.finished else "")
        tab.set_state(row, snap.state.value, state)
        if snap.state.value == "failed" and snap.error:
            tab.cell(row, 4).setToolTip(plain_tip(snap.error))
            self.dialog.show_message(snap.error, error=True)
        elif snap.state.value == "done":
            self.dialog.show_message(f"{snap.name} is converted and verified; choose it in the "
                                     "model picker.")
            self.dialog.refresh_installed()
            self.dialog.installed_changed.emit()

    def shutdown(self) -> None:
        self.jobs.shutdown(timeout=5.0)


def folder_action(parent: QObject, conversions: Conversions) -> QAction:
    """The model manager's "Convert checkpoint folder…" menu entry."""
    action = QAction("Convert checkpoint folder…", parent)
    action.setToolTip("A Hugging Face (config.json + safetensors) or Meta download.sh "
                      "(params.json + consolidated.*.pth) folder")
    action.triggered.connect(conversions.ask_folder)
    return action
