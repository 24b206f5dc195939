"""The CLI's prompt-reading line on stderr: tokens read / to read, speed and time left."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO

from app.units import format_duration

SHOW_AFTER_S = 1.0  # a prompt read faster than this shows no line at all
PLAIN_EVERY_S = 2.0  # without a terminal: one line per this many seconds at most


class PromptProgress:
    """Called with (read, to read) while a prompt is read (on the engine's thread).

    Nothing appears for a prompt read within SHOW_AFTER_S. After that a terminal gets one line
    updated in place ("Reading the prompt: 1,200 / 4,000 tokens, 350 tokens/s, 8 s left"),
    erased once the reply starts; a pipe or log gets plain lines, at most every PLAIN_EVERY_S,
    and a last one saying how long it took.
    """

    def __init__(self, stream: TextIO | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.stream = stream or sys.stderr
        self.clock = clock
        self._lock = threading.Lock()
        self._started = self._last_shown = 0.0
        self._shown = False
        self._width = 0

    @property
    def tty(self) -> bool:
        isatty = getattr(self.stream, "isatty", None)
        return bool(isatty and isatty())

    def __call__(self, read: int, total: int) -> None:
        with self._lock:
            now = self.clock()
            if read == 0 or not self._started:
                self._started, self._shown, self._last_shown = now, False, 0.0
                if read == 0:
                    return
            elapsed = now - self._started
            if read >= total:
                self._finish(total, elapsed)
                return
            if elapsed < SHOW_AFTER_S:
                return
            if not self.tty and self._shown and now - self._last_shown < PLAIN_EVERY_S:
                return
            self._show(self.line(read, total, elapsed))
            self._last_shown = now

    @staticmethod
    def line(read: int, total: int, elapsed: float) -> str:
        rate = read / elapsed if elapsed > 0 else 0.0
        left = format_duration((total - read) / rate) if rate > 0 else "?"
        return (f"Reading the prompt: {read:,} / {total:,} tokens, {rate:,.0f} tokens/s, "
                f"{left} left")

    def _show(self, text: str) -> None:
        if self.tty:
            pad = max(0, self._width - len(text))
            self.stream.write("\r" + text + " " * pad)
            self._width = len(text)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()
        self._shown = True

    def _finish(self, total: int, elapsed: float) -> None:
        if self._shown:
            if self.tty:
                self.stream.write("\r" + " " * self._width + "\r")
            else:
                self.stream.write(f"Read the prompt ({total:,} tokens) in "
                                  f"{format_duration(elapsed)}.\n")
            self.stream.flush()
        self._started, self._shown, self._width = 0.0, False, 0
