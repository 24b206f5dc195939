"""Small Hub dialogs for the model manager: the masked token dialog and the Hub file chooser."""

from __future__ import annotations

import html
import re
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.ui.plain import plain_label
from app.ui.tasks import run_in_background
from app.ui.theme import colors
from app.units import format_size

if TYPE_CHECKING:
    from app.hub.catalogue import CatalogueFile

URL = re.compile(r"https?://[^\s<>\"')]+[^\s<>\"').,;:]")
TOKENS_PAGE = "https://huggingface.co/settings/tokens"


def linkify(text: str) -> str:
    """Escaped text whose URLs are clickable links (opened in the browser only when clicked)."""
    out, last = [], 0
    for match in URL.finditer(text):
        out.append(html.escape(text[last:match.start()]))
        url = html.escape(match.group(0), quote=True)
        out.append(f'<a href="{url}">{url}</a>')
        last = match.end()
    out.append(html.escape(text[last:]))
    return "".join(out)


def message_label(parent: QWidget | None = None) -> QLabel:
    """A word-wrapped label for actionable messages with clickable links."""
    label = QLabel("", parent)
    label.setWordWrap(True)
    label.setTextFormat(Qt.TextFormat.RichText)
    label.setOpenExternalLinks(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)
    return label


def masked_row(parent: QWidget, placeholder: str, name: str,
               what: str) -> tuple[QLineEdit, QPushButton, QHBoxLayout]:
    """A credential field (masked, like a password) with its Show / Hide toggle, in a row."""
    field = QLineEdit(parent)
    field.setEchoMode(QLineEdit.EchoMode.Password)
    field.setPlaceholderText(placeholder)
    field.setAccessibleName(name)
    toggle = QPushButton("Show", parent)
    toggle.setCheckable(True)
    toggle.setAccessibleName(f"Show {what}")

    def show(on: bool) -> None:
        field.setEchoMode(QLineEdit.EchoMode.Normal if on else QLineEdit.EchoMode.Password)
        toggle.setText("Hide" if on else "Show")

    toggle.toggled.connect(show)
    row = QHBoxLayout()
    row.addWidget(field, 1)
    row.addWidget(toggle)
    return field, toggle, row


class TokenDialog(QDialog):
    """Paste a Hugging Face token (masked); it is checked with whoami, then kept in the keyring."""

    saved = Signal(str)  # the message to show

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Hugging Face token")
        intro = message_label(self)
        intro.setText(
            "Gated models need a Hugging Face <b>read</b> token. Create one at "
            f'<a href="{TOKENS_PAGE}">{TOKENS_PAGE}</a>. It is checked with the Hub, then kept '
            "in your system keyring, never in a file.")
        self.account = plain_label("Checking for a saved token…", self)  # the Hub's account name
        self.field, self.show_button, row = masked_row(self, "hf_…", "Hugging Face token", "token")
        self.status = message_label(self)
        self.save_button = QPushButton("Check and save", self)
        self.remove_button = QPushButton("Remove saved token", self)
        box = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, parent=self)
        box.addButton(self.save_button, QDialogButtonBox.ButtonRole.ActionRole)
        box.addButton(self.remove_button, QDialogButtonBox.ButtonRole.ActionRole)
        box.rejected.connect(self.reject)
        self.save_button.clicked.connect(self.save)
        self.remove_button.clicked.connect(self.remove)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.account)
        layout.addLayout(row)
        layout.addWidget(self.status)
        layout.addWidget(box)
        self.resize(520, 240)
        run_in_background(self._read_account, self._show_account)

    @staticmethod
    def _read_account() -> str:
        from app.hub import token_store

        if token_store.get_token() is None:
            return ""
        return token_store.account_name() or "?"

    def _show_account(self, account: str) -> None:
        self.account.setText(f"Saved token for account “{account}”." if account
                             else "No token saved.")
        self.remove_button.setEnabled(bool(account))

    def save(self) -> None:
        value = self.field.text()
        self.save_button.setEnabled(False)
        self.status.setText("Checking the token with the Hub…")

        def work() -> str:
            from app.hub import token_store

            return token_store.set_token(value).message

        run_in_background(work, self._saved, self._failed)

    def _saved(self, message: str) -> None:
        self.field.clear()
        self.save_button.setEnabled(True)
        self.status.setText(html.escape(message))
        run_in_background(self._read_account, self._show_account)
        self.saved.emit(message)

    def _failed(self, message: str) -> None:
        self.save_button.setEnabled(True)
        self.status.setText(f'<span style="color:{colors().danger};">{linkify(message)}</span>')

    def remove(self) -> None:
        def work() -> bool:
            from app.hub import token_store

            return token_store.clear_token()

        run_in_background(work, self._removed, self._failed)

    def _removed(self, _had: bool) -> None:
        self.status.setText("Token removed.")
        self._show_account("")


class FileChooser(QDialog):
    """Pick one .gguf from a Hub repo's file list."""

    def __init__(self, repo_id: str, files: list[CatalogueFile], verdicts: dict[str, str],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Files in {repo_id}")
        self.list = QListWidget(self)
        self.list.setAccessibleName("GGUF files")
        for f in files:
            verdict = verdicts.get(f.filename, "")
            text = f"{f.filename} — {f.quantization} — {format_size(f.size_bytes)}"
            item = QListWidgetItem(text + (f" — {verdict}" if verdict else ""))
            item.setData(Qt.ItemDataRole.UserRole, f.filename)
            self.list.addItem(item)
        if self.list.count():
            self.list.setCurrentRow(0)
        box = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel, parent=self)
        download = box.addButton("Download", QDialogButtonBox.ButtonRole.AcceptRole)
        download.setEnabled(self.list.count() > 0)
        box.accepted.connect(self.accept)
        box.rejected.connect(self.reject)
        self.list.itemDoubleClicked.connect(lambda _i: self.accept())
        layout = QVBoxLayout(self)
        layout.addWidget(plain_label(f"{len(files)} GGUF file(s) in {repo_id}:", self))
        layout.addWidget(self.list, 1)
        layout.addWidget(box)
        self.resize(620, 380)

    def chosen(self) -> str | None:
        item = self.list.currentItem()
        return None if item is None else str(item.data(Qt.ItemDataRole.UserRole))
