"""A Qt-free owner thread for an Engine: every engine call runs on it; cancel works from anywhere."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from app.engine.engine import Engine, Generation
from app.engine.types import GenerationResult, Message, Sampling

T = TypeVar("T")
_DONE = object()


class EngineOwner:
    """Runs an ``Engine`` on one dedicated thread (the CLI's twin of the window's worker).

    ``call`` and ``stream`` hand work to that thread and wait for it in a way that a Ctrl+C in
    the calling thread turns into ``engine.cancel()`` (the reply stops, the program does not).
    """

    def __init__(self, factory: Callable[[], Engine] = Engine) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="engine-owner")
        self.engine: Engine = self._pool.submit(factory).result()
        self.interrupted = threading.Event()

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn(*args, **kwargs)`` on the owner thread and return its result."""
        return self._wait(self._pool.submit(fn, *args, **kwargs))

    def _wait(self, future: Future[T]) -> T:
        while True:
            try:
                return future.result(timeout=0.1)
            except TimeoutError:
                continue
            except KeyboardInterrupt:
                self.interrupted.set()
                self.engine.cancel()

    def start(self, messages: Sequence[Message], sampling: Sampling) -> Generation:
        """Prepare a reply on the owner thread (raises UserError, e.g. context overflow, at once).

        A Ctrl+C that arrives while preparing is remembered and stops the reply as it starts
        (``Engine.generate`` clears the engine's own flag, so setting that alone would be lost).
        """
        self.interrupted.clear()
        return self.call(self.engine.generate, list(messages), sampling)

    def stream(self, generation: Generation) -> Iterator[str]:
        """Iterate ``generation`` on the owner thread, yielding its chunks here."""
        chunks: queue.Queue[Any] = queue.Queue()

        def run() -> GenerationResult:
            try:
                for chunk in generation:
                    chunks.put(chunk)
            finally:
                chunks.put(_DONE)
            return generation.result

        future = self._pool.submit(run)
        if self.interrupted.is_set():
            self.engine.cancel()
        finished = False
        try:
            while True:
                try:
                    item = chunks.get(timeout=0.1)
                except queue.Empty:
                    continue
                except KeyboardInterrupt:
                    self.interrupted.set()
                    self.engine.cancel()
                    continue
                if item is _DONE:
                    finished = True
                    break
                yield item
        finally:
            if not finished:  # the consumer stopped early: stop the reply too
                self.engine.cancel()
            self._wait(future)

    def close(self) -> None:
        """Free the model on its own thread and stop the thread."""
        try:
            self._pool.submit(self.engine.close).result()
        finally:
            self._pool.shutdown(wait=True)
