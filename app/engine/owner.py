"""One owner thread for an engine (or the chat service holding it), and per-request cancel tickets."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Generic, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")
_DONE = object()


class Ticket:
    """Stops one request from any thread: before it starts, while it prepares, or mid-reply.

    The code running the request attaches the engine's ``cancel`` while its reply streams; a
    ``cancel()`` that comes earlier is remembered and applied as soon as it attaches, and one
    that comes after it detached reaches nothing (so it can never stop a later request).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cancelled = False
        self._stop: Callable[[], None] | None = None

    @property
    def cancelled(self) -> bool:
        with self._lock:
            return self._cancelled

    def cancel(self) -> None:
        with self._lock:
            self._cancelled = True
            if self._stop is not None:
                self._stop()

    def attach(self, stop: Callable[[], None]) -> None:
        """Route ``cancel()`` to ``stop`` (calling it at once if already cancelled)."""
        with self._lock:
            self._stop = stop
            if self._cancelled:
                stop()

    def detach(self) -> None:
        with self._lock:
            self._stop = None


class EngineOwner(Generic[R]):
    """Creates a resource on one dedicated thread and runs every call on it there.

    The CLI waits with ``call`` and ``stream``, which turn a Ctrl+C in the waiting thread into
    ``on_interrupt()`` (the reply stops, the program does not); the window and the API server
    ``submit`` work and get a ``Future``. Work runs one item at a time, in order.
    """

    def __init__(self, factory: Callable[[], R], *, name: str = "engine-owner") -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._ident = self._pool.submit(threading.get_ident).result()
        self.resource: R = self._pool.submit(factory).result()
        self.interrupted = threading.Event()
        self._closed: Future[None] | None = None

    def on_owner_thread(self) -> bool:
        return threading.get_ident() == self._ident

    def submit(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> Future[T]:
        """Queue ``fn(*args, **kwargs)`` on the owner thread."""
        return self._pool.submit(fn, *args, **kwargs)

    def call(self, fn: Callable[..., T], *args: Any,
             on_interrupt: Callable[[], None] | None = None, **kwargs: Any) -> T:
        """Run ``fn(*args, **kwargs)`` on the owner thread and wait for its result.

        Called on the owner thread itself, it runs ``fn`` at once (waiting would deadlock).
        """
        if self.on_owner_thread():
            return fn(*args, **kwargs)
        return self._wait(self._pool.submit(fn, *args, **kwargs), on_interrupt)

    def _wait(self, future: Future[T], on_interrupt: Callable[[], None] | None) -> T:
        while True:
            try:
                return future.result(timeout=0.1)
            except TimeoutError:
                continue
            except KeyboardInterrupt:
                self.interrupted.set()
                if on_interrupt is not None:
                    on_interrupt()

    def stream(self, items: Iterable[T], on_interrupt: Callable[[], None] | None = None
               ) -> Iterator[T]:
        """Iterate ``items`` on the owner thread, yielding each item here as it comes.

        Stopping early (closing this iterator) calls ``on_interrupt`` too, and waits until the
        owner has finished with ``items``.
        """
        box: queue.Queue[Any] = queue.Queue()

        def run() -> None:
            try:
                for item in items:
                    box.put(item)
            finally:
                box.put(_DONE)

        future = self._pool.submit(run)
        finished = False
        try:
            while True:
                try:
                    item = box.get(timeout=0.1)
                except queue.Empty:
                    continue
                except KeyboardInterrupt:
                    self.interrupted.set()
                    if on_interrupt is not None:
                        on_interrupt()
                    continue
                if item is _DONE:
                    finished = True
                    break
                yield item
        finally:
            if not finished and on_interrupt is not None:
                on_interrupt()
            self._wait(future, on_interrupt)

    def close(self, timeout: float | None = None) -> bool:
        """Close the resource on its thread and end the thread; True once it has ended.

        Work already queued runs first. With a ``timeout`` this may return False while the
        thread is still busy (a model load cannot be interrupted); call again to keep waiting,
        or use ``closed`` to be told.
        """
        if self._closed is None:
            close = getattr(self.resource, "close", None)
            self._closed = self._pool.submit(close if callable(close) else lambda: None)
            self._pool.shutdown(wait=False)
        try:
            self._closed.result(timeout=timeout)
        except TimeoutError:
            return False
        except Exception:  # a failed close still ends the thread
            log.exception("closing the engine failed")
        self._pool.shutdown(wait=True)
        return True

    @property
    def closed(self) -> Future[None] | None:
        """The close in progress (None before ``close``): add a done callback to be told."""
        return self._closed
