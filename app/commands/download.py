"""`llama-desk download REPO [FILE | --quant Q]` (a resumable, verified Hub download with
progress) and `llama-desk download --meta-url [URL] --model M` (Meta's own route)."""

from __future__ import annotations

import argparse
import re
import sys
from typing import Any

from app.commands.progress import CONVERT_STOPPED, ProgressLines, installed_line, run_job
from app.errors import UserError

REPO_RE = re.compile(r"^[\w.\-]+/[\w.\-]+$")


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "download", help="download a GGUF from the Hugging Face Hub (resumable, verified)",
        description="Download a model file; an interrupted download resumes where it stopped "
        "when the same command runs again. Gated repos need `llama-desk token set`.",
    )
    parser.add_argument("repo", nargs="?", help="Hub repo id, e.g. TheBloke/Llama-2-7B-Chat-GGUF")
    parser.add_argument("file", nargs="?", help="file name in the repo (default: --quant)")
    parser.add_argument("--quant", help="pick the file by quantization (default Q4_K_M); for "
                        "official weights, the quantization to convert to (F16, Q8_0, Q6_K, "
                        "Q5_K_M, Q5_K_S, Q5_0, Q4_K_M, Q4_K_S, Q4_0, Q3_K_M, Q2_K)")
    parser.add_argument("--revision", default="main", help="branch, tag or commit")
    parser.add_argument("--keep-source", action="store_true",
                        help="official weights: keep the downloaded checkpoint and the F16 file")
    meta = parser.add_argument_group(
        "Meta's own download route (the link from Meta's e-mail, as download.sh uses it)")
    meta.add_argument("--meta-url", nargs="?", const="", metavar="URL",
                      help="the signed link; give --meta-url without a value to paste it hidden "
                      "(a link on the command line stays in your shell history)")
    meta.add_argument("--model", help="llama-2-7b-chat, llama-2-13b-chat, llama-2-70b-chat, "
                      "llama-2-7b, llama-2-13b or llama-2-70b (or download.sh's 7B-chat, ...)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from app.hub import catalogue, token_store
    from app.hub.errors import NotFoundError
    from app.hub.fetch import filename_for_quant
    from app.hub.manager import DownloadManager

    if args.meta_url is not None or args.model:
        if args.repo or args.file:
            raise UserError("Give either a Hub REPO or --meta-url/--model (Meta's route), "
                            "not both.")
        from app.commands.meta_download import run_meta

        return run_meta(args)
    if not args.repo:
        raise UserError("Name a Hub repo (e.g. TheBloke/Llama-2-7B-Chat-GGUF), or use Meta's "
                        "route: --meta-url --model llama-2-7b-chat.")
    repo = args.repo.strip()
    if "://" in repo:  # never echoed: it may be Meta's signed link
        raise UserError("That is a link, not a Hub repo id: for the link in Meta's e-mail use "
                        "`llama-desk download --meta-url --model llama-2-7b-chat` (it asks for "
                        "the link, hidden).")
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
    bar = ProgressLines(sys.stderr)
    manager = DownloadManager(token=lambda: token, on_update=bar.update)
    job = manager.add(repo, filename, revision=args.revision)
    return run_job(manager, job, bar, resumable=True, what="Download",
                   stopped="Paused; run the same command again to resume.",
                   done=lambda snap: f"Downloaded and verified {snap.path}")


def _convert(repo: str, args: argparse.Namespace) -> int:
    """Official weights: download the checkpoint, convert, quantize, verify, register."""
    from app.convert.quantize import DEFAULT_QUANT, parse_quant
    from app.hub.convert_jobs import ConvertManager
    from app.hub.official import describe_official

    quant = parse_quant(args.quant or DEFAULT_QUANT)
    for line in describe_official(repo, quant):
        print(line, file=sys.stderr)
    bar = ProgressLines(sys.stderr)
    manager = ConvertManager(on_update=bar.update)
    job = manager.add_repo(repo, quant, keep_source=args.keep_source, revision=args.revision)
    return run_job(manager, job, bar, resumable=True, stopped=CONVERT_STOPPED, done=installed_line)
