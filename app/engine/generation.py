"""StreamedGeneration: the ``Generation`` protocol over a generator that fills a GenerationResult."""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from dataclasses import replace

from app.engine.types import GenerationResult, PreparedPrompt

# Starts a reply's stream: given the result to fill, the generator of its text chunks.
StreamStart = Callable[[GenerationResult], Generator[str, None, None]]


class StreamedGeneration:
    """One streaming reply: iterate for text chunks (whole UTF-8 characters), then read ``result``.

    Iterate it on the engine's owner thread. Abandoning it early (``close()`` or dropping it)
    stops the reply and reports ``cancelled``. Nothing runs until the first iteration.
    """

    def __init__(self, prompt: PreparedPrompt, start: StreamStart) -> None:
        self.prompt = prompt
        self._result = GenerationResult()
        self._iter = start(self._result)

    def __iter__(self) -> Iterator[str]:
        return self._iter

    def close(self) -> None:
        """Stop early; ``result`` then reports ``cancelled``."""
        self._iter.close()

    @property
    def result(self) -> GenerationResult:
        """The stats (a copy); complete once iteration has finished."""
        return replace(self._result)

    def text(self) -> str:
        """Run to the end and return the whole reply."""
        return "".join(self)
