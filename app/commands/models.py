"""`llama-desk models`: catalogue with fit verdicts, installed models, import, remove, Hub files."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from app.commands.argtypes import context_size
from app.errors import UserError
from app.terminal import clean


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
    imp = actions.add_parser("import", help="add a local .gguf (validated, used in place)")
    imp.add_argument("path")
    imp.add_argument("--name", help="display name (default: the file name)")
    rem = actions.add_parser("remove", help="remove an installed model (deletes downloads only)")
    rem.add_argument("name")
    files = actions.add_parser("files", help="list a Hub repo's .gguf files with verdicts (network)")
    files.add_argument("repo")
    parser.set_defaults(func=run)


def _size(n: int | None, exact: bool = True) -> str:
    if not n:
        return "?"
    return f"{n / 1e9:6.2f} GB" + ("" if exact else "~")


def _print_files(files: list[Any], ctx: int, hw: Any, installed_names: set[str]) -> None:
    from app.hub import catalogue

    for f in files:
        plan = catalogue.plan_for(f, ctx, hw)
        verdict = plan.short if plan else "?"
        mark = "*" if f.quantization == catalogue.DEFAULT_QUANT else " "
        have = "  [installed]" if f.filename in installed_names else ""
        parts = f"  ({len(f.parts)} parts, joined)" if f.parts else ""
        print(f"    {f.quantization:<7}{mark} {_size(f.size_bytes, f.exact):>10}  "
              f"{verdict:<24} {clean(f.filename, one_line=True)}{parts}{have}")


def _list(args: argparse.Namespace) -> int:
    from app import hardware
    from app.hub import catalogue, installed, load_failures
    from app.planner import plan

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
    print("\nInstalled:")
    for m in models:
        failed = load_failures.failure(m.path) if m.exists else None
        if not m.exists:
            verdict = "file missing"
        elif failed:
            verdict = f"failed to load last time: {failed}"
        else:
            try:
                verdict = plan(installed.shape_of(m), args.ctx, hw).short
            except UserError as err:
                verdict = f"invalid: {err}"
        print(f"  {clean(m.name, one_line=True):<36} {_size(m.size_bytes):>10}  "
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
        model = installed.import_model(args.path, args.name)
        print(f"Imported {clean(model.name, one_line=True)!r} ({model.quantization}, "
              f"{_size(model.size_bytes).strip()}) from {clean(str(model.path), one_line=True)}; "
              "the file stays where it is.")
        return 0
    if action == "remove":
        model = installed.remove_model(args.name)
        what = "deleted" if model.source == "hub" else "forgotten (the file was left in place)"
        print(f"Removed {clean(model.name, one_line=True)!r}: "
              f"{clean(str(model.path), one_line=True)} {what}.")
        return 0
    from app import hardware
    from app.hub import catalogue, token_store

    files = catalogue.refresh(args.repo, token_store.get_token())
    if not files:
        print(f"{args.repo} has no .gguf files.")
        return 0
    print(f"{args.repo}: download one with `llama-desk download {args.repo} FILE`")
    _print_files(files, args.ctx, hardware.detect(), {m.path.name for m in installed.list_installed()})
    return 0
