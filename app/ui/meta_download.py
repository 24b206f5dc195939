"""The model manager's "Download from Meta (link from e-mail)": a masked link field, the models
download.sh offers with sizes and fit verdicts, and the licence shown once after a download."""

from __future__ import annotations

import html
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.hub.meta_catalogue import MetaModel, meta_models
from app.hub.meta_link import EXAMPLE, REQUEST_PAGE, MetaLink, MetaLinkError
from app.ui.hub_dialogs import linkify, masked_row, message_label
from app.ui.tasks import run_in_background
from app.ui.theme import colors
from app.units import format_estimate, format_size


def error_html(text: str) -> str:
    """``text`` (already escaped) in the theme's danger colour."""
    return f'<span style="color:{colors().danger};">{text}</span>'


def _verdicts(quant: str, n_ctx: int) -> tuple[str, dict[str, str]]:
    from app.engine import hardware
    from app.hub.meta_catalogue import meta_verdicts

    return quant, meta_verdicts(quant, n_ctx, hardware.detect())


class MetaDownloadDialog(QDialog):
    """Paste the link (masked: it is a credential until it expires), pick a model, start.

    The link lives in the field until the job starts, then only in that job's memory: it is
    never saved, logged or shown (only its host and expiry are).
    """

    started = Signal(str)  # the conversion job id

    def __init__(self, jobs: Any, n_ctx: int = 4096, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        from app.convert.quantize import DEFAULT_QUANT, QUANTS

        self.setWindowTitle("Download from Meta")
        self.jobs, self.n_ctx = jobs, n_ctx
        self.verdicts: dict[str, str] = {}
        intro = message_label(self)
        intro.setText(
            f'Request the Llama 2 weights on <a href="{REQUEST_PAGE}">{REQUEST_PAGE}</a>; Meta '
            "e-mails a download link that works for 24 hours. Paste it here: it is used for this "
            "download only and never saved. The files are checked against Meta's md5 sums, then "
            "converted to GGUF on this computer.")
        self.field, self.show_button, row = masked_row(
            self, EXAMPLE, "Download link from Meta's e-mail", "link")
        self.field.textChanged.connect(self._check_link)
        self.link_status = message_label(self)
        self.quant = QComboBox(self)
        self.quant.setAccessibleName("Quantization")
        self.quant.addItems(list(QUANTS))
        self.quant.setCurrentText(DEFAULT_QUANT)
        self.quant.currentTextChanged.connect(lambda _q: self._fill())
        self.models = QTreeWidget(self)
        self.models.setAccessibleName("Meta models")
        self.models.setRootIsDecorated(False)
        self.models.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.models.setHeaderLabels(["Model", "Download", "Result", f"Fit at {n_ctx:,} tokens",
                                     "Disk at the peak", "Convert"])
        self.models.setColumnWidth(0, 170)
        self.models.currentItemChanged.connect(lambda _c, _p: self._update_button())
        self.keep = QCheckBox("Keep the downloaded files and the F16 GGUF", self)
        self.status = message_label(self)
        box = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel, parent=self)
        self.download_button = box.addButton("Download and convert",
                                             QDialogButtonBox.ButtonRole.AcceptRole)
        box.accepted.connect(self.start)
        box.rejected.connect(self.reject)
        quant_row = QHBoxLayout()
        quant_row.addWidget(QLabel("Convert to:", self))
        quant_row.addWidget(self.quant)
        quant_row.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(QLabel("Link from Meta's e-mail:", self))
        layout.addLayout(row)
        layout.addWidget(self.link_status)
        layout.addLayout(quant_row)
        layout.addWidget(self.models, 1)
        layout.addWidget(self.keep)
        layout.addWidget(self.status)
        layout.addWidget(box)
        self.resize(760, 460)
        self._fill()
        self._check_link("")

    # ---- the link -----------------------------------------------------------------------------
    def link(self) -> MetaLink | None:
        try:
            return MetaLink.parse(self.field.text())
        except MetaLinkError:
            return None

    def _check_link(self, text: str) -> None:
        if not text.strip():
            self.link_status.setText("")
        else:
            try:
                link = MetaLink.parse(text)
            except MetaLinkError as err:
                self.link_status.setText(error_html(html.escape(str(err))))
            else:
                shown = html.escape(f"Link to {link.shown}.")
                self.link_status.setText(error_html(shown) if link.expired() else shown)
        self._update_button()

    # ---- the models ---------------------------------------------------------------------------
    def _fill(self) -> None:
        quant = self.quant.currentText()
        chosen = self.chosen()
        self.models.clear()
        for model in meta_models():
            item = QTreeWidgetItem([
                model.title, f"~{format_size(model.source_bytes)}",
                f"~{format_size(model.result_bytes(quant))}", self.verdicts.get(model.model_id, "…"),
                f"~{format_size(model.disk_bytes(quant))}",
                format_estimate(model.convert_seconds(quant))])
            item.setData(0, Qt.ItemDataRole.UserRole, model.model_id)
            item.setToolTip(0, f"{model.model_id} (download.sh: {model.script_name}), "
                               f"{model.shards} file{'s' if model.shards > 1 else ''}")
            self.models.addTopLevelItem(item)
            if chosen is not None and chosen.model_id == model.model_id:
                self.models.setCurrentItem(item)
        self.verdicts.clear()
        run_in_background(lambda: _verdicts(quant, self.n_ctx), self._got_verdicts)
        self._update_button()

    def _got_verdicts(self, result: tuple[str, dict[str, str]]) -> None:
        quant, verdicts = result
        if quant != self.quant.currentText():
            return
        self.verdicts = verdicts
        for i in range(self.models.topLevelItemCount()):
            item = self.models.topLevelItem(i)
            if item is not None:
                item.setText(3, verdicts.get(item.data(0, Qt.ItemDataRole.UserRole), "unknown"))

    def chosen(self) -> MetaModel | None:
        item = self.models.currentItem()
        if item is None:
            return None
        return next(m for m in meta_models() if m.model_id == item.data(0, Qt.ItemDataRole.UserRole))

    def preset(self, model_id: str, quant: str, note: str = "") -> None:
        """Choose ``model_id`` and ``quant`` (e.g. to continue a download with a new link)."""
        self.quant.setCurrentText(quant)
        for i in range(self.models.topLevelItemCount()):
            item = self.models.topLevelItem(i)
            if item is not None and item.data(0, Qt.ItemDataRole.UserRole) == model_id:
                self.models.setCurrentItem(item)
        self.status.setText(linkify(note))

    def _update_button(self) -> None:
        link = self.link()
        self.download_button.setEnabled(link is not None and not link.expired()
                                        and self.chosen() is not None)

    # ---- start --------------------------------------------------------------------------------
    def start(self) -> None:
        link, model = self.link(), self.chosen()
        if link is None or model is None:
            self.status.setText(error_html(
                "Paste the whole link from Meta's e-mail and choose a model."))
            return
        job_id = str(self.jobs.add_meta(link, model, self.quant.currentText(),
                                        keep_source=self.keep.isChecked()))
        self.field.clear()  # the job holds the link now; the field no longer does
        self.accept()
        self.started.emit(job_id)


class LicenceDialog(QDialog):
    """Llama 2's licence and use policy, shown once when the first Meta model is installed."""

    def __init__(self, text: str, kept: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Llama 2 licence")
        label = QLabel(f"Llama 2 comes with this licence and acceptable use policy; both are "
                       f"kept beside the model ({kept}).", self)
        label.setWordWrap(True)
        self.text = QPlainTextEdit(text, self)
        self.text.setReadOnly(True)
        self.text.setAccessibleName("Licence text")
        box = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok, parent=self)
        box.accepted.connect(self.accept)
        layout = QVBoxLayout(self)
        layout.addWidget(label)
        layout.addWidget(self.text, 1)
        layout.addWidget(box)
        self.resize(640, 480)


class MetaRoute(QObject):
    """Glue owned by the model manager: the button's dialog, and the licence / new-link prompts
    that follow the Meta jobs of its conversion manager."""

    _snapshot = Signal(object)  # ConvertSnapshot, from the conversion thread (queued here)

    def __init__(self, manager: Any) -> None:
        super().__init__(manager)
        self.manager = manager
        self.jobs = manager.conversions.jobs
        self.dialog: MetaDownloadDialog | None = None
        self.licence: LicenceDialog | None = None
        self._asked: set[str] = set()
        self._snapshot.connect(self._on_snapshot)
        self.jobs.subscribe(self._snapshot.emit)

    def open(self, model_id: str | None = None, quant: str | None = None,
             note: str = "") -> MetaDownloadDialog:
        if self.dialog is None:
            self.dialog = MetaDownloadDialog(self.jobs, int(self.manager.n_ctx), self.manager)
            self.dialog.started.connect(self._started)
        if model_id and quant:
            self.dialog.preset(model_id, quant, note)
        self.dialog.open()
        return self.dialog

    def _started(self, job_id: str) -> None:
        self.manager.tabs.setCurrentIndex(2)
        self.manager.show_message(f"Downloading from Meta ({self.jobs.snapshot(job_id).title})…")

    def _on_snapshot(self, snap: Any) -> None:
        if snap.kind != "meta":
            return
        if snap.state.value == "done" and snap.licence_text and self.licence is None:
            kept = ", ".join(p.name for p in snap.licence)
            self.licence = LicenceDialog(snap.licence_text, kept, self.manager)
            self.licence.open()
        elif snap.state.value == "failed" and snap.needs_link and snap.job_id not in self._asked:
            self._asked.add(snap.job_id)  # ask once per failure; a new link clears it
            self.open(snap.source, snap.quant, snap.error or "")
        elif snap.state.value != "failed":
            self._asked.discard(snap.job_id)


def meta_action(manager: Any, parent: QObject) -> QAction:
    """The model manager's "Download from Meta (link from e-mail)…" menu entry."""
    route = MetaRoute(manager)
    manager.meta_route = route
    action = QAction("Download from Meta (link from e-mail)…", parent)
    action.setToolTip("Meta's own route: the signed link Meta e-mails you, as download.sh "
                      "uses it; then converted here")
    action.triggered.connect(lambda: route.open())
    return action
