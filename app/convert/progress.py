"""Progress of a conversion job: named stages, bytes done / total, rate and ETA, and cancel."""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from app.convert.errors import ConvertCancelled

STAGES = ("download", "check", "convert", "quantize", "verify")


@dataclass(frozen=True)
class Progress:
    """One progress report: ``done`` of ``total`` bytes in ``stage`` (total 0 = unknown)."""

    stage: str
    done: int
    total: int
    rate: float = 0.0  # bytes per second over the last few seconds
    eta: float | None = None  # seconds left in this stage
    message: str = ""

    @property
    def fraction(self) -> float:
        return min(1.0, self.done / self.total) if self.total else 0.0


ProgressFn = Callable[[Progress], None]


class Reporter:
    """Turns stage/byte counts into throttled ``Progress`` calls and checks the cancel event.

    ``check()`` raises ConvertCancelled once ``cancel`` is set; the converter calls it between
    tensors, so a cancel takes effect within one tensor's worth of work.
    """

    def __init__(self, on_progress: ProgressFn | None = None, cancel: threading.Event | None = None,
                 interval: float = 0.2) -> None:
        self.on_progress = on_progress
        self.cancel = cancel or threading.Event()
        self.interval = interval
        self.stage_name = ""
        self.total = 0
        self.done = 0
        self.message = ""
        self._samples: collections.deque[tuple[float, int]] = collections.deque(maxlen=64)
        self._last = 0.0
        self._started = time.monotonic()

    def check(self) -> None:
        if self.cancel.is_set():
            raise ConvertCancelled("cancelled")

    def stage(self, name: str, total: int, message: str = "") -> None:
        """Start ``name`` with ``total`` bytes of work; always reported."""
        self.check()
        self.stage_name, self.total, self.done, self.message = name, int(total), 0, message
        self._samples.clear()
        self._started = time.monotonic()
        self._emit(force=True)

    def note(self, message: str) -> None:
        self.message = message
        self._emit(force=True)

    def update(self, done: int) -> None:
        self.done = int(done)
        self._emit(force=self.done >= self.total > 0)

    def advance(self, n: int) -> None:
        self.update(self.done + int(n))

    def snapshot(self) -> Progress:
        now = time.monotonic()
        self._samples.append((now, self.done))
        while len(self._samples) > 2 and now - self._samples[0][0] > 5.0:
            self._samples.popleft()
        t0, d0 = self._samples[0]
        if now - t0 < 0.2:  # too short a window: the stage's average so far
            t0, d0 = self._started, 0
        rate = (self.done - d0) / (now - t0) if now > t0 else 0.0
        eta = (self.total - self.done) / rate if rate > 0 and self.total else None
        return Progress(self.stage_name, self.done, self.total, rate, eta, self.message)

    def _emit(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < self.interval:
            return
        self._last = now
        progress = self.snapshot()
        if self.on_progress is not None:
            self.on_progress(progress)
