"""`llama-desk download REPO [FILE | --quant Q]`: a resumable, verified download with progress."""

from __future__ import annotations

import argparse
import re
import sys
import time
from typing import Any, TextIO

from app.errors import UserError
from app.units import format_duration, format_size

REPO_RE = re.compile(r"^[\w.\-]+/[\w.\-]+$")


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "download", help="download a GGUF from the Hugging Face Hub (resumable, verified)",
        description="Download a model file; an interrupted download resumes where it stopped "
        "when the same command runs again. Gated repos need `llama-desk token set`.",
    )
    parser.add_argument("repo", help="Hub repo id, e.g. TheBloke/Llama-2-7B-Chat-GGUF")
    parser.add_argument("file", nargs="?", help="file name in the repo (default: --quant)")
    parser.add_argument("--quant", help="pick the file by quantization (default Q4_K_M); for "
                        "official weights, the quantization to convert to (F16, Q8_0, Q6_K, "
                        "Q5_K_M, Q5_K_S, Q5_0, Q4_K_M, Q4_K_S, Q4_0, Q3_K_M, Q2_K)")
    parser.add_argument("--revision", default="main", help="branch, tag or commit")
    parser.add_argument("--keep-source", action="store_true",
                        help="official weights: keep the downloaded checkpoint and the F16 file")
    parser.set_defaults(func=run)


class ProgressBar:
    """One `\\r` line on a terminal; plain lines every few seconds otherwise."""

    def __init__(self, stream: TextIO, interval: float = 5.0) -> None:
        self.stream = stream
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self.interval = interval
        self.last = 0.0
        self.message = ""
        self.drawn = False

    def line(self, snap: Any) -> str:
        total = snap.total or 0
        pct = f"{100 * snap.done / total:5.1f}%" if total else "  ?  "
        width = 24
        fill = int(width * snap.done / total) if total else 0
        bar = "#" * fill + "." * (width - fill)
        return (f"[{bar}] {pct} {format_size(snap.done)} / {format_size(total)}  "
                f"{format_size(snap.speed)}/s  ETA {format_duration(snap.eta, unknown='--:--')}")

    def update(self, snap: Any) -> None:
        if snap.message and snap.message != self.message:
            self.message = snap.message
            self._text(snap.message)
        if snap.state.value != "downloading" or not snap.total:
            return
        now = time.monotonic()
        if self.tty:
            self.stream.write("\r" + self.line(snap) + "  ")
            self.drawn = True
            self.stream.flush()
        elif now - self.last >= self.interval or snap.done >= snap.total:
            self.last = now
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


def run(args: argparse.Namespace) -> int:
    from app.hub import catalogue, token_store
    from app.hub.errors import NotFoundError
    from app.hub.fetch import filename_for_quant
    from app.hub.manager import DownloadManager, JobState

    repo = args.repo.strip()
    if not REPO_RE.match(repo):
        raise UserError(f"{repo!r} is not a Hub repo id; use owner/name, e.g. "
                        "TheBloke/Llama-2-7B-Chat-GGUF.")
    if args.file and args.quant:
        raise UserError("Give either a FILE or --quant, not both.")
    token = token_store.get_token()
    if not args.file and catalogue.official(repo) is not None:
        return _convert(repo, args)
    try:
        filename = args.file or filename_for_quant(repo, args.quant or catalogue.DEFAULT_QUANT,
                                                   token)
    except NotFoundError:
        from app.hub.official import inspect_repo

        if args.file or inspect_repo(repo, token=token, revision=args.revision) is None:
            raise
        return _convert(repo, args)
    known = catalogue.find(repo, filename=filename)
    if known is not None:
        from app.engine import hardware

        plan = catalogue.plan_for(known, 4096, hardware.detect())
        if plan is not None:
            print(f"{filename}: {plan.message}", file=sys.stderr)
    bar = ProgressBar(sys.stderr)
    manager = DownloadManager(token=lambda: token, on_update=bar.update)
    job = manager.add(repo, filename, revision=args.revision)
    try:
        snap = manager.wait(job)
    except KeyboardInterrupt:
        manager.pause(job)
        manager.wait(job, timeout=15)
        bar.finish()
        print("Paused; run the same command again to resume.", file=sys.stderr)
        return 130
    finally:
        manager.shutdown()
    bar.finish()
    if snap.state is not JobState.DONE:
        raise UserError(snap.error or f"Download {snap.state.value}.")
    print(f"Downloaded and verified {snap.path}")
    return 0


def _convert(repo: str, args: argparse.Namespace) -> int:
    """Official weights: download the checkpoint, convert, quantize, verify, register."""
    from app.commands.convert_progress import StageProgress, run_job
    from app.convert.quantize import DEFAULT_QUANT, parse_quant
    from app.hub.convert_jobs import ConvertManager
    from app.hub.official import describe_official

    quant = parse_quant(args.quant or DEFAULT_QUANT)
    for line in describe_official(repo, quant):
        print(line, file=sys.stderr)
    bar = StageProgress(sys.stderr)
    manager = ConvertManager(on_update=bar.update)
    job = manager.add_repo(repo, quant, keep_source=args.keep_source, revision=args.revision)
    return run_job(manager, job, bar, resumable=True)
