"""The model manager: catalogue with fit verdicts, installed models, Hub repos, imports, downloads."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.ui import icons
from app.ui.hub_dialogs import FileChooser, TokenDialog, linkify, message_label
from app.ui.model_picker import installed_models
from app.ui.plain import plain_tip
from app.ui.tasks import run_in_background
from app.ui.theme import colors
from app.units import format_duration, format_size

if TYPE_CHECKING:
    from PySide6.QtGui import QShowEvent

    from app.hub.catalogue import CatalogueFile
    from app.hub.convert_jobs import ConvertManager
    from app.hub.installed import InstalledModel
    from app.hub.manager import DownloadManager, JobSnapshot
    from app.settings import AppSettings

log = logging.getLogger(__name__)
DATA = Qt.ItemDataRole.UserRole
RECOMMENDED = "★ recommended"
RECOMMENDED_TIP = ("Q4_K_M: the usual best balance of size, speed and quality for chatting "
                   "(what most people should download).")


def fit_columns(header: QHeaderView, count: int) -> None:
    """Columns as wide as their content; the last one takes the rest (no cut-off text)."""
    for column in range(count - 1):
        header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
    header.setSectionResizeMode(count - 1, QHeaderView.ResizeMode.Stretch)


def catalogue_verdicts(files: list[CatalogueFile], n_ctx: int) -> dict[str, str]:
    """Fit verdict per catalogue file on this computer (the hub's, as the CLI shows them)."""
    from app.engine import hardware
    from app.hub import catalogue

    return catalogue.verdicts(files, n_ctx, hardware.detect())


class ModelManager(QDialog):
    """Opened by “Get models…”. Network and disk work run in background threads."""

    DATA_ROLE = DATA

    installed_changed = Signal()
    use_model = Signal(str)  # path
    _snapshot = Signal(object)  # JobSnapshot, from the download thread (queued to this thread)

    def __init__(self, settings: AppSettings, parent: QWidget | None = None,
                 manager: DownloadManager | None = None,
                 converter: ConvertManager | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Models")
        self.settings = settings
        self.n_ctx = int(settings.context_size)
        self.verdicts: dict[str, str] = {}
        self.rows: dict[str, int] = {}  # download job id -> row
        self._snapshot.connect(self._on_snapshot)
        if manager is None:
            from app.hub.manager import DownloadManager

            manager = DownloadManager()
        self.downloads = manager
        self.downloads.subscribe(self._snapshot.emit)  # called in the download thread

        title = QLabel("Models", self)
        title.setStyleSheet("font-size: large; font-weight: 600;")
        intro = QLabel("Llama-2-chat in every size and quantization, with a fit verdict for "
                       "this computer worked out before you download anything.", self)
        intro.setWordWrap(True)
        intro.setProperty("muted", True)
        self.hardware = QLabel("Checking this computer's memory…", self)
        self.hardware.setTextFormat(Qt.TextFormat.PlainText)  # GPU names
        self.hardware.setWordWrap(True)
        self.hardware.setProperty("muted", True)
        self.hardware.setProperty("small", True)
        self.message = message_label(self)
        self.tabs = QTabWidget(self)
        self.tabs.addTab(self._catalogue_tab(), "Catalogue")
        self.tabs.addTab(self._installed_tab(), "Installed")
        self.tabs.addTab(self._downloads_tab(), "Downloads")
        add_repo = QPushButton("Add Hub repo…", self)
        add_repo.clicked.connect(self.ask_repo)
        import_button = QPushButton("Import local .gguf…", self)
        import_button.clicked.connect(self.ask_import)
        token_button = QPushButton("Hugging Face token…", self)
        token_button.clicked.connect(self.open_token_dialog)
        from app.ui.conversions import Conversions, folder_button

        self.conversions = Conversions(self, converter)  # official weights, converted here
        close = QPushButton("Close", self)
        close.clicked.connect(self.hide)
        row = QHBoxLayout()
        from app.ui.meta_download import meta_button  # Meta's route (issue 16)

        for button in (add_repo, import_button, folder_button(self, self.conversions),
                       meta_button(self), token_button):
            row.addWidget(button)
        row.addStretch(1)
        row.addWidget(close)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 14, 16, 12)
        layout.addWidget(title)
        layout.addWidget(intro)
        layout.addWidget(self.hardware)
        layout.addWidget(self.tabs, 1)
        layout.addWidget(self.message)
        layout.addLayout(row)
        self.resize(940, 620)
        self.refresh_catalogue()
        self.refresh_installed()
        run_in_background(self._describe_hardware, self.hardware.setText)

    # -- tabs ----------------------------------------------------------------------------------
    def _catalogue_tab(self) -> QWidget:
        self.tree = QTreeWidget()
        self.tree.setAccessibleName("Model catalogue")
        self.tree.setHeaderLabels(["Model / quantization", "Size", f"Fit at {self.n_ctx:,} tokens",
                                   "Status"])
        self.tree.setUniformRowHeights(True)
        self.tree.setAlternatingRowColors(True)
        fit_columns(self.tree.header(), 4)
        self.download_button = QPushButton("Download selected")
        self.download_button.setProperty("primary", True)
        self.download_button.clicked.connect(self.download_selected)
        self.tree.itemDoubleClicked.connect(lambda _i, _c: self.download_selected())
        return self._page(self.tree, self.download_button)

    def _installed_tab(self) -> QWidget:
        self.installed = QTableWidget(0, 4)
        self.installed.setAccessibleName("Installed models")
        self.installed.setHorizontalHeaderLabels(["Name", "Size", "Quantization", "Source"])
        self.installed.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.installed.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.installed.verticalHeader().hide()
        self.installed.setShowGrid(False)
        self.installed.setAlternatingRowColors(True)
        fit_columns(self.installed.horizontalHeader(), 4)
        use = QPushButton("Use")
        use.setProperty("primary", True)
        use.clicked.connect(self._use_selected)
        remove = QPushButton("Remove")
        remove.setProperty("danger", True)
        remove.clicked.connect(self.remove_selected)
        return self._page(self.installed, use, remove)

    def _downloads_tab(self) -> QWidget:
        self.table = QTableWidget(0, 5)
        self.table.setAccessibleName("Downloads")
        self.table.setHorizontalHeaderLabels(["File", "Progress", "Speed", "ETA", "State"])
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.setShowGrid(False)
        header = self.table.horizontalHeader()
        fit_columns(header, 5)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)  # the progress bar
        header.setSectionResizeMode(4, QHeaderView.ResizeMode.ResizeToContents)
        header.setMinimumSectionSize(80)
        buttons = []
        for label, action in (("Pause", "pause"), ("Resume", "resume"), ("Cancel", "cancel")):
            button = QPushButton(label)
            button.clicked.connect(lambda _c=False, a=action: self._job_action(a))
            buttons.append(button)
        return self._page(self.table, *buttons)

    def clear_message(self) -> None:
        """Forget the last message (its problem is gone, e.g. a model has loaded since)."""
        self.message.setText("")

    @staticmethod
    def _page(main: QWidget, *buttons: QPushButton) -> QWidget:
        page = QWidget()
        layout = QVBoxLayout(page)
        layout.addWidget(main, 1)
        row = QHBoxLayout()
        row.addStretch(1)
        for button in buttons:
            row.addWidget(button)
        layout.addLayout(row)
        return page

    @staticmethod
    def _describe_hardware() -> str:
        from app.engine import hardware

        return "This computer: " + hardware.detect().describe()

    def show_message(self, text: str, error: bool = False) -> None:
        style = ' style="color:#c0392b;"' if error else ""
        self.message.setText(f"<span{style}>{linkify(text)}</span>")

    def showEvent(self, event: QShowEvent) -> None:
        """The dialog is reused: verdicts follow a context size changed in Settings meanwhile."""
        if int(self.settings.context_size) != self.n_ctx:
            self.n_ctx = int(self.settings.context_size)
            self.verdicts.clear()
            self.tree.headerItem().setText(2, f"Fit at {self.n_ctx:,} tokens")
            self.refresh_catalogue()
        super().showEvent(event)

    # -- catalogue -----------------------------------------------------------------------------
    def refresh_catalogue(self) -> None:
        from app.hub import catalogue

        self.tree.clear()
        installed_files = {m.filename or m.path.name for m in installed_models()}
        files = []
        for model in catalogue.catalogue():
            top = QTreeWidgetItem([model.title, "", "", model.repo_id])
            bold = QFont(top.font(0))
            bold.setWeight(QFont.Weight.DemiBold)
            top.setFont(0, bold)
            for f in model.files:
                size = format_size(f.size_bytes) + ("" if f.exact else " (approx.)")
                recommended = f.quantization == catalogue.DEFAULT_QUANT
                status = "installed" if f.filename in installed_files else (
                    RECOMMENDED if recommended else "")
                child = QTreeWidgetItem([f.quantization, size,
                                         self.verdicts.get(f.filename, "…"), status])
                child.setData(0, DATA, (f.repo_id, f.filename))
                if recommended:
                    child.setFont(0, bold)
                    child.setIcon(0, icons.icon("pin", colors().warning, size=14))
                    child.setToolTip(0, RECOMMENDED_TIP)
                    child.setToolTip(3, RECOMMENDED_TIP)
                top.addChild(child)
                files.append(f)
            self.tree.addTopLevelItem(top)
            top.setExpanded(model.size_class == "7B")
        files += self.conversions.populate(self.tree, self.verdicts)
        n_ctx = self.n_ctx
        run_in_background(lambda: catalogue_verdicts(files, n_ctx), self._got_verdicts)

    def _got_verdicts(self, verdicts: dict[str, str]) -> None:
        self.verdicts.update(verdicts)
        for i in range(self.tree.topLevelItemCount()):
            top = self.tree.topLevelItem(i)
            for j in range(top.childCount() if top is not None else 0):
                child = top.child(j) if top is not None else None
                if child is not None:
                    _repo, filename = child.data(0, DATA)
                    child.setText(2, self.verdicts.get(filename, "unknown"))

    def download_selected(self) -> None:
        item = self.tree.currentItem()
        data = item.data(0, DATA) if item is not None else None
        if not data:
            self.show_message("Choose a quantization (for example Q4_K_M under Llama-2 7B chat).")
            return
        if self.conversions.start_selected(data):
            return
        self.start_download(*data)

    def start_download(self, repo_id: str, filename: str) -> str:
        job_id = self.downloads.add(repo_id, filename)
        self.tabs.setCurrentIndex(2)
        self.show_message(f"Downloading {filename}…")
        return str(job_id)

    # -- Hub repos and imports -----------------------------------------------------------------
    def ask_repo(self) -> None:
        repo_id, ok = QInputDialog.getText(self, "Add Hub repo",
                                           "Hugging Face repo id (owner/name):")
        if ok and repo_id.strip():
            self.list_repo(repo_id.strip())

    def list_repo(self, repo_id: str) -> None:
        self.show_message(f"Listing the files of {repo_id}…")

        def work() -> tuple[str, list[CatalogueFile]]:
            from app.hub import catalogue, token_store

            return repo_id, catalogue.refresh(repo_id, token_store.get_token())

        run_in_background(work, self._got_listing, lambda m: self.show_message(m, error=True))

    def _got_listing(self, result: tuple[str, list[CatalogueFile]]) -> None:
        repo_id, files = result
        if not files:
            self.show_message(f"{repo_id} has no .gguf files; llama.cpp needs GGUF.", error=True)
            return
        self.show_message(f"{repo_id}: {len(files)} GGUF file(s).")
        self.refresh_catalogue()
        chooser = FileChooser(repo_id, files, self.verdicts, self)
        self._chooser = chooser
        chooser.accepted.connect(lambda: self._chosen(repo_id, chooser.chosen()))
        chooser.open()

    def _chosen(self, repo_id: str, filename: str | None) -> None:
        if filename:
            self.start_download(repo_id, filename)

    def ask_import(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import a GGUF model", str(Path.home()),
                                              "GGUF models (*.gguf)")
        if path:
            self.import_file(path)

    def import_file(self, path: str) -> None:
        self.show_message(f"Checking {Path(path).name}…")

        def work() -> InstalledModel:
            from app.hub import installed

            return installed.import_model(path)

        run_in_background(work, self._imported, lambda m: self.show_message(m, error=True))

    def _imported(self, model: InstalledModel) -> None:
        self.show_message(f"Imported {model.name} ({format_size(model.size_bytes)}).")
        self.refresh_installed()
        self.installed_changed.emit()

    def open_token_dialog(self) -> TokenDialog:
        dialog = TokenDialog(self)
        dialog.saved.connect(self.show_message)
        dialog.open()
        return dialog

    # -- installed -----------------------------------------------------------------------------
    def refresh_installed(self) -> None:
        from app.ui.model_picker import installed_models

        models = installed_models()
        self.installed.setRowCount(len(models))
        for row, model in enumerate(models):
            cells = (model.name, format_size(model.size_bytes), model.quantization, model.origin)
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setData(DATA, (model.name, str(model.path), model.builtin))
                item.setToolTip(plain_tip(str(model.path)))
                self.installed.setItem(row, col, item)

    def _selected_installed(self) -> tuple[str, str, bool] | None:
        row = self.installed.currentRow()
        item = self.installed.item(row, 0) if row >= 0 else None
        return None if item is None else item.data(DATA)

    def _use_selected(self) -> None:
        chosen = self._selected_installed()
        if chosen:
            self.use_model.emit(chosen[1])

    def remove_selected(self) -> None:
        chosen = self._selected_installed()
        if not chosen:
            return
        name, _path, builtin = chosen
        if builtin:
            self.show_message(f"{name} is built in and cannot be removed.", error=True)
            return

        def work() -> InstalledModel:
            from app.hub import installed

            return installed.remove_model(name)

        def done(model: InstalledModel) -> None:
            self.show_message(f"Removed {model.name}.")
            self.refresh_installed()
            self.installed_changed.emit()

        run_in_background(work, done, lambda m: self.show_message(m, error=True))

    # -- downloads -----------------------------------------------------------------------------
    def _on_snapshot(self, snap: JobSnapshot) -> None:
        row = self.rows.get(snap.job_id)
        if row is None:
            row = self.table.rowCount()
            self.rows[snap.job_id] = row
            self.table.insertRow(row)
            name = QTableWidgetItem(snap.filename)
            name.setData(DATA, snap.job_id)
            name.setToolTip(plain_tip(f"{snap.repo_id}/{snap.filename}"))
            self.table.setItem(row, 0, name)
            bar = QProgressBar()
            bar.setRange(0, 1000)
            bar.setTextVisible(True)
            bar.setAccessibleName(f"Download progress of {snap.filename}")
            self.table.setCellWidget(row, 1, bar)
            self.table.setRowHeight(row, max(self.table.rowHeight(row), 30))
            self.tabs.setTabText(2, f"Downloads ({len(self.rows)})")
            for col in (2, 3, 4):
                self.table.setItem(row, col, QTableWidgetItem(""))
        widget = self.table.cellWidget(row, 1)
        if isinstance(widget, QProgressBar):
            widget.setValue(int(snap.fraction * 1000))
            total = format_size(snap.total or None)  # 0: not known yet
            widget.setFormat(f"{format_size(snap.done)} of {total}")
        downloading = snap.state.value == "downloading"
        self._cell(row, 2).setText(f"{format_size(snap.speed)}/s" if downloading else "")
        self._cell(row, 3).setText(format_duration(snap.eta, unknown="") if downloading else "")
        state = snap.state.value
        if snap.message and not snap.state.finished:
            state += f" — {snap.message}"
        self._cell(row, 4).setText(state)
        if snap.state.value == "failed" and snap.error:
            self._cell(row, 4).setToolTip(plain_tip(snap.error))
            self.show_message(snap.error, error=True)
        elif snap.state.value == "done":
            self.show_message(f"{snap.filename} is downloaded and verified; choose it in the "
                              "model picker.")
            self.refresh_installed()
            self.installed_changed.emit()

    def cell(self, row: int, col: int) -> QTableWidgetItem:
        return self._cell(row, col)

    def _cell(self, row: int, col: int) -> QTableWidgetItem:
        item = self.table.item(row, col)
        if item is None:
            item = QTableWidgetItem("")
            self.table.setItem(row, col, item)
        return item

    def job_state(self, job_id: str) -> str:
        row = self.rows.get(job_id, self.conversions.rows.get(job_id))
        return "" if row is None else self._cell(row, 4).text()

    def _job_action(self, action: str) -> None:
        row = self.table.currentRow()
        item = self.table.item(row, 0) if row >= 0 else None
        if item is not None and self.conversions.owns(item.data(DATA)):
            self.conversions.action(item.data(DATA), action)
        elif item is not None:
            getattr(self.downloads, action)(item.data(DATA))

    def shutdown(self) -> None:
        """Pause running downloads (partials are kept for resuming) and stop their thread."""
        self.downloads.shutdown(timeout=5.0)
        self.conversions.shutdown()
