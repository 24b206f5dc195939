"""The window's handle on the model thread: the chat service's owner, wrapped in Qt signals."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Signal

from app.chat.service import ChatService, ContextCount
from app.engine.owner import EngineOwner, Ticket
from app.engine.types import GenerationResult
from app.errors import Cancelled, UserError

if TYPE_CHECKING:
    from app.chat.reply import Reply
    from app.store import StoredMessage

log = logging.getLogger(__name__)

CHUNK_INTERVAL_S = 1 / 30  # streamed text leaves the model thread at most ~30 times a second

__all__ = ["ContextCount", "EngineHost", "ReplyDone"]
# How a request starts its reply: (service, ticket, progress callback) -> Reply.
Start = Callable[[ChatService, Ticket, Callable[[int, int], None]], "Reply"]


@dataclass
class ReplyDone:
    """What the window needs after a reply: the stored message, prompt and result."""

    message: StoredMessage
    result: GenerationResult
    prompt_text: str = ""
    prompt_tokens: int = 0
    dropped_messages: int = 0
    request_id: int = 0


class EngineHost(QObject):
    """Runs the window's ChatService on its owner thread; results come back as queued signals.

    Requests are queued and run one at a time; each reply ends in exactly one
    ``reply_finished`` or ``request_failed``. ``stop()`` cancels the current reply through its
    ticket, the only call that reaches across threads.
    """

    backend_ready = Signal(str)
    load_started = Signal(str)  # the path being loaded
    loaded = Signal(object)  # ModelInfo
    load_note = Signal(str)  # why the usual model was not the one loaded (shown as a banner)
    load_failed = Signal(str, object)  # message, ModelInfo still loaded or False
    user_stored = Signal(object)  # StoredMessage: the user message a request added
    reply_started = Signal(object)  # StoredMessage (partial)
    chunk = Signal(int, str)  # message id, batched text
    prompt_progress = Signal(int, int, int)  # message id, prompt tokens read, tokens to read
    reply_finished = Signal(object)  # ReplyDone
    request_failed = Signal(int, str)  # request id, message ("" = nothing to say)
    counted = Signal(object)  # ContextCount
    prompt_ready = Signal(int, str, int)  # message id, prompt text, token count

    def __init__(self, service_factory: Callable[[], ChatService],
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.owner: EngineOwner[ChatService] = EngineOwner(service_factory, name="model-worker")
        self._next_id = 0
        self._tickets: dict[int, Ticket] = {}
        self._lock = threading.Lock()
        self.active_request = 0

    # -- requests (UI thread) ------------------------------------------------------------------
    def _emit(self, signal: Any, *args: Any) -> None:
        try:
            signal.emit(*args)
        except RuntimeError as err:  # "Signal source has been deleted": the window is gone
            log.debug("dropped a late result: %s", err)

    def _submit(self, fn: Callable[..., None], *args: Any) -> Future[None]:
        return self.owner.submit(self._guard, fn, *args)

    def _guard(self, fn: Callable[..., None], *args: Any) -> None:
        try:
            fn(self.owner.resource, *args)
        except Exception:  # a bug: keep the thread alive for the next request
            log.exception("model thread task failed")

    def detect_backend(self) -> None:
        self._submit(self._detect)

    def load(self, requested: str | None) -> None:
        """Load ``requested`` (a path or name; None: the model the service's rule picks)."""
        self._submit(self._load, requested)

    def send(self, conversation_id: int | None, text: str,
             overrides: Mapping[str, Any] | None = None, system: str | None = None) -> int:
        """A user message and its reply (``overrides``: this request's sampling changes;
        ``system``: its system prompt, which a new conversation keeps)."""
        return self._reply(lambda s, t, p: s.send(conversation_id, text, overrides=overrides,
                                                  system=system, ticket=t, on_progress=p))

    def regenerate(self, message_id: int, overrides: Mapping[str, Any] | None = None) -> int:
        return self._reply(lambda s, t, p: s.regenerate(message_id, overrides=overrides,
                                                        ticket=t, on_progress=p))

    def edit(self, message_id: int, text: str,
             overrides: Mapping[str, Any] | None = None) -> int:
        return self._reply(lambda s, t, p: s.edit(message_id, text, overrides=overrides,
                                                  ticket=t, on_progress=p))

    def count(self, conversation_id: int | None) -> None:
        self._submit(self._count, conversation_id)

    def render_prompt(self, message_id: int) -> None:
        self._submit(self._render, message_id)

    def stop(self) -> None:
        """Stop the current reply (and anything queued before it) within one token."""
        with self._lock:
            tickets = list(self._tickets.values())
        for ticket in tickets:
            ticket.cancel()

    def close(self, timeout_ms: int | None = 10_000) -> bool:
        """Stop, free the model on its thread and end the thread; True once it has ended.

        A model load cannot be cancelled: when the thread is still busy after ``timeout_ms``
        this returns False and the thread goes on; ``closed_future()`` tells when it ends.
        """
        self.stop()
        return self.owner.close(None if timeout_ms is None else timeout_ms / 1000)

    def closed_future(self) -> Future[None] | None:
        return self.owner.closed

    def _reply(self, start: Start) -> int:
        self._next_id += 1
        rid = self.active_request = self._next_id
        ticket = Ticket()
        with self._lock:
            self._tickets[rid] = ticket
        self._submit(self._run_reply, rid, ticket, start)
        return rid

    # -- on the model thread -------------------------------------------------------------------
    def _detect(self, _service: ChatService) -> None:
        try:
            from app.engine import hardware

            backend = hardware.detect().backend
        except Exception:
            log.exception("hardware detection failed")
            backend = "CPU"
        self._emit(self.backend_ready, backend)

    def _load(self, service: ChatService, requested: str | None) -> None:
        try:
            choice = service.choose_model(requested)
            self._emit(self.load_started, choice.path)
            info = service.load_model(choice)
        except UserError as err:
            self._emit(self.load_failed, str(err), self._still_loaded(service))
        except MemoryError:
            self._emit(self.load_failed, "Out of memory while loading the model: choose a "
                       "smaller model or quantization, or lower the context size in Settings.",
                       self._still_loaded(service))
        except Exception as err:
            log.exception("loading %s failed", requested)
            self._emit(self.load_failed, f"Could not load the model ({type(err).__name__}: "
                       f"{err}); choose another model.", self._still_loaded(service))
        else:
            if service.load_note:
                self._emit(self.load_note, service.load_note)
            self._emit(self.loaded, info)

    @staticmethod
    def _still_loaded(service: ChatService) -> Any:
        """The model still loaded, or False (None must not cross a queued signal: PySide6)."""
        return service.model if service.engine.info is not None and service.model else False

    def _count(self, service: ChatService, conversation_id: int | None) -> None:
        try:
            count = service.context_count(conversation_id)
        except UserError as err:
            log.info("count failed: %s", err)
            return
        self._emit(self.counted, count)

    def _render(self, service: ChatService, message_id: int) -> None:
        try:
            prompt = service.render_prompt(message_id)
        except UserError as err:
            self._emit(self.prompt_ready, message_id, str(err), -1)
            return
        self._emit(self.prompt_ready, message_id, prompt.text, len(prompt.tokens))

    def _run_reply(self, service: ChatService, rid: int, ticket: Ticket, start: Start) -> None:
        """One reply; always ends in exactly one reply_finished or request_failed."""
        done: ReplyDone | None = None
        failure = ""
        live = [0]  # the reply's message id, once it exists (progress comes after that)

        def progress(read: int, total: int) -> None:
            self._emit(self.prompt_progress, live[0], read, total)

        try:
            reply = start(service, ticket, progress)
            live[0] = reply.message.id if reply.message is not None else 0
            done = self._stream(reply, rid)
        except Cancelled:
            failure = ""
        except UserError as err:
            failure = "" if ticket.cancelled else str(err)
        except Exception as err:
            log.exception("the reply failed")
            failure = f"The reply failed: {type(err).__name__}: {err}"
        finally:
            with self._lock:
                self._tickets.pop(rid, None)
            if done is not None:
                self._emit(self.reply_finished, done)
            else:
                self._emit(self.request_failed, rid, failure)

    def _stream(self, reply: Reply, rid: int) -> ReplyDone | None:
        assert reply.message is not None
        if reply.user_message is not None:
            self._emit(self.user_stored, reply.user_message)
        self._emit(self.reply_started, reply.message)
        message_id = reply.message.id
        pending: list[str] = []
        last = time.monotonic()
        try:
            for piece in reply:
                pending.append(piece)
                now = time.monotonic()
                if now - last >= CHUNK_INTERVAL_S:
                    self._emit(self.chunk, message_id, "".join(pending))
                    pending.clear()
                    last = now
        finally:
            if pending:
                self._emit(self.chunk, message_id, "".join(pending))
        if reply.gone or reply.message is None:
            return None
        prompt = reply.prompt
        return ReplyDone(reply.message, reply.result, prompt.text, len(prompt.tokens),
                         prompt.dropped_messages, rid)
