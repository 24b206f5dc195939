"""ChatService: send, regenerate, edit and continue conversations on an engine, storing every reply."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.chat.models import ModelChoice, choose_model, display_name
from app.chat.reply import Reply
from app.chat.sampling import resolve_sampling
from app.chat.text import scrub
from app.engine.owner import Ticket
from app.engine.remote.registry import is_ref
from app.engine.types import Message, ModelInfo, PreparedPrompt, Sampling
from app.errors import Cancelled, UserError

if TYPE_CHECKING:
    from app.engine.protocol import Engine, Generation, ProgressCallback
    from app.settings import AppSettings
    from app.store import Conversation, Store, StoredMessage

log = logging.getLogger(__name__)
LOAD_OVERRIDES = ("n_ctx", "n_gpu_layers", "n_threads", "prompt_format", "rpc_servers")


@dataclass(frozen=True)
class ContextCount:
    """The context meter: tokens the next turn of a conversation sends, of ``n_ctx``.

    ``tokens`` is -1 when they cannot be counted (``error`` says why).
    """

    conversation_id: int | None
    tokens: int
    n_ctx: int
    dropped_messages: int = 0
    error: str = ""


def engine_messages(system_prompt: str, history: Sequence[StoredMessage]) -> list[Message]:
    """What the engine is sent for ``history``: the system prompt, then the user/assistant turns."""
    out = [Message("system", system_prompt)] if system_prompt.strip() else []
    out += [Message(m.role, m.content) for m in history  # type: ignore[arg-type]
            if m.role in ("user", "assistant") and (m.content or m.role == "user")]
    return out


def _sent(msg: StoredMessage) -> bool:
    """Whether ``engine_messages`` sends ``msg`` (empty replies are left out)."""
    return msg.role in ("user", "assistant") and bool(msg.content or msg.role == "user")


def prompt_start(history: Sequence[StoredMessage], dropped: int) -> int:
    """The index in ``history`` where a prompt that left out its first ``dropped`` messages
    begins (0: nothing was left out)."""
    if dropped <= 0:
        return 0
    seen = 0
    for index, msg in enumerate(history):
        if _sent(msg):
            if seen == dropped:
                return index
            seen += 1
    return len(history)


def branch_cut(branch: Sequence[StoredMessage]) -> tuple[int, int]:
    """Where the prompt of the branch's latest reply began, from the cut stored with it:
    (index in ``branch`` of its first message sent, messages left out); (0, 0) for none."""
    for index in range(len(branch) - 1, -1, -1):
        msg = branch[index]
        if msg.role == "assistant" and "dropped_messages" in (msg.stats or {}):
            dropped = int(msg.stats["dropped_messages"] or 0)
            return (prompt_start(branch[:index], dropped), dropped) if dropped else (0, 0)
    return 0, 0


def settled(branch: list[StoredMessage]) -> list[StoredMessage]:
    """``branch`` without a turn still being written at its end (its reply is ``partial``)."""
    if len(branch) >= 2 and branch[-1].role == "assistant" and branch[-1].state == "partial":
        return branch[:-2]
    return branch


class ChatService:
    """Runs every conversation turn of one face on one engine, and stores it.

    Create it on the engine's owner thread and call it only there (``EngineOwner`` does both);
    it opens its own Store there. ``settings`` gives the app settings at the time of each call
    (the app-wide defaults of the sampling rule, the default system prompt, load options).
    """

    def __init__(self, engine: Engine, *, settings: Callable[[], AppSettings],
                 db_path: Path | None = None, history: bool = True) -> None:
        self.engine = engine
        self._settings = settings
        self._db_path = db_path
        self._history = history
        self._store: Store | None = None
        self.model: ModelInfo | None = None
        self.load_note = ""  # why the last load did not use the usual model (see choose_model)

    # -- store and model ---------------------------------------------------------------------
    def settings(self) -> AppSettings:
        """The app settings now (the app-wide layer of every rule)."""
        return self._settings()

    @property
    def store(self) -> Store:
        """This thread's Store (opened on first use)."""
        if not self._history:
            raise UserError("This chat is not saved, so it has no stored conversations.")
        if self._store is None:
            from app.store import Store

            self._store = Store.open(self._db_path)
        return self._store

    def conversation(self, conversation_id: int) -> Conversation:
        """A stored conversation that can be continued (not in the trash)."""
        conv = self.store.get_conversation(conversation_id)
        if conv.trashed_at is not None:
            raise UserError(f"Conversation {conv.id} is in the trash; restore it first "
                            f"(`llama-desk history restore {conv.id}`).")
        return conv

    def choose_model(self, requested: str | None = None, *,
                     conversation_id: int | None = None) -> ModelChoice:
        """The model the one rule picks: ``requested``, else the conversation's, else the
        last used, else the newest installed (see ``app.chat.models.choose_model``)."""
        conv_model = (self.conversation(conversation_id).model
                      if conversation_id is not None else None)
        return choose_model(requested, conversation=conv_model, last_used=self._settings().model)

    def load_model(self, requested: str | ModelChoice | None = None, *,
                   conversation_id: int | None = None,
                   overrides: Mapping[str, Any] | None = None) -> ModelInfo:
        """Load the chosen model (or the ``ModelChoice`` given) with the app's load options and
        the request's ``overrides`` (n_ctx, n_gpu_layers, n_threads, prompt_format, rpc_servers)."""
        choice = (requested if isinstance(requested, ModelChoice)
                  else self.choose_model(requested, conversation_id=conversation_id))
        unknown = sorted(set(overrides or {}) - set(LOAD_OVERRIDES))
        if unknown:
            raise UserError(f"Unknown load option(s): {', '.join(unknown)}.")
        from app.hub import load_failures

        options = dataclasses.replace(self._settings().load_options(choice.path),
                                      **(overrides or {}))
        self.load_note = choice.note
        with load_failures.loading(choice.path):  # a crash inside llama.cpp is remembered
            info = self.engine.load(choice.path, options)
        # A remote engine names its model itself (MODEL @ ENGINE, the model it picked).
        self.model = info if is_ref(info.path) else dataclasses.replace(info, name=choice.name)
        return self.model

    def _require_model(self) -> ModelInfo:
        info = self.engine.info
        if info is None:
            raise UserError("No model is loaded; choose a model first.")
        if self.model is None or self.model.path != info.path:
            self.model = (info if is_ref(info.path)
                          else dataclasses.replace(info, name=display_name(info.path)))
        return self.model

    # -- turns ---------------------------------------------------------------------------------
    def send(self, conversation_id: int | None, text: str, *,
             overrides: Mapping[str, Any] | None = None, system: str | None = None,
             ticket: Ticket | None = None, on_progress: ProgressCallback | None = None
             ) -> Reply:
        """Add ``text`` as a user message after the conversation's current branch and start the
        reply (``conversation_id`` None starts a new conversation).

        The prompt is prepared first: a message too long for the context raises ``UserError``
        before anything is stored. The user message goes under the last settled message this
        call saw (a reply another process is still writing, and the message it answers, are not
        built on), so two processes continuing one conversation make two branches, never one
        interleaved.
        ``system`` replaces the system prompt for this request (and is kept by a new
        conversation). ``on_progress`` hears how the reading of the prompt goes (see
        ``Engine.generate``).
        """
        text = scrub(text)[0]
        conv = self.conversation(conversation_id) if conversation_id is not None else None
        history = settled(self.store.current_branch(conv.id)) if conv else []
        system_prompt = self._system(conv, system)
        messages = [*engine_messages(system_prompt, history), Message("user", text)]
        sampling = self._sampling(conv, overrides)
        ticket = ticket or Ticket()
        generation = self._start(messages, sampling, ticket, on_progress)
        store = self.store
        if conv is None:
            conv = store.create_conversation(system_prompt=system_prompt,
                                             model=str(self._require_model().path))
        user = store.add_user_message(conv.id, text, history[-1].id if history else None)
        return self._reply(generation, sampling, ticket, user)

    def regenerate(self, message_id: int, *, overrides: Mapping[str, Any] | None = None,
                   ticket: Ticket | None = None,
                   on_progress: ProgressCallback | None = None) -> Reply:
        """A new alternate answer: to user message ``message_id``, or in place of assistant
        message ``message_id`` (the earlier answers stay as alternates)."""
        store = self.store
        msg = store.get_message(message_id)
        user = msg if msg.role == "user" else (
            store.get_message(msg.parent_id) if msg.parent_id is not None else None)
        if user is None or user.role != "user":
            raise UserError(f"Message {message_id} does not answer a user message.")
        conv = self.conversation(user.conversation_id)
        messages = engine_messages(self._system(conv, None), store.path_to(user.id))
        sampling = self._sampling(conv, overrides)
        ticket = ticket or Ticket()
        generation = self._start(messages, sampling, ticket, on_progress)
        return self._reply(generation, sampling, ticket, user, new_user=False)

    def edit(self, message_id: int, text: str, *, overrides: Mapping[str, Any] | None = None,
             ticket: Ticket | None = None, on_progress: ProgressCallback | None = None
             ) -> Reply:
        """A new branch: ``text`` as an alternate of user message ``message_id``, answered."""
        store = self.store
        msg = store.get_message(message_id)
        if msg.role != "user":
            raise UserError(f"Message {message_id} is not a user message.")
        text = scrub(text)[0]
        if not text.strip():
            raise UserError("The edited message is empty.")
        conv = self.conversation(msg.conversation_id)
        before = store.path_to(msg.parent_id) if msg.parent_id is not None else []
        messages = [*engine_messages(self._system(conv, None), before), Message("user", text)]
        sampling = self._sampling(conv, overrides)
        ticket = ticket or Ticket()
        generation = self._start(messages, sampling, ticket, on_progress)
        edited = store.add_user_message(conv.id, text, msg.parent_id)
        return self._reply(generation, sampling, ticket, edited)

    def complete(self, messages: Sequence[Message], *,
                 overrides: Mapping[str, Any] | None = None,
                 ticket: Ticket | None = None,
                 on_progress: ProgressCallback | None = None,
                 stop: Sequence[str] = (), save: bool = False) -> Reply:
        """A reply to a whole list of ``messages`` (API requests, unsaved chats).

        Not stored, unless ``save``: then, once the prompt is known to fit, a new conversation
        holds the messages (leading system messages as its system prompt, ``overrides`` as its
        settings) and the reply streams into it like any other. ``stop``: the reply ends
        before the first of these strings.
        """
        sampling = resolve_sampling(self._settings().sampling, None, overrides)
        ticket = ticket or Ticket()
        messages = [Message(m.role, scrub(m.content)[0]) for m in messages]
        generation = self._start(messages, sampling, ticket, on_progress)
        if save:
            return self._reply(generation, sampling, ticket,
                               self._record(messages, dict(overrides or {})), stops=stop)
        return Reply(generation, sampling, ticket, self._require_model().name,
                     stop=self.engine.cancel, stops=stop)

    def complete_text(self, text: str, *, overrides: Mapping[str, Any] | None = None,
                      ticket: Ticket | None = None, on_progress: ProgressCallback | None = None,
                      stop: Sequence[str] = ()) -> Reply:
        """A plain text completion of ``text`` (no chat format; never stored)."""
        sampling = resolve_sampling(self._settings().sampling, None, overrides)
        ticket = ticket or Ticket()
        info = self._require_model()
        if ticket.cancelled:
            raise Cancelled("The request was stopped before it started.")
        generation = self.engine.generate_text(scrub(text)[0], sampling, on_progress=on_progress)
        return Reply(generation, sampling, ticket, info.name, stop=self.engine.cancel, stops=stop)

    # -- what the faces show -------------------------------------------------------------------
    def context_count(self, conversation_id: int | None) -> ContextCount:
        """Tokens the conversation's next turn sends now (before the new message), of n_ctx."""
        info = self._require_model()
        if conversation_id is None:
            return ContextCount(None, 0, info.n_ctx)
        conv = self.store.get_conversation(conversation_id)
        history = self.store.current_branch(conversation_id)
        messages = engine_messages(conv.system_prompt, history)
        if not messages or messages[-1].role != "user":
            messages.append(Message("user", ""))
        try:
            prompt = self.engine.prepare(messages, self._sampling(conv, None))
        except UserError as err:
            return ContextCount(conversation_id, -1, info.n_ctx, error=str(err))
        if not prompt.tokens:  # a server that applies its own prompt format: not countable here
            return ContextCount(conversation_id, -1, info.n_ctx,
                                error="The server formats the prompt itself; its size is not "
                                      "known before it is sent.")
        return ContextCount(conversation_id, len(prompt.tokens), info.n_ctx,
                            prompt.dropped_messages)

    def render_prompt(self, message_id: int) -> PreparedPrompt:
        """The prompt reply ``message_id`` would be sent now (the prompt inspector)."""
        store = self.store
        msg = store.get_message(message_id)
        path = store.path_to(message_id)
        upto = path[:-1] if msg.role == "assistant" else path
        conv = store.get_conversation(msg.conversation_id)
        self._require_model()
        return self.engine.prepare(engine_messages(conv.system_prompt, upto),
                                   self._sampling(conv, None))

    def close_store(self) -> None:
        """Close this thread's Store (it opens again when next needed): a repair swaps files."""
        if self._store is not None:
            self._store.close()
            self._store = None

    def close(self) -> None:
        """Free the model and close the Store (on the owner thread)."""
        try:
            self.engine.close()
        finally:
            if self._store is not None:
                self._store.close()
                self._store = None

    # -- internals -----------------------------------------------------------------------------
    def _system(self, conv: Conversation | None, system: str | None) -> str:
        if system is not None:
            return scrub(system)[0]
        return conv.system_prompt if conv else self._settings().default_system_prompt

    def _sampling(self, conv: Conversation | None, overrides: Mapping[str, Any] | None
                  ) -> Sampling:
        return resolve_sampling(self._settings().sampling, conv.sampling if conv else None,
                                overrides)

    def _start(self, messages: list[Message], sampling: Sampling, ticket: Ticket,
               on_progress: ProgressCallback | None) -> Generation:
        self._require_model()
        if ticket.cancelled:
            raise Cancelled("The request was stopped before it started.")
        return self.engine.generate(messages, sampling, on_progress=on_progress)

    def _reply(self, generation: Generation, sampling: Sampling, ticket: Ticket, user: StoredMessage,
               *, new_user: bool = True, stops: Sequence[str] = ()) -> Reply:
        info = self._require_model()
        store = self.store
        message = store.start_assistant(user.conversation_id, user.id, model_name=info.name,
                                        model_file=str(info.path))
        return Reply(generation, sampling, ticket, info.name, stop=self.engine.cancel, store=store,
                     user_message=user if new_user else None, message=message, stops=stops)

    def _record(self, messages: list[Message], sampling: dict[str, Any]) -> StoredMessage:
        """A new conversation holding ``messages``; returns its last (user) message."""
        head = 0
        while head < len(messages) and messages[head].role == "system":
            head += 1
        system = "\n\n".join(m.content for m in messages[:head])
        store = self.store
        conv = store.create_conversation(system_prompt=system, sampling=sampling,
                                         model=str(self._require_model().path))
        for msg in messages[head:-1]:
            store.add_message(conv.id, msg.role, msg.content)
        return store.add_user_message(conv.id, messages[-1].content)
