"""`llama-desk models`: catalogue with fit verdicts, installed models, import, remove, Hub files."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from app.commands.argtypes import context_size
from app.errors import UserError
from app.terminal import clean
from app.units import format_size


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "models", help="catalogue, installed models and whether each fits this machine",
        description="Without an action: the Llama-2-chat catalogue and installed models with a "
        "fit verdict for this machine. Works offline; --refresh asks the Hub for exact sizes.",
    )
    parser.add_argument("--refresh", action="store_true",
                        help="fetch exact sizes and sha256 from the Hub (network)")
    parser.add_argument("--ctx", type=context_size, default=4096,
                        help="context size to plan for (256 to 1,048,576)")
    actions = parser.add_subparsers(dest="models_action", metavar="ACTION")
    imp = actions.add_parser(
        "import", help="add a local .gguf (validated, used in place), or convert a checkpoint "
        "folder (Hugging Face or Meta's download.sh layout) into the models folder")
    imp.add_argument("path")
    imp.add_argument("--name", help="display name (default: the file name)")
    imp.add_argument("--quant", help="checkpoint folders: the quantization to convert to "
                     "(default Q4_K_M; F16, Q8_0, Q6_K, Q5_K_M, Q5_K_S, Q5_0, Q4_K_M, Q4_K_S, "
                     "Q4_0, Q3_K_M, Q2_K)")
    rem = actions.add_parser("remove", help="remove an installed model (deletes downloads only)")
    rem.add_argument("name")
    files = actions.add_parser("files", help="list a Hub repo's .gguf files with verdicts (network)")
    files.add_argument("repo")
    parser.set_defaults(func=run)


def _print_files(files: list[Any], ctx: int, hw: Any, installed_names: set[str]) -> None:
    from app.hub import catalogue

    for f in files:
        plan = catalogue.plan_for(f, ctx, hw)
        verdict = plan.short if plan else "?"
        mark = "*" if f.quantization == catalogue.DEFAULT_QUANT else " "
        have = "  [installed]" if f.filename in installed_names else ""
        parts = f"  ({len(f.parts)} parts, joined)" if f.parts else ""
        size = format_size(f.size_bytes) + ("" if f.exact else "~")
        print(f"    {f.quantization:<7}{mark} {size:>10}  {verdict:<24} "
              f"{clean(f.filename, one_line=True)}{parts}{have}")


def _list(args: argparse.Namespace) -> int:
    from app.engine import hardware
    from app.engine.planner import plan, shape_of_file
    from app.hub import catalogue, installed, load_failures

    hw = hardware.detect()
    if args.refresh:
        from app.hub import token_store
        from app.hub.errors import HubError

        token = token_store.get_token()
        for model in catalogue.builtin_models():
            try:
                catalogue.refresh(model.repo_id, token)
            except HubError as err:
                print(f"warning: {model.repo_id}: {err}", file=sys.stderr)
    models = installed.list_installed()
    names = {m.path.name for m in models}
    print(f"This machine: {hw.describe()}")
    print(f"Verdicts for a {args.ctx:,}-token context "
          "(* default quantization; ~ size from the model card until --refresh).")
    for model in catalogue.catalogue():
        print(f"\n  {clean(model.title, one_line=True)} - {clean(model.repo_id, one_line=True)}")
        _print_files(list(model.files), args.ctx, hw, names)
    _print_official()
    print("\nInstalled:")
    for m in models:
        failed = load_failures.failure(m.path) if m.exists else None
        if not m.exists:
            verdict = "file missing"
        elif failed:
            verdict = f"failed to load last time: {failed}"
        else:
            try:
                verdict = plan(shape_of_file(m.path), args.ctx, hw).short
            except UserError as err:
                verdict = f"invalid: {err}"
        print(f"  {clean(m.name, one_line=True):<36} {format_size(m.size_bytes):>10}  "
              f"{clean(m.quantization, one_line=True):<7} {clean(m.origin, one_line=True):<32} "
              f"{clean(verdict, one_line=True)}")
        print(f"      {clean(str(m.path), one_line=True)}")
    return 0


def run(args: argparse.Namespace) -> int:
    from app.hub import installed

    action = args.models_action
    if action is None:
        return _list(args)
    if action == "import":
        from pathlib import Path

        if Path(args.path).expanduser().is_dir():
            return _convert_folder(args)
        if args.quant:
            raise UserError("--quant applies to checkpoint folders; a .gguf file is imported as "
                            "it is.")
        model = installed.import_model(args.path, args.name)
        print(f"Imported {clean(model.name, one_line=True)!r} ({model.quantization}, "
              f"{format_size(model.size_bytes)}) from {clean(str(model.path), one_line=True)}; "
              "the file stays where it is.")
        return 0
    if action == "remove":
        model = installed.remove_model(args.name)
        what = "deleted" if model.owns_file else "forgotten (the file was left in place)"
        print(f"Removed {clean(model.name, one_line=True)!r}: "
              f"{clean(str(model.path), one_line=True)} {what}.")
        return 0
    from app.engine import hardware
    from app.hub import catalogue, token_store

    files = catalogue.refresh(args.repo, token_store.get_token())
    if not files:
        print(f"{args.repo} has no .gguf files.")
        return 0
    print(f"{args.repo}: download one with `llama-desk download {args.repo} FILE`")
    _print_files(files, args.ctx, hardware.detect(), {m.path.name for m in installed.list_installed()})
    return 0


def _convert_folder(args: argparse.Namespace) -> int:
    """A Hugging Face or Meta checkpoint folder -> a GGUF in the models folder (folder untouched)."""
    from app.commands.progress import ProgressLines, installed_line, run_job
    from app.convert.layout import find_checkpoint
    from app.convert.quantize import DEFAULT_QUANT, parse_quant
    from app.hub.convert_jobs import ConvertManager

    quant = parse_quant(args.quant or DEFAULT_QUANT)
    ckpt = find_checkpoint(args.path)  # a clear line before any work starts
    bar = ProgressLines(sys.stderr)
    manager = ConvertManager(token=lambda: None, on_update=bar.update)
    job = manager.add_folder(ckpt.folder, quant, name=args.name)
    return run_job(manager, job, bar, resumable=False, done=installed_line,
                   stopped="Stopped; nothing was installed.")


def _print_official() -> None:
    """The gated meta-llama repos, converted to GGUF on this machine after download."""
    from app.hub import catalogue
    from app.hub.official import describe_official
    from app.units import format_size

    print("\n  Official Meta weights (downloaded, then converted and quantized here; "
          "`llama-desk download REPO --quant Q`):")
    for m in catalogue.official_models():
        print(f"    {m.title}: {catalogue.OFFICIAL_NOTE} - {m.repo_id}")
        print(f"      {m.page}  ~{format_size(m.source_bytes)} download, "
              f"~{format_size(m.result_bytes(catalogue.DEFAULT_QUANT))} as {catalogue.DEFAULT_QUANT}")
    print("    " + describe_official("", catalogue.DEFAULT_QUANT)[-1])
