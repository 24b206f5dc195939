"""The Engine protocol: what the chat service needs from a local or remote model engine."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Protocol

from app.engine import types

# Called on the owner thread while a prompt is read: (tokens read so far, tokens to read).
ProgressCallback = Callable[[int, int], None]


class Generation(Protocol):
    """One streaming reply: iterate for text chunks (whole UTF-8 characters), then ``result``.

    Iterate on the engine's owner thread. ``close()`` (or abandoning the iterator) stops the
    reply; ``result`` then reports ``cancelled``.
    """

    prompt: types.PreparedPrompt

    def __iter__(self) -> Iterator[str]: ...

    def close(self) -> None: ...

    @property
    def result(self) -> types.GenerationResult: ...


class Engine(Protocol):
    """A model engine owned by one thread.

    Every call but ``cancel`` must come from the thread that created the engine (the local
    engine raises ``EngineThreadError`` otherwise); ``cancel`` may come from any thread and
    stops the current reply within one token.
    """

    @property
    def info(self) -> types.ModelInfo | None:
        """The loaded model, or None."""
        ...

    def load(self, path: str | Path, options: types.LoadOptions | None = None) -> types.ModelInfo:
        """Load ``path`` (closing the previous model); raises ``UserError`` with the reason."""
        ...

    def prepare(self, messages: Sequence[types.Message],
                sampling: types.Sampling) -> types.PreparedPrompt:
        """The exact prompt a reply would be sent, fitted to the context (raises on overflow)."""
        ...

    def count_tokens(self, messages: Sequence[types.Message]) -> int:
        """Tokens ``messages`` take in the model's prompt format."""
        ...

    def generate(self, messages: Sequence[types.Message], sampling: types.Sampling | None = None, *,
                 on_progress: ProgressCallback | None = None) -> Generation:
        """Start a reply; raises ``UserError`` at once for a prompt that cannot fit.

        ``on_progress`` hears how far the reading of the prompt has got, from the first
        iteration until the first token (at least once at the start and once at the end).
        """
        ...

    def generate_text(self, text: str, sampling: types.Sampling | None = None, *,
                      on_progress: ProgressCallback | None = None) -> Generation:
        """Start a plain text completion of ``text`` (no chat format); raises
        ``ContextOverflowError`` at once when it cannot fit."""
        ...

    def cancel(self) -> None:
        """Stop the current reply (thread-safe)."""
        ...

    def close(self) -> None:
        """Free the model (safe to call twice)."""
        ...

    def save_state(self) -> types.EngineState | None:
        """A snapshot of the evaluated context (None when there is nothing to keep)."""
        ...

    def restore_state(self, state: types.EngineState, *, upto: int | None = None) -> int:
        """Restore a snapshot made by this engine for the loaded model (only its first ``upto``
        tokens when given); returns the tokens restored, or 0 when it does not belong to the
        loaded model (the context is then empty)."""
        ...
