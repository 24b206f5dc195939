"""`llama-desk download --meta-url [URL] --model M`: Meta's route, as download.sh, then convert."""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from app.commands.progress import ProgressLines, run_job
from app.errors import UserError

PROMPT = "Paste the download link from Meta's e-mail (input hidden): "


def read_link(given: str) -> Any:
    """The checked link: from --meta-url, else asked for (hidden on a terminal, a line of stdin
    otherwise). Nothing here ever prints it."""
    from app.hub.meta_link import MetaLink

    text = given
    if not text:
        if sys.stdin is not None and sys.stdin.isatty():
            text = getpass.getpass(PROMPT)
        else:
            text = sys.stdin.readline() if sys.stdin is not None else ""
    if not text.strip():
        raise UserError("No link given: paste the URL from Meta's e-mail when asked, or pass it "
                        "with --meta-url URL.")
    return MetaLink.parse(text)


def describe(model: Any, quant: str, verdict: str | None) -> str:
    from app.units import format_estimate, format_size

    fit = f"; {verdict}" if verdict else ""
    return (f"{model.title} ({model.model_id}): ~{format_size(model.source_bytes)} download in "
            f"{model.shards} file{'s' if model.shards > 1 else ''} + the tokenizer, "
            f"~{format_size(model.result_bytes(quant))} as {quant}{fit}; needs "
            f"~{format_size(model.disk_bytes(quant))} of disk at the peak, then "
            f"{format_estimate(model.convert_seconds(quant))} to convert here.")


def choices(quant: str, models: list[Any] | None = None) -> list[str]:
    """A line per model (default: all download.sh offers): sizes and this machine's verdict."""
    from app.engine import hardware
    from app.hub.meta_catalogue import meta_models, meta_verdicts

    verdicts = meta_verdicts(quant, 4096, hardware.detect())
    return [describe(m, quant, verdicts.get(m.model_id)) for m in models or meta_models()]


def run_meta(args: argparse.Namespace) -> int:
    from app.convert.quantize import DEFAULT_QUANT, parse_quant
    from app.hub.convert_jobs import ConvertManager
    from app.hub.meta_catalogue import find_meta_model
    from app.hub.meta_install import expired_message

    quant = parse_quant(args.quant or DEFAULT_QUANT)
    if not args.model:
        for line in choices(quant):
            print(f"  {line}", file=sys.stderr)
        raise UserError("Choose the model with --model (one of those above), e.g. "
                        "--model llama-2-7b-chat.")
    model = find_meta_model(args.model)
    if args.meta_url:
        print("Note: a link typed on the command line stays in your shell history; give "
              "--meta-url without a value to paste it hidden.", file=sys.stderr)
    link = read_link(args.meta_url or "")
    if link.expired():
        raise UserError(expired_message(link, model))
    print(f"Link: {link.shown}.", file=sys.stderr)
    print(choices(quant, [model])[0], file=sys.stderr)
    bar = ProgressLines(sys.stderr)
    manager = ConvertManager(on_update=bar.update)
    job = manager.add_meta(link, model, quant, keep_source=args.keep_source)
    stopped = ("Paused; nothing was installed. Run the same command again to resume: the files "
               "downloaded so far are kept (once the link expires, use a new one from Meta).")
    return run_job(manager, job, bar, resumable=True, stopped=stopped, done=_done)


def _done(snap: Any) -> str:
    if snap.licence_text:
        print(snap.licence_text + "\n")
    if snap.licence:
        kept = " and ".join(str(p) for p in snap.licence)
        print(f"Llama 2's licence and acceptable use policy are kept beside the model: {kept}.")
    return f"Installed {snap.name!r}: {snap.path}"
