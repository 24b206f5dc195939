"""The toolbar model picker: installed models and the starter (size, fit verdict), remote engines' models."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QWidget

from app.ui import remote_models
from app.ui.tasks import run_in_background
from app.units import format_size

if TYPE_CHECKING:
    from app.engine.remote.listing import RemoteModel
    from app.hub.installed import InstalledModel

log = logging.getLogger(__name__)
GET_MODELS = "__get_models__"


def installed_models() -> list[InstalledModel]:
    """Installed models (the hub's registry: starter first); never raises."""
    try:
        from app.hub import installed

        return [m for m in installed.list_installed() if m.exists]
    except Exception:
        log.exception("cannot list installed models")
        return []


class ModelPicker(QComboBox):
    """Lists models by path; "Get models…" at the end opens the model manager."""

    model_chosen = Signal(str)  # path
    manager_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("modelPicker")
        self.setAccessibleName("Model")
        self.setToolTip("Model used for the next reply")
        self.setMinimumContentsLength(44)
        self.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.verdicts: dict[tuple[str, int], str] = {}  # by (path, context size)
        self.models: list[InstalledModel] = []
        self.remote: list[RemoteModel] = []  # configured engines' models (app/ui/remote_models)
        self._current = ""
        self._filling = False
        self.n_ctx = 4096
        self.activated.connect(self._activated)

    def refresh(self, n_ctx: int | None = None) -> None:
        """Re-read the installed models; fit verdicts are worked out in the background."""
        if n_ctx:
            self.n_ctx = n_ctx
        self.models = installed_models()
        self._fill()
        remote_models.fetch_remote_models(self._got_remote)
        ctx = self.n_ctx
        paths = [str(m.path) for m in self.models if (str(m.path), ctx) not in self.verdicts]
        if paths:
            run_in_background(lambda: self._verdicts(paths, ctx),
                              lambda found: self._got_verdicts(found, ctx))

    def _fill(self) -> None:
        self._filling = True
        self.clear()
        for model in self.models:
            self.addItem(self._label(model), str(model.path))
        remote_models.add_remote_items(self, self.remote)
        self.insertSeparator(self.count())
        self.addItem("Get models…", GET_MODELS)
        self._filling = False
        self.select_path(self._current)

    def _got_remote(self, entries: list[RemoteModel]) -> None:
        if entries != self.remote:
            self.remote = entries
            self._fill()

    def _label(self, model: InstalledModel) -> str:
        verdict = self.verdicts.get((str(model.path), self.n_ctx))
        size = format_size(model.size_bytes)
        return f"{model.name} — {size}" + (f" — {verdict}" if verdict else "")

    @staticmethod
    def _verdicts(paths: list[str], n_ctx: int) -> dict[str, str]:
        from app.engine import planner

        out: dict[str, str] = {}
        for path in paths:
            try:
                out[path] = planner.plan_for_file(path, n_ctx).short
            except Exception as err:
                log.info("no verdict for %s: %s", path, err)
                out[path] = "unreadable file"
        return out

    def _got_verdicts(self, verdicts: dict[str, str], n_ctx: int) -> None:
        self.verdicts.update({(path, n_ctx): verdict for path, verdict in verdicts.items()})
        for index, model in enumerate(self.models):
            if index < self.count():
                self.setItemText(index, self._label(model))

    def select_path(self, path: str | None) -> None:
        self._current = path or ""
        index = self.findData(self._current) if path else -1
        self._filling = True
        if index >= 0:
            self.setCurrentIndex(index)
        self._filling = False

    def current_path(self) -> str:
        return self._current

    def name_for(self, path: str) -> str:
        remote = remote_models.remote_name(self.remote, path)
        if remote is not None:
            return remote
        for model in self.models:
            if str(model.path) == path:
                return str(model.name)
        return Path(path).name

    def _activated(self, index: int) -> None:
        if self._filling:
            return
        data = self.itemData(index)
        if data == GET_MODELS:
            self.select_path(self._current)
            self.manager_requested.emit()
        elif data and data != self._current:
            self._current = str(data)
            self.model_chosen.emit(self._current)
