"""The window's chat logic: open, send, stream, stop, regenerate, edit, alternates and the meter."""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING, Any

from app.chat.service import branch_cut
from app.errors import UserError
from app.ui.theme import set_tone
from app.ui.worker import ContextCount, ReplyDone

if TYPE_CHECKING:
    from PySide6.QtCore import SignalInstance
    from PySide6.QtWidgets import QLabel

    from app.engine.types import ModelInfo
    from app.settings import AppSettings
    from app.store import Conversation, Store, StoredMessage
    from app.ui.banners import BannerArea
    from app.ui.chat_view import ChatView
    from app.ui.composer import Composer
    from app.ui.model_picker import ModelPicker
    from app.ui.sidebar import Sidebar
    from app.ui.worker import EngineHost

log = logging.getLogger(__name__)


class ChatActions:
    """Mixed into MainWindow; the attributes below are built there.

    Every turn goes through the chat service on the model thread (``host``): the window only
    says what to do (send, regenerate, edit) and shows what comes back.
    """

    store: Store
    settings: AppSettings
    host: EngineHost
    chat: ChatView
    composer: Composer
    sidebar: Sidebar
    picker: ModelPicker
    banners: BannerArea
    meter: QLabel
    state_label: QLabel
    reply_done: SignalInstance
    model_ready: SignalInstance
    model_failed: SignalInstance
    request_done: SignalInstance
    model_info: ModelInfo | None
    model_state: str

    if TYPE_CHECKING:  # defined by ModelActions
        def show_model_state(self) -> None: ...

    def _init_chat_state(self) -> None:
        self.conv_id: int | None = None
        self.branch: list[StoredMessage] = []
        self.generating = False
        self.model_info = None
        self.model_state = "none"
        self.prompts: dict[int, tuple[str, int]] = {}
        self._inspect_pending: int | None = None
        self.reply_conv: int | None = None  # the conversation the current reply goes to
        self._new_chat_pending = False  # the reply's conversation is being created
        self._live: StoredMessage | None = None  # the reply being streamed, wherever it goes
        self._live_text: list[str] = []  # its text so far, to show it again on coming back
        self._progress: tuple[int, int] = (0, 0)  # the live reply's prompt reading
        self.pending_system: str | None = None  # the next new chat's own settings (Settings)
        self.pending_sampling: dict[str, Any] | None = None

    # -- conversations -------------------------------------------------------------------------
    def new_chat(self) -> None:
        self.show_conversation(None)

    def show_conversation(self, conv_id: int | None, message_id: int = 0) -> None:
        if conv_id != self.conv_id:
            self.pending_system = self.pending_sampling = None
        try:
            branch = self.store.current_branch(conv_id) if conv_id else []
        except UserError as err:  # e.g. a damaged page of the database: say so, show nothing
            self.banners.show_banner(str(err), "error", "store")
            conv_id, branch = None, []
        self.conv_id = conv_id
        self.branch = branch
        self.render_branch(around=message_id)
        self.sidebar.set_current(conv_id)
        if message_id:
            self.chat.scroll_to_message(message_id)
        self.request_count()
        self.set_generating(self.generating)  # Stop names the chat a reply goes to, if another
        self.composer.focus()  # typing goes on where the user is

    def open_conversation(self, conv_id: int, message_id: int = 0) -> None:
        try:
            conv = self.store.get_conversation(conv_id)
        except UserError:
            return
        if conv.trashed_at is not None:
            return
        if message_id:
            with contextlib.suppress(UserError):
                self.store.select_alternate(message_id)
        self.show_conversation(conv_id, message_id)

    def render_branch(self, around: int = 0) -> None:
        """Show ``branch``; a reply still streaming at its end goes on streaming."""
        live = self._live
        streaming = live is not None and bool(self.branch) and self.branch[-1].id == live.id
        shown = self.branch[:-1] if streaming else self.branch
        cut, _dropped = branch_cut(shown)
        self.chat.show_messages(shown, cut, around=around)
        if streaming and live is not None:
            self.chat.begin_stream(live)
            if self._progress[1]:
                self.chat.show_progress(live.id, *self._progress)
            self.chat.append_chunk(live.id, "".join(self._live_text))

    def load_conversation(self) -> Conversation | None:
        """The shown conversation's stored record (None for a new chat)."""
        return self.store.get_conversation(self.conv_id) if self.conv_id else None

    def use_example(self, prompt: str) -> None:
        """An example prompt of the welcome: sent at once when a model is ready."""
        if self.model_state == "ready" and not self.generating:
            self.send(prompt)
            self.composer.focus()  # the clicked card is gone: typing goes on in the composer
        else:
            self.composer.set_text(prompt)
            self.composer.focus()

    # -- sending -------------------------------------------------------------------------------
    def send(self, text: str) -> None:
        """Send ``text`` through the chat service; it comes back stored (``on_user_stored``),
        or refused with the text still in the composer."""
        if self.generating or self.model_state != "ready":
            self.composer.unsent()
            return
        self.banners.clear("reply")
        new = self.conv_id is None
        self._new_chat_pending = new
        self.reply_conv = self.conv_id
        self.set_generating(True)
        self.state_label.setText("Preparing the prompt…")
        self.host.send(self.conv_id, text, overrides=self.pending_sampling if new else None,
                       system=self.pending_system if new else None)

    def set_generating(self, on: bool) -> None:
        self.generating = on
        elsewhere = self.reply_conv if on and self.reply_conv != self.conv_id else None
        title = ""
        if elsewhere:
            with contextlib.suppress(UserError):
                title = self.store.get_conversation(elsewhere).display_title
        self.composer.set_generating(on, title)
        self.sidebar.set_writing(self.reply_conv if on else None)
        self.picker.setEnabled(not on)

    def stop(self) -> None:
        if self.generating:
            self.host.stop()

    def stop_reply_in(self, conv_id: int) -> None:
        """Stop the current reply if it goes to ``conv_id`` (before that is deleted)."""
        if self.generating and self.reply_conv == conv_id:
            self.host.stop()

    def _end_reply(self) -> StoredMessage | None:
        """Forget the streaming reply; returns it (None if it never started)."""
        live, self._live, self._live_text = self._live, None, []
        self._progress = (0, 0)
        self.reply_conv = None
        self._new_chat_pending = False
        self.set_generating(False)
        self.show_model_state()
        if self.window_active_input():
            self.composer.focus()  # after Stop or the end of a reply, typing goes on
        return live

    def window_active_input(self) -> bool:
        """Whether the keyboard belongs to no other text field (then the composer takes it)."""
        from PySide6.QtWidgets import QApplication, QLineEdit, QPlainTextEdit

        focus = QApplication.focusWidget()
        if focus is None or focus is self.composer.edit:
            return True
        return not isinstance(focus, QLineEdit | QPlainTextEdit) or not focus.isVisible()

    def on_user_stored(self, msg: StoredMessage) -> None:
        self.composer.sent()
        self.reply_conv = msg.conversation_id
        if self._new_chat_pending and self.conv_id is None:
            self.conv_id = msg.conversation_id  # the new chat is still the one shown
            if self.pending_sampling:
                self.store.update_settings(msg.conversation_id, sampling=self.pending_sampling)
            self.pending_system = self.pending_sampling = None
        self._new_chat_pending = False
        if msg.conversation_id == self.conv_id:
            self.branch.append(msg)
            self.chat.append_message(msg)
        self.sidebar.touched(msg.conversation_id, msg.content)  # to the top at once
        self.sidebar.set_writing(msg.conversation_id)  # its reply is being written now
        self.sidebar.set_current(self.conv_id)

    def on_reply_started(self, msg: StoredMessage) -> None:
        self._live, self._live_text = msg, []
        self._progress = (0, 0)
        self.reply_conv = msg.conversation_id
        self.state_label.setText("Reading the conversation…")
        if msg.conversation_id == self.conv_id:
            self.branch.append(msg)
            self.chat.begin_stream(msg)

    def on_prompt_progress(self, message_id: int, read: int, total: int) -> None:
        if self._live is None or self._live.id != message_id:
            return
        self._progress = (read, total)
        if read < total:
            self.state_label.setText(f"Reading the conversation: {read:,} / {total:,} tokens")
        else:
            self.state_label.setText("Writing the reply…")
        self.chat.show_progress(message_id, read, total)

    def on_chunk(self, message_id: int, text: str) -> None:
        if self._live is not None and self._live.id == message_id:
            if not self._live_text:
                self.state_label.setText("Writing the reply… (Esc stops)")
            self._live_text.append(text)
        self.chat.append_chunk(message_id, text)

    def on_reply_finished(self, done: ReplyDone) -> None:
        if self.store.closed:  # arrived after the window closed
            return
        msg = done.message
        self.prompts[msg.id] = (done.prompt_text, done.prompt_tokens)
        streamed_here = self.chat.live_id == msg.id
        self._end_reply()
        if done.result.finish_reason == "error":
            self.banners.show_banner(
                f"The reply failed: {done.result.error or msg.error}. Try again, or choose a "
                "smaller context size or model in Settings.", "error", "reply")
        if msg.conversation_id == self.conv_id:
            before = branch_cut(self.branch[:-1] if streamed_here else self.branch)[0]
            if streamed_here and msg.sibling_count == 1 and self.branch \
                    and self.branch[-1].id == msg.id:
                self.branch[-1] = msg  # the branch is known: no need to read it all again
            else:
                self.branch = self.store.current_branch(msg.conversation_id)
            if msg.sibling_count > 1 or branch_cut(self.branch)[0] != before or not streamed_here:
                self.render_branch()  # alternates' counters or the context marker changed
            else:
                self.chat.end_stream(msg)
            self.request_count()
        self.sidebar.touched(msg.conversation_id, msg.content)
        self.sidebar.set_current(self.conv_id)
        self.reply_done.emit(done)

    def on_request_failed(self, _request_id: int, message: str) -> None:
        if self.store.closed:
            return
        self.composer.unsent()  # refused before it was stored: the text is still there
        live = self._end_reply()
        if message:
            self.banners.show_banner(message, "error", "reply")
        if self.conv_id:
            self.branch = self.store.current_branch(self.conv_id)
            if live is not None and self.chat.live_id == live.id:
                self.render_branch()  # the reply ended without being stored as finished
            elif live is None:
                self.render_branch()
        self.request_count()
        self.request_done.emit()

    # -- chat view actions ---------------------------------------------------------------------
    def on_chat_action(self, kind: str, message_id: int, _arg: int) -> None:
        if kind in ("prev", "next"):
            if self.generating:
                return
            index = next((i for i, m in enumerate(self.branch) if m.id == message_id), -1)
            self.branch = self.store.switch_alternate(message_id, -1 if kind == "prev" else 1)
            self.render_branch()
            if not self.chat.focus_pager(index, kind):  # the clicked button was rebuilt
                self.composer.focus()
            self.request_count()
            self.sidebar.refresh()  # its preview is the alternate now shown
            self.sidebar.set_current(self.conv_id)
        elif kind == "regen":
            self.regenerate(message_id)
        elif kind == "edit":
            self.edit_message(message_id)
        elif kind == "prompt":
            self.inspect_prompt(message_id)

    def regenerate(self, message_id: int) -> None:
        """A new alternate in place of assistant message ``message_id``."""
        if self.generating or self.model_state != "ready":
            return
        index = next((i for i, m in enumerate(self.branch) if m.id == message_id), None)
        if index is None or index == 0:
            return
        self.branch = self.branch[:index]
        self.render_branch()
        self.banners.clear("reply")
        self.reply_conv = self.conv_id
        self.set_generating(True)
        self.composer.focus()  # the Regenerate button clicked is gone with the old reply
        self.host.regenerate(message_id)

    def edit_message(self, message_id: int, new_text: str | None = None) -> None:
        """A new branch from user message ``message_id`` with ``new_text``, answered; without
        ``new_text`` the message opens for editing in place."""
        if new_text is None:
            self.chat.start_edit(message_id)
            return
        if self.generating:
            self.banners.show_banner("A reply is being written: stop it (the Stop button) or let "
                                     "it finish, then send the edit again.", "info", "edit",
                                     timeout_ms=8000)
            return
        if self.model_state != "ready":
            self.banners.show_banner("Load a model first: an edited message is answered at once.",
                                     "info", "edit", timeout_ms=8000)
            return
        msg = self.store.get_message(message_id)
        if not new_text.strip() or new_text == msg.content:
            return
        index = next((i for i, m in enumerate(self.branch) if m.id == message_id), len(self.branch))
        self.branch = self.branch[:index]
        self.render_branch()
        self.banners.clear("reply")
        self.reply_conv = msg.conversation_id
        self.set_generating(True)
        self.composer.focus()  # the edit box is gone with the old branch
        self.host.edit(message_id, new_text.strip())

    def inspect_prompt(self, message_id: int) -> None:
        from app.ui.inspector import PromptInspector

        known = self.prompts.get(message_id)
        if known is not None:
            PromptInspector(known[0], known[1], "exactly as the model received it.",
                            self).show()  # type: ignore[arg-type]
            return
        if self.model_state != "ready" or all(m.id != message_id for m in self.branch):
            self.banners.show_banner(
                "The prompt of this reply was not kept; load a model to re-render it.", "info",
                "inspect", timeout_ms=8000)
            return
        self._inspect_pending = message_id
        self.host.render_prompt(message_id)

    def on_prompt_ready(self, message_id: int, text: str, tokens: int) -> None:
        from app.ui.inspector import PromptInspector

        if message_id != self._inspect_pending or self.store.closed:
            return
        self._inspect_pending = None
        msg = self.store.get_message(message_id)
        name = self.model_info.name if self.model_info else "the current model"
        note = (f"re-rendered now with {name} (the original prompt of this reply from an "
                f"earlier session was not kept; it had {msg.stats.get('prompt_tokens', '?')} "
                "tokens).")
        PromptInspector(text, tokens, note, self).show()  # type: ignore[arg-type]

    def copy_last_reply(self) -> None:
        for msg in reversed(self.branch):
            if msg.role == "assistant":
                self.chat.copy_message(msg.id)
                return

    # -- context meter -------------------------------------------------------------------------
    def meter_counting(self) -> None:
        """The meter while its count waits behind a reply elsewhere: never a stale number."""
        n_ctx = self.model_info.n_ctx if self.model_info else 0
        self.meter.setText(f"counting… / {n_ctx:,} tokens")
        self.meter.setToolTip("Counted when the model is free (it is writing a reply).")
        set_tone(self.meter)

    def request_count(self) -> None:
        if self.model_state != "ready":
            self.meter.setText("")
            return
        n_ctx = self.model_info.n_ctx if self.model_info else 0
        if not self.branch:
            self.meter.setText(f"0 / {n_ctx:,} tokens")
            self.meter.setToolTip("")
            set_tone(self.meter)
            return
        if self.generating and self.reply_conv != self.conv_id:
            self.meter_counting()
        self.host.count(self.conv_id)

    def on_counted(self, count: ContextCount) -> None:
        if count.conversation_id != self.conv_id or self.model_state != "ready":
            return
        if count.tokens < 0:  # cannot be counted: say so, and why, instead of "?"
            self.meter.setText(f"{count.n_ctx:,}-token context")
            self.meter.setToolTip(count.error)
            set_tone(self.meter, "danger")
            return
        self.meter.setText(f"{count.tokens:,} / {count.n_ctx:,} tokens")
        tip = "Tokens the next message's prompt takes (before your new text)."
        if count.dropped_messages:
            tip += (f" {count.dropped_messages:,} earlier messages no longer fit and are "
                    "left out of it.")
        self.meter.setToolTip(tip)
        full = count.tokens > count.n_ctx * 0.9
        set_tone(self.meter, "warning" if full else "")
