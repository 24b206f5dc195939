"""The model manager: catalogue with fit verdicts, installed models, Hub repos, imports, downloads."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QMenu,
    QProgressBar,
    QPushButton,
    QTableWidgetItem,
    QTabWidget,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.ui import icons
from app.ui.downloads_tab import DownloadsTab, fit_columns
from app.ui.hub_dialogs import FileChooser, TokenDialog, linkify, message_label
from app.ui.model_picker import installed_models
from app.ui.plain import plain_tip
from app.ui.sizing import resize_within_screen
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
        from app.ui.conversions import Conversions, folder_action
        from app.ui.meta_download import meta_action  # Meta's route (issue 16)

        self.conversions = Conversions(self, converter)  # official weights, converted here
        # The less-used ways in share one menu button, so the row never sets the dialog's width.
        self.add_menu = QMenu(self)
        self.add_menu.addAction("Add Hub repo…", self.ask_repo)
        self.add_menu.addAction("Import local .gguf…", self.ask_import)
        self.add_menu.addAction(folder_action(self.add_menu, self.conversions))
        self.add_menu.addAction(meta_action(self, self.add_menu))
        self.add_menu.setToolTipsVisible(True)
        add_button = QPushButton("Add a model", self)
        add_button.setAccessibleName("Add a model")
        add_button.setMenu(self.add_menu)
        token_button = QPushButton("Hugging Face token…", self)
        token_button.clicked.connect(self.open_token_dialog)
        close = QPushButton("Close", self)
        close.clicked.connect(self.hide)
        row = QHBoxLayout()
        row.addWidget(add_button)
        row.addWidget(token_button)
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
        resize_within_screen(self, 940, 620)
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
        from app.ui.installed_tab import InstalledTab

        self.installed_tab = InstalledTab(self, DATA)
        self.installed = self.installed_tab.table
        return self.installed_tab

    def _downloads_tab(self) -> QWidget:
        self.downloads_tab = DownloadsTab(self._run_job_action, DATA)
        self.table = self.downloads_tab.table
        return self.downloads_tab

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
        style = f' style="color:{colors().danger};"' if error else ""
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
        self.installed_tab.refresh()

    def set_in_use(self, path: str | None) -> None:
        """The window's loaded model (None: none) is marked "● in use" on the Installed tab."""
        self.installed_tab.set_in_use(path)

    def remove_selected(self) -> None:
        self.installed_tab.remove_selected()

    # -- downloads -----------------------------------------------------------------------------
    def _on_snapshot(self, snap: JobSnapshot) -> None:
        tab = self.downloads_tab
        row = self.rows.get(snap.job_id)
        if row is None:
            row = self.rows[snap.job_id] = tab.add_row(snap.job_id, snap.filename,
                                                       f"{snap.repo_id}/{snap.filename}")
            self.tabs.setTabText(2, f"Downloads ({len(self.rows)})")
        widget = self.table.cellWidget(row, 1)
        if isinstance(widget, QProgressBar):
            widget.setValue(int(snap.fraction * 1000))
            total = format_size(snap.total or None)  # 0: not known yet
            widget.setFormat(f"{format_size(snap.done)} of {total}")
        downloading = snap.state.value == "downloading"
        tab.cell(row, 2).setText(f"{format_size(snap.speed)}/s" if downloading else "")
        tab.cell(row, 3).setText(format_duration(snap.eta, unknown="") if downloading else "")
        state = snap.state.value
        shown = state + (f" — {snap.message}" if snap.message and not snap.state.finished else "")
        tab.set_state(row, state, shown)
        if snap.state.value == "failed" and snap.error:
            tab.cell(row, 4).setToolTip(plain_tip(snap.error))
            self.show_message(snap.error, error=True)
        elif snap.state.value == "done":
            self.show_message(f"{snap.filename} is downloaded and verified; choose it in the "
                              "model picker.")
            self.refresh_installed()
            self.installed_changed.emit()

    def cell(self, row: int, col: int) -> QTableWidgetItem:
        return self.downloads_tab.cell(row, col)

    def job_state(self, job_id: str) -> str:
        row = self.rows.get(job_id, self.conversions.rows.get(job_id))
        return "" if row is None else self.cell(row, 4).text()

    def _job_action(self, action: str) -> None:
        """Pause, Resume or Cancel on the selected row of the Downloads tab."""
        self.downloads_tab.act(action)

    def _run_job_action(self, action: str, job_id: str) -> None:
        if self.conversions.owns(job_id):
            self.conversions.action(job_id, action)
        else:
            getattr(self.downloads, action)(job_id)

    def shutdown(self) -> None:
        """Pause running downloads (partials are kept for resuming) and stop their thread."""
        self.downloads.shutdown(timeout=5.0)
        self.conversions.shutdown()

