"""Conversion jobs in the terminal: stage lines and a progress bar on stderr, Ctrl+C handling."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from app.errors import UserError
from app.units import format_duration, format_size

STAGE_LABELS = {"download": "download", "check": "md5 check", "convert": "convert",
                "quantize": "quantize", "verify": "verify"}


class StageProgress:
    """Prints each stage once as a line, then a `\\r` bar on a terminal (plain lines every few
    seconds otherwise) with bytes, speed and ETA."""

    def __init__(self, stream: TextIO, interval: float = 5.0) -> None:
        self.stream = stream
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self.interval = interval
        self.stage = ""
        self.message = ""
        self.last = 0.0
        self.drawn = False
        self.completed = ""  # the stage whose 100 % line was printed (plain output)

    def line(self, snap: Any) -> str:
        total = snap.total or 0
        pct = f"{100 * snap.done / total:5.1f}%" if total else "  ?  "
        fill = int(24 * min(1.0, snap.done / total)) if total else 0
        return (f"{STAGE_LABELS.get(snap.stage, snap.stage):<9} [{'#' * fill}{'.' * (24 - fill)}] "
                f"{pct} {format_size(snap.done)} / {format_size(total)}  "
                f"{format_size(snap.speed)}/s  ETA {format_duration(snap.eta, unknown='--:--')}")

    def update(self, snap: Any) -> None:
        if snap.stage and snap.stage != self.stage:
            self.stage = snap.stage
            self._text(f"[{STAGE_LABELS.get(snap.stage, snap.stage)}]"
                       + (f" {snap.message}" if snap.message else ""))
            self.message = snap.message
        elif snap.message and snap.message != self.message:
            self.message = snap.message
            self._text(snap.message)
        if not snap.total or snap.state.settled:
            return
        now = time.monotonic()
        if self.tty:
            self.stream.write("\r" + self.line(snap) + "  ")
            self.drawn = True
            self.stream.flush()
        elif now - self.last >= self.interval or (snap.done >= snap.total
                                                  and self.completed != snap.stage):
            self.last = now
            if snap.done >= snap.total:
                self.completed = snap.stage
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


def run_job(manager: Any, job_id: str, bar: StageProgress, *, resumable: bool) -> int:
    """Wait for the job; Ctrl+C pauses a download (resumable) or cancels a local conversion."""
    from app.hub.convert_jobs import ConvertState

    try:
        snap = manager.wait(job_id)
    except KeyboardInterrupt:
        (manager.pause if resumable else manager.cancel)(job_id)
        manager.wait(job_id, timeout=60)
        bar.finish()
        if resumable:
            print("Stopped; nothing was installed. Run the same command again to resume the "
                  "download (the conversion starts over).", file=sys.stderr)
        else:
            print("Stopped; nothing was installed.", file=sys.stderr)
        return 130
    finally:
        manager.shutdown()
    bar.finish()
    if snap.state is not ConvertState.DONE:
        raise UserError(snap.error or f"Conversion {snap.state.value}.")
    print(f"Installed {snap.name!r}: {snap.path}")
    return 0
