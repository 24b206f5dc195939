"""A job's progress in the terminal, for downloads and conversions alike: notices and stage names
as lines, then a `\\r` bar on a terminal (plain lines every few seconds otherwise) with bytes,
speed and ETA; and the wait for the job, where Ctrl+C pauses or cancels it."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from app.errors import UserError
from app.units import format_duration, format_size

STAGE_LABELS = {"download": "download", "check": "md5 check", "convert": "convert",
                "quantize": "quantize", "verify": "verify"}
_NO_BAR = {"queued", "resolving", "verifying"}  # states with no byte counts worth a bar


class ProgressLines:
    """Prints each stage (snapshots with a ``stage``) and each new notice once as a line."""

    def __init__(self, stream: TextIO, interval: float = 5.0) -> None:
        self.stream = stream
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self.interval = interval
        self.stage = ""
        self.message = ""
        self.last = 0.0
        self.drawn = False
        self.completed: str | None = None  # the stage whose 100 % line was printed (plain output)

    def line(self, snap: Any) -> str:
        total = snap.total or 0
        pct = f"{100 * snap.done / total:5.1f}%" if total else "  ?  "
        fill = int(24 * min(1.0, snap.done / total)) if total else 0
        stage = getattr(snap, "stage", "")
        label = f"{STAGE_LABELS.get(stage, stage):<9} " if stage else ""
        return (f"{label}[{'#' * fill}{'.' * (24 - fill)}] {pct} {format_size(snap.done)} / "
                f"{format_size(total)}  {format_size(snap.speed)}/s  "
                f"ETA {format_duration(snap.eta, unknown='--:--')}")

    def update(self, snap: Any) -> None:
        stage = getattr(snap, "stage", "")
        if stage and stage != self.stage:
            self.stage = stage
            self._text(f"[{STAGE_LABELS.get(stage, stage)}]"
                       + (f" {snap.message}" if snap.message else ""))
            self.message = snap.message
        elif snap.message and snap.message != self.message:
            self.message = snap.message
            self._text(snap.message)
        if not snap.total or snap.state.settled or snap.state.value in _NO_BAR:
            return
        now = time.monotonic()
        if self.tty:
            self.stream.write("\r" + self.line(snap) + "  ")
            self.drawn = True
            self.stream.flush()
        elif now - self.last >= self.interval or (snap.done >= snap.total
                                                  and self.completed != stage):
            self.last = now
            if snap.done >= snap.total:
                self.completed = stage
            self.stream.write(self.line(snap) + "\n")
            self.stream.flush()

    def _text(self, text: str) -> None:
        self.finish()
        self.stream.write(text + "\n")
        self.stream.flush()

    def finish(self) -> None:
        if self.drawn:
            self.stream.write("\n")
            self.drawn = False
        self.stream.flush()


def run_job(manager: Any, job_id: str, bar: ProgressLines, *, resumable: bool, stopped: str,
            done: Callable[[Any], str], what: str = "Conversion") -> int:
    """Wait for the job and print ``done(snapshot)``; a failure is one UserError line.

    Ctrl+C pauses a ``resumable`` job (its downloads are kept) or cancels it, prints
    ``stopped`` and returns 130.
    """
    try:
        snap = manager.wait(job_id)
    except KeyboardInterrupt:
        (manager.pause if resumable else manager.cancel)(job_id)
        manager.wait(job_id, timeout=60)
        bar.finish()
        print(stopped, file=sys.stderr)
        return 130
    finally:
        manager.shutdown()
    bar.finish()
    if snap.state.value != "done":
        raise UserError(snap.error or f"{what} {snap.state.value}.")
    print(done(snap))
    return 0


def installed_line(snap: Any) -> str:
    return f"Installed {snap.name!r}: {snap.path}"


CONVERT_STOPPED = ("Stopped; nothing was installed. Run the same command again to resume the "
                   "download (the conversion starts over).")
