"""Quantize a GGUF with llama.cpp's own quantizer (llama_model_quantize) in a child process.

The child can be stopped at once on cancel (llama.cpp's quantizer has no abort hook), its
stderr chatter stays out of the terminal, and progress is the output file's growth against the
size the quantization is expected to reach.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
from pathlib import Path
from typing import Any

from app.convert.errors import ConvertCancelled, ConvertError
from app.convert.progress import Reporter
from app.errors import UserError

# The --quant choices: llama_ftype numbers (llama.h) and the size of the result relative to F16
# (TheBloke's Llama-2-7B-chat files over the 13.48 GB F16), for disk checks and progress.
QUANTS: dict[str, tuple[int, float]] = {
    "F16": (1, 1.0), "Q8_0": (7, 0.531), "Q6_K": (18, 0.410), "Q5_K_M": (17, 0.355),
    "Q5_K_S": (16, 0.345), "Q5_0": (8, 0.345), "Q4_K_M": (15, 0.303), "Q4_K_S": (14, 0.286),
    "Q4_0": (2, 0.284), "Q3_K_M": (12, 0.245), "Q2_K": (10, 0.210),
}
DEFAULT_QUANT = "Q4_K_M"


def parse_quant(text: str) -> str:
    """The canonical name of a --quant value (any case); UserError listing the valid ones."""
    wanted = text.strip().upper()
    if wanted not in QUANTS:
        raise UserError(f"Unknown quantization {text!r}; choose one of: {', '.join(QUANTS)}.")
    return wanted


def expected_size(f16_bytes: int, quant: str) -> int:
    return int(f16_bytes * QUANTS[quant][1])


def _child(src: str, dst: str, ftype: int, nthread: int, conn: Any) -> None:
    """Runs in the child process: quantize, then send (status, last llama.cpp log lines)."""
    import ctypes

    import llama_cpp

    lines: list[str] = []

    def keep(_level: int, text: bytes, _user: ctypes.c_void_p) -> None:
        lines.append(text.decode("utf-8", errors="replace"))
        del lines[:-40]

    sink = llama_cpp.llama_log_callback(keep)

    llama_cpp.llama_log_set(sink, ctypes.c_void_p(0))
    llama_cpp.llama_backend_init()
    params = llama_cpp.llama_model_quantize_default_params()
    # Set by name: the struct gained and reordered fields across llama-cpp-python 0.3.x.
    for field, value in (("ftype", ftype), ("nthread", nthread)):
        if hasattr(params, field):
            setattr(params, field, value)
    try:
        status = int(llama_cpp.llama_model_quantize(src.encode(), dst.encode(), ctypes.byref(params)))
    except Exception as err:  # reported to the parent as one line
        conn.send((-1, f"{type(err).__name__}: {err}"))
        return
    tail = " ".join("".join(lines).split())[-300:]
    conn.send((status, tail))


def quantize(src: Path, dst: Path, quant: str, f16_bytes: int, reporter: Reporter,
             threads: int | None = None) -> None:
    """Write ``src`` (an F16 GGUF) quantized to ``quant`` at ``dst``; removes ``dst`` on failure.

    Raises ConvertCancelled when the reporter's cancel event is set (the child is killed) and
    ConvertError when llama.cpp fails.
    """
    ftype = QUANTS[quant][0]
    threads = threads or max(1, os.cpu_count() or 1)
    expected = expected_size(f16_bytes, quant)
    reporter.stage("quantize", expected, f"Quantizing to {quant} with llama.cpp")
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(str(src), str(dst), ftype, threads, child),
                       name="llama-desk-quantize", daemon=True)
    ok = False
    try:
        proc.start()
        child.close()
        result: tuple[int, str] | None = None
        while result is None:
            if reporter.cancel.is_set():
                raise ConvertCancelled("cancelled")
            if parent.poll(0.2):
                with contextlib.suppress(EOFError):
                    result = parent.recv()
                if result is None:
                    break
            elif not proc.is_alive() and not parent.poll(0):
                break
            with contextlib.suppress(OSError):
                reporter.update(min(dst.stat().st_size, expected))
        proc.join(30)
        if result is None:
            raise ConvertError(f"llama.cpp's quantizer stopped unexpectedly (exit code "
                               f"{proc.exitcode}) while writing {dst.name}; not enough memory?")
        status, tail = result
        if status != 0:
            raise ConvertError(f"llama.cpp could not quantize {src.name} to {quant} "
                               f"(status {status}): {tail or 'no details'}")
        size = dst.stat().st_size
        reporter.total = max(reporter.total, size)  # the size ratios are 7B figures
        reporter.update(size)
        ok = True
    finally:
        if proc.is_alive():
            proc.kill()
            proc.join(10)
        parent.close()
        if not ok:
            with contextlib.suppress(FileNotFoundError):
                dst.unlink()
