"""ReplyWriter: streams a reply into the database at most every half second, then finishes it."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol

from app.engine.types import GenerationResult
from app.store.models import StoredMessage


@dataclass(frozen=True)
class ReplyEnding:
    """How a reply ended: its final text and state, with what the engine reported."""

    text: str
    state: str  # "complete", "cancelled" or "error"
    error: str | None = None
    stats: dict[str, Any] | None = None  # None keeps the stored stats
    model_name: str | None = None  # None or "" keeps the stored name
    model_file: str | None = None


class ReplySink(Protocol):
    """Where a ReplyWriter saves a partial assistant message (the Store is one)."""

    def save_partial_text(self, message_id: int, text: str) -> None:
        """Replace the text of a message that is still partial (committed)."""

    def finish_reply(self, message_id: int, ending: ReplyEnding) -> StoredMessage:
        """Write the final text, state and stats (committed); returns the stored message."""


class ReplyWriter:
    """Buffers streamed text for one partial assistant message and saves it.

    ``append`` is cheap per token: it saves only when ``flush_interval`` seconds have passed
    since the last save, so a crash loses at most about that much of a reply. ``finish`` writes
    the final text, stats and state. Use it from the thread that owns the Store. As a context
    manager, leaving with an exception and no ``finish`` records it (Ctrl-C: cancelled).
    """

    def __init__(
        self,
        store: ReplySink,
        message: StoredMessage,
        flush_interval: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self.message_id = message.id
        self._parts: list[str] = [message.content] if message.content else []
        self._dirty = False
        self._clock = clock
        self._interval = flush_interval
        self._last = clock()
        self.flush_count = 0
        self.finished: StoredMessage | None = None

    @property
    def text(self) -> str:
        if len(self._parts) > 1:
            self._parts = ["".join(self._parts)]
        return self._parts[0] if self._parts else ""

    def append(self, chunk: str) -> None:
        """Add streamed text; saves it when the flush interval has passed."""
        if not chunk:
            return
        self._parts.append(chunk)
        self._dirty = True
        if self._clock() - self._last >= self._interval:
            self.flush()

    def flush(self) -> None:
        """Save the text so far (the message stays partial)."""
        if self._dirty and self.finished is None:
            self._store.save_partial_text(self.message_id, self.text)
            self.flush_count += 1
            self._dirty = False
        self._last = self._clock()

    def finish(self, result: GenerationResult) -> StoredMessage:
        """Write the final text, stats and state (complete, cancelled or error)."""
        text = result.text or self.text
        if result.finish_reason in ("stop", "length"):
            state, error = "complete", None
        elif result.finish_reason == "cancelled":
            state, error = "cancelled", None
        else:
            state, error = "error", result.error or "The model stopped with an error."
        return self._end(ReplyEnding(
            text, state, error=error, stats=result.stats(),
            model_name=result.model_name, model_file=result.model_path,
        ))

    def fail(self, message: str) -> StoredMessage:
        """Record an error that ended generation outside the engine; the text so far is kept."""
        return self._end(ReplyEnding(self.text, "error", error=message))

    def cancel(self) -> StoredMessage:
        """Record that the user stopped the reply; the text so far is kept."""
        return self._end(ReplyEnding(self.text, "cancelled"))

    def _end(self, ending: ReplyEnding) -> StoredMessage:
        if self.finished is not None:
            return self.finished
        self._parts = [ending.text] if ending.text else []
        self.finished = self._store.finish_reply(self.message_id, ending)
        return self.finished

    def __enter__(self) -> ReplyWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.finished is not None:
            return
        if exc_type is None:
            self.flush()
        elif issubclass(exc_type, KeyboardInterrupt):
            self.cancel()
        else:
            self.fail(f"{exc_type.__name__}: {exc}")
