"""The window's conversation housekeeping: rename, pin, Trash with Undo, delete forever, settings."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from PySide6.QtWidgets import QMessageBox, QWidget

from app.chat.sampling import resolve_sampling
from app.engine.types import Sampling
from app.errors import SettingsError, UserError
from app.store.repair import repair

if TYPE_CHECKING:
    from app.settings import AppSettings
    from app.store import Conversation, Store
    from app.store.repair import RepairReport
    from app.ui.api_server import ApiServerController
    from app.ui.banners import BannerArea
    from app.ui.composer import Composer
    from app.ui.model_picker import ModelPicker
    from app.ui.sidebar import Sidebar
    from app.ui.worker import EngineHost

log = logging.getLogger(__name__)


class ConversationActions:
    """Mixed into MainWindow; the attributes below are built there."""

    store: Store
    settings: AppSettings
    sidebar: Sidebar
    banners: BannerArea
    picker: ModelPicker
    conv_id: int | None
    pending_system: str | None
    pending_sampling: dict[str, Any] | None
    api: ApiServerController
    host: EngineHost
    composer: Composer

    if TYPE_CHECKING:  # defined by MainWindow, ChatActions and ModelActions
        def show_conversation(self, conv_id: int | None, message_id: int = 0) -> None: ...

        def open_conversation(self, conv_id: int, message_id: int = 0) -> None: ...

        def stop_reply_in(self, conv_id: int) -> None: ...

        def load_model(self, path: str | None) -> None: ...

        def request_count(self) -> None: ...

        def apply_font(self) -> None: ...

        def on_theme_changed(self, *_args: Any) -> None: ...

        def load_conversation(self) -> Conversation | None: ...

    def show_error(self, message: str, key: str = "error") -> Any:
        return self.banners.show_banner(message, "error", key)

    def rename_conversation(self, conv_id: int, title: str) -> None:
        try:
            self.store.rename(conv_id, title)
        except UserError as err:
            self.show_error(str(err))
        self.sidebar.refresh()

    def pin_conversation(self, conv_id: int, pinned: bool) -> None:
        self.store.set_pinned(conv_id, pinned)
        self.sidebar.refresh()

    def delete_conversation(self, conv_id: int) -> None:
        """To the Trash, with an Undo bar that lasts while the conversation is there (until
        it is restored, deleted for good, or the bar is dismissed: no time limit). Only the
        latest deletion has one: the earlier ones are in the Trash, bars do not pile up."""
        conv = self.store.trash(conv_id)
        for older in [b.key for b in self.banners.banners if b.key.startswith("undo-")]:
            self.banners.clear(older)
        was_open = conv_id == self.conv_id
        if was_open:
            self.show_conversation(None)
        self.sidebar.refresh()
        banner = self.banners.show_banner(
            f"“{conv.display_title}” moved to Trash.", "info", key=f"undo-{conv_id}")
        banner.add_action("Undo", lambda: self.undo_delete(conv_id, reopen=was_open))

    def _restore(self, conv_id: int) -> bool:
        self.banners.clear(f"undo-{conv_id}")  # restored: there is nothing left to undo
        try:
            self.store.restore(conv_id)
        except UserError as err:
            self.show_error(str(err))
            self.sidebar.refresh()
            return False
        return True

    def undo_delete(self, conv_id: int, *, reopen: bool) -> None:
        """The Undo bar: the conversation goes back into the list in its place. The open chat
        stays open, unless the undone one was open then and nothing else was opened since."""
        if not self._restore(conv_id):
            return
        if reopen and self.conv_id is None:
            self.open_conversation(conv_id, 0)
        self.sidebar.refresh()
        self.composer.focus()  # the Undo button is gone with its bar

    def restore_conversation(self, conv_id: int) -> None:
        """Restore from the Trash: back to the list, the conversation selected and open."""
        if not self._restore(conv_id):
            return
        self.sidebar.show_list()
        self.open_conversation(conv_id, 0)

    def confirm_purge(self, title: str) -> bool:
        """Ask before deleting for good (it cannot be undone)."""
        parent = self if isinstance(self, QWidget) else None
        box = QMessageBox(QMessageBox.Icon.Warning, "Delete forever",
                          f"Delete “{title}” and all its messages for good? This cannot be undone.",
                          QMessageBox.StandardButton.Cancel, parent)
        delete = box.addButton("Delete forever", QMessageBox.ButtonRole.DestructiveRole)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.exec()
        return box.clickedButton() is delete

    def purge_conversation(self, conv_id: int) -> None:
        try:
            title = self.store.get_conversation(conv_id).display_title
        except UserError:
            self.banners.clear(f"undo-{conv_id}")
            self.sidebar.refresh()
            return
        if not self.confirm_purge(title):
            return
        self.banners.clear(f"undo-{conv_id}")  # gone for good: Undo would only fail
        self.stop_reply_in(conv_id)  # its reply has nowhere left to go
        self.store.delete_forever(conv_id)
        if conv_id == self.conv_id:
            self.show_conversation(None)
        self.sidebar.refresh()

    # -- repair --------------------------------------------------------------------------------
    def repair_database(self) -> None:
        """`llama-desk history repair` from the window: both threads' Stores are closed first,
        the salvage runs in the background, then the window reopens the fresh database."""
        from app.ui.tasks import run_in_background

        if getattr(self, "generating", False):
            self.banners.show_banner("Stop the reply first, then repair.", "info", "repair")
            return
        answer = QMessageBox.question(
            self, "Repair the conversations database",  # type: ignore[arg-type]
            "Llama Desk will copy every readable conversation into a fresh database and keep the "
            "damaged file beside it. Go ahead?")
        if answer != QMessageBox.StandardButton.Yes:
            return
        owner = self.host.owner
        owner.submit(owner.resource.close_store).result(timeout=30)  # the model thread's Store
        self.store.close()
        path = self.store.path

        def repaired(report: RepairReport) -> None:
            self._reopen_store()
            self.banners.show_banner(" ".join(report.summary()), "info", "store")

        def failed(message: str) -> None:
            self._reopen_store()
            self.banners.show_banner(f"The repair did not run: {message}", "error", "store")

        self.banners.show_banner("Repairing the conversations database…", "info", "store")
        run_in_background(lambda: repair(path), repaired, failed)

    def _reopen_store(self) -> None:
        from app.store import Store

        self.store = self.sidebar.store = Store.open(self.store.path)
        self.show_conversation(None)
        self.sidebar.refresh()

    # -- settings ------------------------------------------------------------------------------
    def open_settings(self) -> None:
        """The settings dialog; its Chat page edits the open conversation (or the next new
        chat), and becomes the default for new chats only when the user says so."""
        from app import settings as app_settings
        from app.ui.settings_dialog import SettingsDialog

        conv = self.load_conversation()
        if conv is not None:
            system = conv.system_prompt
            stored: dict[str, Any] | None = conv.sampling
        else:
            system = (self.pending_system if self.pending_system is not None
                      else self.settings.default_system_prompt)
            stored = self.pending_sampling
        try:
            shown = resolve_sampling(self.settings.sampling, stored)
        except SettingsError as err:
            self.banners.show_banner(f"{err} Showing the defaults instead.", "warning", "sampling")
            shown = Sampling()
        dialog = SettingsDialog(system, shown, self.settings, self,  # type: ignore[arg-type]
                                model_path=self.picker.current_path() or None,
                                conversation=conv.display_title if conv else None)
        accepted = dialog.exec() == SettingsDialog.DialogCode.Accepted
        dialog.deleteLater()  # read below, then gone (a dialog per opening, not kept hidden)
        if not accepted:
            return
        sampling = dialog.sampling().to_dict()
        if conv is not None:
            self.store.update_settings(conv.id, system_prompt=dialog.system_prompt(),
                                       sampling=sampling)
        else:
            self.pending_system, self.pending_sampling = dialog.system_prompt(), sampling
        if dialog.make_default():
            self.settings.default_system_prompt = dialog.system_prompt()
            self.settings.sampling = sampling
        theme_before = self.settings.theme
        reload = dialog.apply_app_settings()
        try:
            app_settings.save(self.settings)
        except UserError as err:
            self.show_error(str(err))
        self.apply_font()
        self.api.apply()  # the Local API server follows its settings
        if self.settings.theme != theme_before:
            self.on_theme_changed()
        self.picker.refresh(self.settings.context_size)  # fit verdicts depend on the context
        if reload and self.picker.current_path():
            self.load_model(self.picker.current_path())
        else:
            self.request_count()
