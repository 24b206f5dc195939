"""A checkpoint folder to a verified GGUF: md5 check, F16 write, quantize, verify, move into place."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from app.convert import model
from app.convert.errors import ConvertError
from app.convert.gguf_out import write_f16
from app.convert.layout import Checkpoint, read_checklist
from app.convert.progress import Reporter
from app.convert.quantize import expected_size, quantize
from app.convert.vocab import load_vocab
from app.units import format_size

if TYPE_CHECKING:
    from app.engine.modelfile import ModelFileInfo

DISK_MARGIN = 64 * 1024 * 1024
MD5_BLOCK = 8 * 1024 * 1024


def check_disk(directory: Path, needs: Sequence[tuple[str, int]], what: str) -> None:
    """ConvertError spelling out each need and the free space when ``directory`` is too full."""
    directory.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(directory).free
    total = sum(n for _label, n in needs)
    if total + DISK_MARGIN > free:
        parts = " + ".join(f"{format_size(n)} {label}" for label, n in needs if n)
        raise ConvertError(f"Not enough disk space to {what}: needs {parts} = "
                           f"{format_size(total)}, only {format_size(free)} free in {directory}; "
                           "free some space and try again.")


def result_bytes(f16_bytes: int, quant: str) -> int:
    return expected_size(f16_bytes, quant)


def verify_checksums(ckpt: Checkpoint, reporter: Reporter) -> int:
    """Check Meta's checklist.chk / tokenizer_checklist.chk md5 sums, as download.sh does.

    Returns how many files were checked; ConvertError names the first file that differs.
    """
    jobs: list[tuple[Path, str, Path]] = []
    for checklist in ckpt.checklists:
        for name, digest in read_checklist(checklist).items():
            path = checklist.parent / name
            if path.is_file():
                jobs.append((path, digest, checklist))
    if not jobs:
        return 0
    reporter.stage("check", sum(p.stat().st_size for p, _d, _c in jobs),
                   f"Checking md5 sums of {len(jobs)} files")
    for path, digest, checklist in jobs:
        md5 = hashlib.md5(usedforsecurity=False)
        with path.open("rb") as fh:
            while block := fh.read(MD5_BLOCK):
                md5.update(block)
                reporter.advance(len(block))
                reporter.check()
        if md5.hexdigest() != digest:
            raise ConvertError(f"{path} does not match {checklist.name} (md5 {md5.hexdigest()[:12]}… "
                               f"instead of {digest[:12]}…): the file is damaged; download it again.")
    return len(jobs)


def verify_result(path: Path, plan: model.Plan, quant: str) -> ModelFileInfo:
    """Read the new file back with the engine's own checks and compare it with the plan."""
    from app.engine.modelfile import check_model_file

    info = check_model_file(path)
    hp = plan.hparams
    got = (info.architecture, info.n_layers, info.n_embd, info.n_head, info.n_head_kv, info.n_vocab,
           info.file_type)
    want = ("llama", hp.n_layer, hp.n_embd, hp.n_head, hp.n_head_kv, hp.n_vocab, quant)
    if got != want:
        raise ConvertError(f"The converted file {path.name} does not check out ({got} instead of "
                           f"{want}); it was not installed.")
    return info


def convert(ckpt: Checkpoint, out: Path, quant: str, *, name: str, reporter: Reporter,
            work_dir: Path | None = None, keep_intermediate: bool = False,
            unpermute: bool = True, verify_md5: bool = True) -> ModelFileInfo:
    """Convert ``ckpt`` to ``out`` (a GGUF in ``quant``); nothing is left behind on failure.

    The F16 intermediate goes to ``work_dir`` (default: beside ``out``) and is deleted at the
    end unless ``keep_intermediate``. ``out`` only appears once the result has been verified.
    ``verify_md5=False`` skips the checklist pass for files md5-checked as they downloaded.
    """
    plan = model.plan(ckpt)
    vocab = load_vocab(ckpt.tokenizer, ckpt.tokenizer_config, plan.hparams.n_vocab)
    work_dir = work_dir or out.parent
    f16 = plan.f16_bytes
    if quant == "F16":
        check_disk(out.parent, [("for the F16 result", f16)], f"convert {ckpt.folder.name}")
    else:
        check_disk(out.parent, [("for the F16 intermediate", f16),
                                (f"for the {quant} result", result_bytes(f16, quant))],
                   f"convert {ckpt.folder.name} to {quant}")
    if verify_md5:
        verify_checksums(ckpt, reporter)
    part = out.with_name(out.name + ".part")
    f16_part = part if quant == "F16" else work_dir / f"{out.stem}.F16.gguf.part"
    try:
        write_f16(plan, vocab, f16_part, name, reporter, unpermute=unpermute)
        if quant != "F16":
            quantize(f16_part, part, quant, f16, reporter)
        reporter.stage("verify", 0, f"Checking {out.name}")
        info = verify_result(part, plan, quant)
        os.replace(part, out)
        if quant != "F16" and keep_intermediate:
            os.replace(f16_part, work_dir / f"{out.stem}.F16.gguf")
    finally:
        for leftover in (part, f16_part):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()
    return replace(info, path=out.resolve())
