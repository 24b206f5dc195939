"""The model picker's remote part: each configured engine's models beside the local ones."""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.ui.tasks import run_in_background

if TYPE_CHECKING:
    from PySide6.QtWidgets import QComboBox

    from app.engine.remote.listing import RemoteModel

REMOTE_TOOLTIP = ("Served by a remote engine (`llama-desk engines`): the conversation goes to "
                  "that server")


def fetch_remote_models(done: object) -> None:
    """List the engines' models in the background, then call ``done(list[RemoteModel])``."""
    from app.engine.remote.listing import remote_models

    run_in_background(remote_models, done)  # type: ignore[arg-type]


def add_remote_items(picker: QComboBox, entries: list[RemoteModel]) -> None:
    """Append ``entries`` (after a separator); an engine that did not answer is shown greyed."""
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QStandardItemModel

    if not entries:
        return
    picker.insertSeparator(picker.count())
    for entry in entries:
        picker.addItem(entry.label, entry.ref or None)
        index = picker.count() - 1
        picker.setItemData(index, entry.problem or REMOTE_TOOLTIP, Qt.ItemDataRole.ToolTipRole)
        model = picker.model()
        if not entry.ref and isinstance(model, QStandardItemModel):
            item = model.item(index)
            if item is not None:
                item.setEnabled(False)


def remote_name(entries: list[RemoteModel], path: str) -> str | None:
    """The picker's name for a remote reference, or None when ``path`` is not one."""
    for entry in entries:
        if entry.ref == path:
            return entry.label.removesuffix(" — remote")
    if path.startswith("engine:"):
        from app.engine.remote.registry import parse_ref

        try:
            return parse_ref(path).label
        except Exception:
            return path
    return None
