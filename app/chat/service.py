"""ChatService: send, regenerate, edit and continue conversations on an engine, storing every reply."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.chat.history import FIRST_TAIL, Turn, branch_cut, engine_messages, prepare_turn, settled
from app.chat.kvcache import StateCache
from app.chat.models import ModelChoice, choose_model, display_name
from app.chat.reply import Reply
from app.chat.sampling import resolve_sampling
from app.chat.states import ConversationStates
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
LOAD_OVERRIDES = ("n_ctx", "n_gpu_layers", "n_threads", "n_threads_batch", "prompt_format",
                  "kv_type", "rpc_servers")
__all__ = ["ChatService", "ContextCount", "branch_cut", "engine_messages", "settled"]


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
        self._lengths: dict[int, int] = {}  # message id -> messages on its branch (root..it)
        self._tails: dict[int, int] = {}  # conversation -> messages its last prompt kept
        self.states = ConversationStates(engine, self._state_cache(),
                                         ConversationStates.namespace_for(db_path))
        self.last_turn: Turn | None = None  # the last turn prepared (tests, benchmarks)
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
        the request's ``overrides`` (see LOAD_OVERRIDES)."""
        choice = (requested if isinstance(requested, ModelChoice)
                  else self.choose_model(requested, conversation_id=conversation_id))
        unknown = sorted(set(overrides or {}) - set(LOAD_OVERRIDES))
        if unknown:
            raise UserError(f"Unknown load option(s): {', '.join(unknown)}.")
        from app.hub import load_failures

        options = dataclasses.replace(self._settings().load_options(choice.path),
                                      **(overrides or {}))
        self.load_note = choice.note
        self.states.reset()
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
        system_prompt = self._system(conv, system)
        sampling = self._sampling(conv, overrides)
        turn = self._turn(conv, system_prompt, conv.current_leaf_id if conv else None,
                          [Message("user", text)], sampling, settle=True)
        ticket = ticket or Ticket()
        generation = self._start(turn, sampling, ticket, on_progress, conv)
        store = self.store
        if conv is None:
            conv = store.create_conversation(system_prompt=system_prompt,
                                             model=str(self._require_model().path))
        parent = turn.parent
        user = store.add_user_message(conv.id, text, parent.id if parent else None)
        self._child(parent.id if parent else None, user.id)
        return self._reply(generation, sampling, ticket, user, turn)

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
        sampling = self._sampling(conv, overrides)
        turn = self._turn(conv, self._system(conv, None), user.id, [], sampling)
        ticket = ticket or Ticket()
        generation = self._start(turn, sampling, ticket, on_progress, conv)
        return self._reply(generation, sampling, ticket, user, turn, new_user=False)

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
        sampling = self._sampling(conv, overrides)
        turn = self._turn(conv, self._system(conv, None), msg.parent_id,
                          [Message("user", text)], sampling)
        ticket = ticket or Ticket()
        generation = self._start(turn, sampling, ticket, on_progress, conv)
        edited = store.add_user_message(conv.id, text, msg.parent_id)
        self._child(msg.parent_id, edited.id)
        return self._reply(generation, sampling, ticket, edited, turn)

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
        self._require_model()
        turn = Turn(messages, self.engine.prepare(messages, sampling), None, 0)
        generation = self._start(turn, sampling, ticket, on_progress, None)
        if save:
            return self._reply(generation, sampling, ticket,
                               self._record(messages, dict(overrides or {})), turn, stops=stop)
        return Reply(generation, sampling, ticket, self._require_model().name,
                     stop=self.engine.cancel, stops=stop,
                     after=lambda result: self.states.after_turn(None, result))

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
        return Reply(generation, sampling, ticket, info.name, stop=self.engine.cancel, stops=stop,
                     after=lambda result: self.states.after_turn(None, result))

    # -- what the faces show -------------------------------------------------------------------
    def context_count(self, conversation_id: int | None) -> ContextCount:
        """Tokens the conversation's next turn sends now (before the new message), of n_ctx."""
        info = self._require_model()
        if conversation_id is None:
            return ContextCount(None, 0, info.n_ctx)
        conv = self.store.get_conversation(conversation_id)
        sampling = self._sampling(conv, None)
        try:
            # The next turn as send() would prepare it, with an empty message for the one to come.
            turn = self._turn(conv, conv.system_prompt, conv.current_leaf_id,
                              [Message("user", "")], sampling, settle=True)
        except UserError as err:
            return ContextCount(conversation_id, -1, info.n_ctx, error=str(err))
        if not turn.prompt.tokens:  # a server that applies its own prompt format: not countable
            return ContextCount(conversation_id, -1, info.n_ctx,
                                error="The server formats the prompt itself; its size is not "
                                      "known before it is sent.")
        return ContextCount(conversation_id, len(turn.prompt.tokens), info.n_ctx,
                            turn.prompt.dropped_messages)

    def render_prompt(self, message_id: int) -> PreparedPrompt:
        """The prompt reply ``message_id`` would be sent now (the prompt inspector)."""
        store = self.store
        msg = store.get_message(message_id)
        leaf = msg.parent_id if msg.role == "assistant" else msg.id
        conv = store.get_conversation(msg.conversation_id)
        self._require_model()
        return self._turn(conv, conv.system_prompt, leaf, [], self._sampling(conv, None)).prompt

    def close_store(self) -> None:
        """Close this thread's Store (it opens again when next needed): a repair swaps files."""
        self._lengths.clear()
        self._tails.clear()
        if self._store is not None:
            self._store.close()
            self._store = None

    def close(self) -> None:
        """Free the model and close the Store (on the owner thread)."""
        try:
            self.states.close()
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

    def _state_cache(self) -> StateCache | None:
        """Where conversations' KV states are kept (None: not kept, e.g. an unsaved chat)."""
        if not self._history:
            return None
        from app import paths

        cap = int(self._settings().state_cache_gb * 2**30)
        return StateCache(paths.cache_dir() / "kv-states", cap)

    def _length(self, leaf_id: int) -> int:
        """Messages on the branch from the root to ``leaf_id`` (counted once, then cached)."""
        if leaf_id not in self._lengths:
            self._lengths[leaf_id] = self.store.branch_length(leaf_id)
        return self._lengths[leaf_id]

    def _child(self, parent_id: int | None, child_id: int) -> None:
        """A new message's branch length, from its parent's when known (no query later)."""
        if parent_id is None:
            self._lengths[child_id] = 1
        elif parent_id in self._lengths:
            self._lengths[child_id] = self._lengths[parent_id] + 1

    def _turn(self, conv: Conversation | None, system_prompt: str, leaf_id: int | None,
              extra: list[Message], sampling: Sampling, *, settle: bool = False) -> Turn:
        """The turn's messages and prompt, reading the branch only as far back as it needs."""
        self._require_model()
        hint = self._tails.get(conv.id, 0) if conv else 0
        turn = prepare_turn(self.store, self.engine, system_prompt=system_prompt, leaf_id=leaf_id,
                            extra=extra, sampling=sampling, settle=settle,
                            first_tail=max(FIRST_TAIL, 2 * hint), length=self._length)
        if conv is not None:
            self._tails[conv.id] = turn.kept
        self.last_turn = turn
        return turn

    def _start(self, turn: Turn, sampling: Sampling, ticket: Ticket,
               on_progress: ProgressCallback | None, conv: Conversation | None) -> Generation:
        self._require_model()
        if ticket.cancelled:
            raise Cancelled("The request was stopped before it started.")
        began = time.perf_counter()
        self.states.before_turn(conv.id if conv else None, turn.prompt.tokens)
        turn.restore_s = time.perf_counter() - began
        return self.engine.generate(turn.messages, sampling, on_progress=on_progress)

    def _reply(self, generation: Generation, sampling: Sampling, ticket: Ticket, user: StoredMessage,
               turn: Turn, *, new_user: bool = True, stops: Sequence[str] = ()) -> Reply:
        info = self._require_model()
        store = self.store
        message = store.start_assistant(user.conversation_id, user.id, model_name=info.name,
                                        model_file=str(info.path))
        self._child(user.id, message.id)
        conv_id = user.conversation_id
        return Reply(generation, sampling, ticket, info.name, stop=self.engine.cancel, store=store,
                     user_message=user if new_user else None, message=message, stops=stops,
                     dropped=turn.prompt.dropped_messages, extra_ttft=turn.restore_s,
                     after=lambda result: self.states.after_turn(conv_id, result))

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
        user = store.add_user_message(conv.id, messages[-1].content)
        self._lengths[user.id] = len(messages) - head
        return user
