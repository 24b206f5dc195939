"""The model's thread: EngineWorker owns the engine (and its own Store) inside one QThread."""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal, Slot

from app.engine.types import GenerationResult, Message, Sampling
from app.errors import UserError

log = logging.getLogger(__name__)

CHUNK_INTERVAL_S = 1 / 30  # streamed text leaves the worker at most ~30 times a second


@dataclass
class GenerateRequest:
    """One reply to produce: under ``parent_id`` (a user message) from ``messages``."""

    conversation_id: int
    parent_id: int
    messages: list[Message]
    sampling: Sampling
    request_id: int = 0


@dataclass
class ReplyDone:
    """What the window needs after a reply: the stored message, prompt and result."""

    message: Any  # StoredMessage
    result: GenerationResult
    prompt_text: str = ""
    prompt_tokens: int = 0
    dropped_messages: int = 0
    request_id: int = 0


@dataclass
class ContextCount:
    """The context meter's numbers for a conversation."""

    conversation_id: int
    tokens: int
    n_ctx: int
    dropped_messages: int = 0


class EngineWorker(QObject):
    """Lives in the model thread. Slots run there; signals are delivered queued to the window."""

    backend_ready = Signal(str)
    load_started = Signal(str)
    loaded = Signal(object)  # ModelInfo
    load_failed = Signal(str, object)  # message, ModelInfo still loaded or None
    reply_started = Signal(object)  # StoredMessage (partial)
    chunk = Signal(int, str)  # message id, batched text
    reply_finished = Signal(object)  # ReplyDone
    request_failed = Signal(int, str)  # request id, message
    counted = Signal(object)  # ContextCount
    prompt_ready = Signal(int, str, int)  # message id, prompt text, token count

    def __init__(self, engine_factory: Callable[[], Any], db_path: Path) -> None:
        super().__init__()
        self._factory = engine_factory
        self._db_path = db_path
        self._engine: Any = None
        self._store: Any = None
        # Request ids up to this one are cancelled (set from the window thread).
        self.cancelled_upto = 0
        self._lock = threading.Lock()
        self._display_name = ""  # the name the window shows for the loaded model

    # -- called from the window thread ---------------------------------------------------------
    def cancel(self, request_id: int) -> None:
        """Stop ``request_id`` (and anything earlier) within one token: thread-safe."""
        with self._lock:
            self.cancelled_upto = max(self.cancelled_upto, request_id)
        engine = self._engine
        if engine is not None:
            engine.cancel()

    def _is_cancelled(self, request_id: int) -> bool:
        with self._lock:
            return request_id <= self.cancelled_upto

    # -- slots (worker thread) -----------------------------------------------------------------
    def _ensure(self) -> Any:
        if self._engine is None:
            self._engine = self._factory()
        return self._engine

    def _db(self) -> Any:
        if self._store is None:
            from app.store import Store

            self._store = Store.open(self._db_path)
        return self._store

    def _info(self) -> Any:
        """The model still loaded, or False (None must not cross a queued signal: PySide6)."""
        info = self._engine.info if self._engine is not None else None
        return info if info is not None else False

    @Slot()
    def detect_backend(self) -> None:
        try:
            from app.engine import hardware

            self.backend_ready.emit(hardware.detect().backend)
        except Exception:
            log.exception("hardware detection failed")
            self.backend_ready.emit("CPU")

    @Slot(str, object, str)
    def load_model(self, path: str, options: Any, display_name: str) -> None:
        self.load_started.emit(path)
        self._display_name = display_name
        try:
            engine = self._ensure()
            info = engine.load(path, options)
        except UserError as err:
            self.load_failed.emit(str(err), self._info())
            return
        except MemoryError:
            self.load_failed.emit(
                "Out of memory while loading the model: choose a smaller model or quantization, "
                "or lower the context size in Settings.", self._info(),
            )
            return
        except Exception as err:
            log.exception("loading %s failed", path)
            self.load_failed.emit(
                f"Could not load {Path(path).name} ({type(err).__name__}: {err}); choose another "
                "model.", self._info(),
            )
            return
        self.loaded.emit(info)

    @Slot(object)
    def count(self, request: GenerateRequest) -> None:
        """Tokens the conversation takes, and how many old messages no longer fit."""
        engine = self._engine
        if engine is None or engine.info is None:
            return
        try:
            if request.messages and request.messages[-1].role == "user":
                # One render when nothing is dropped: the prompt is then the whole conversation.
                prompt = engine.prepare(request.messages, request.sampling)
                dropped = prompt.dropped_messages
                total = (len(prompt.tokens) if not dropped
                         else engine.count_tokens(request.messages))
            else:
                total, dropped = engine.count_tokens(request.messages), 0
        except UserError as err:
            total, dropped = -1, 0
            log.info("count failed: %s", err)
        self.counted.emit(
            ContextCount(request.conversation_id, total, engine.info.n_ctx, dropped)
        )

    @Slot(int, object, object)
    def render_prompt(self, message_id: int, messages: list[Message], sampling: Sampling) -> None:
        """The prompt a reply would get now (inspector for replies from earlier sessions)."""
        engine = self._engine
        if engine is None or engine.info is None:
            self.prompt_ready.emit(message_id, "", -1)
            return
        try:
            prompt = engine.prepare(messages, sampling)
        except UserError as err:
            self.prompt_ready.emit(message_id, str(err), -1)
            return
        self.prompt_ready.emit(message_id, prompt.text, len(prompt.tokens))

    @Slot(object)
    def generate(self, request: GenerateRequest) -> None:
        """Produce one reply; always ends in exactly one reply_finished or request_failed.

        The window shows "Stop" until one of them arrives, so nothing may leave this slot
        without it (an exception escaping a slot would also reach sys.excepthook here).
        """
        rid = request.request_id
        outcome: ReplyDone | str = ""
        try:
            outcome = self._generate(request)
        except Exception as err:
            log.exception("generation failed")
            outcome = ("" if self._is_cancelled(rid)
                       else f"The reply failed: {type(err).__name__}: {err}")
        finally:
            if isinstance(outcome, ReplyDone):
                self.reply_finished.emit(outcome)
            else:
                self.request_failed.emit(rid, outcome)

    def _generate(self, request: GenerateRequest) -> ReplyDone | str:
        """The reply, or why there is none ("" when it was cancelled or its message is gone)."""
        rid = request.request_id
        if self._is_cancelled(rid):
            return ""
        engine = self._ensure()
        try:
            if engine.info is None:
                raise UserError("No model is loaded; choose a model in the toolbar first.")
            generation = engine.generate(request.messages, request.sampling)
            store = self._db()
            info = engine.info
            message = store.start_assistant(
                request.conversation_id, request.parent_id, model_name=self._model_name(),
                model_file=str(info.path),
            )
        except UserError as err:
            return "" if self._is_cancelled(rid) else str(err)
        except Exception as err:
            log.exception("generation could not start")
            return f"The reply could not start: {type(err).__name__}: {err}"
        if self._is_cancelled(rid):
            engine.cancel()  # Stop came before generate() reset the engine's flag
        self.reply_started.emit(message)
        writer = store.reply_writer(message.id)  # text saved every 0.5 s while streaming
        pending: list[str] = []
        last = time.monotonic()
        try:
            for piece in generation:
                writer.append(piece)
                pending.append(piece)
                now = time.monotonic()
                if now - last >= CHUNK_INTERVAL_S:
                    self.chunk.emit(message.id, "".join(pending))
                    pending.clear()
                    last = now
            if pending:
                self.chunk.emit(message.id, "".join(pending))
            result = dataclasses.replace(generation.result, model_name=self._model_name())
            stored = writer.finish(result)
        except Exception as err:
            if pending:
                self.chunk.emit(message.id, "".join(pending))
            if self._message_gone(message.id):  # its conversation was deleted for good
                log.info("reply %d ended: its message was deleted (%s)", message.id, err)
                return ""
            log.exception("generation failed")
            try:
                stored = writer.fail(f"{type(err).__name__}: {err}")
            except Exception as again:
                log.exception("the failed reply could not be saved")
                return ("" if self._message_gone(message.id)
                        else f"The reply could not be saved: {type(again).__name__}: {again}")
            result = GenerationResult(text=writer.text, finish_reason="error", error=stored.error)
        prompt = generation.prompt
        return ReplyDone(stored, result, prompt.text, len(prompt.tokens), prompt.dropped_messages,
                         rid)

    def _message_gone(self, message_id: int) -> bool:
        try:
            self._db().get_message(message_id)
        except UserError:
            return True
        except Exception:
            log.exception("cannot look up message %d", message_id)
        return False

    def _model_name(self) -> str:
        info = self._engine.info if self._engine is not None else None
        return self._display_name or (info.name if info is not None else "")

    @Slot()
    def shutdown(self) -> None:
        try:
            if self._engine is not None:
                self._engine.close()
        finally:
            self._engine = None
            if self._store is not None:
                self._store.close()
                self._store = None


class EngineHost(QObject):
    """The window's handle on the worker: starts the thread and sends requests by queued signal."""

    _load = Signal(str, object, str)
    _generate = Signal(object)
    _count = Signal(object)
    _render_prompt = Signal(int, object, object)
    _detect = Signal()
    _shutdown = Signal()

    def __init__(self, engine_factory: Callable[[], Any], db_path: Path,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.model_thread = QThread()
        self.model_thread.setObjectName("model-worker")
        self.worker = EngineWorker(engine_factory, db_path)
        self.worker.moveToThread(self.model_thread)
        self._load.connect(self.worker.load_model)
        self._generate.connect(self.worker.generate)
        self._count.connect(self.worker.count)
        self._render_prompt.connect(self.worker.render_prompt)
        self._detect.connect(self.worker.detect_backend)
        self._shutdown.connect(self.worker.shutdown)
        self.model_thread.start()
        self._next_id = 0
        self.active_request = 0
        self._closing = False

    def load(self, path: str, options: Any, display_name: str = "") -> None:
        self._load.emit(path, options, display_name)

    def generate(self, request: GenerateRequest) -> int:
        self._next_id += 1
        request.request_id = self._next_id
        self.active_request = self._next_id
        self._generate.emit(request)
        return self._next_id

    def count(self, request: GenerateRequest) -> None:
        self._count.emit(request)

    def render_prompt(self, message_id: int, messages: list[Message], sampling: Sampling) -> None:
        self._render_prompt.emit(message_id, messages, sampling)

    def detect_backend(self) -> None:
        self._detect.emit()

    def stop(self) -> None:
        """Stop the current reply (the engine's cancel flag, set directly)."""
        if self.active_request:
            self.worker.cancel(self.active_request)

    def close(self, timeout_ms: int | None = 10_000) -> bool:
        """Cancel, free the model in its thread, and end the thread; True once it has ended.

        A model load cannot be cancelled: when the thread is still busy after ``timeout_ms``
        this returns False and the thread goes on (the caller must keep this object alive and
        call again, or wait with ``timeout_ms=None``: destroying a running QThread aborts).
        """
        thread = self.model_thread
        if not thread.isRunning():
            return True
        if not self._closing:
            self._closing = True
            self.worker.cancel(self._next_id)
            self._shutdown.emit()
            thread.quit()
        if thread.wait() if timeout_ms is None else thread.wait(timeout_ms):
            return True
        log.warning("model thread did not stop within %d ms", timeout_ms)
        return False
