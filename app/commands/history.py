"""`llama-desk history`: list, show, search, export, import, rename, pin, trash, restore, repair.

Titles, messages, model names and snippets are user and model data: each is passed through
``app.terminal.clean`` before it reaches the terminal, so none can send control sequences.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.commands.argtypes import positive
from app.store.models import heading_parts
from app.terminal import clean

if TYPE_CHECKING:
    from app.store import Conversation, Store, StoredMessage



def register(sub: Any) -> None:
    parser = sub.add_parser(
        "history", help="list, search, export and manage stored conversations",
        description="Stored conversations: list, show, search, export, import, rename, trash.",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    p = actions.add_parser("list", help="conversations, pinned first, then most recent")
    p.set_defaults(func=run_list)
    p = actions.add_parser("show", help="a conversation along its current branch")
    p.add_argument("id", type=int)
    p.set_defaults(func=run_show)
    p = actions.add_parser("search", help="full-text search over all messages")
    p.add_argument("text", nargs="+")
    p.add_argument("--limit", type=positive, default=20, help="at most this many matches")
    p.set_defaults(func=run_search)
    p = actions.add_parser("export", help="write conversations to Markdown or JSON")
    p.add_argument("ids", type=int, nargs="*", metavar="ID")
    p.add_argument("--all", action="store_true", help="every conversation (not the trash)")
    p.add_argument("--format", choices=("md", "json"), default=None,
                   help="default: from the output file's extension, else md")
    p.add_argument("-o", "--output", required=True, help="output file, or - for stdout")
    p.set_defaults(func=run_export)
    p = actions.add_parser("import", help="import conversations from a JSON export")
    p.add_argument("file", type=Path)
    p.set_defaults(func=run_import)
    p = actions.add_parser("rename", help="rename a conversation")
    p.add_argument("id", type=int)
    p.add_argument("title", nargs="+")
    p.set_defaults(func=run_rename)
    for name, pinned in (("pin", True), ("unpin", False)):
        p = actions.add_parser(name, help=f"{name} a conversation")
        p.add_argument("id", type=int)
        p.set_defaults(func=run_pin, pinned=pinned)
    p = actions.add_parser("delete", help="move a conversation to the trash")
    p.add_argument("id", type=int)
    p.set_defaults(func=run_delete)
    p = actions.add_parser("restore", help="bring a conversation back from the trash")
    p.add_argument("id", type=int)
    p.set_defaults(func=run_restore)
    p = actions.add_parser("trash", help="list the trash")
    p.set_defaults(func=run_trash)
    p = actions.add_parser("empty-trash", help="delete everything in the trash for good")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p.set_defaults(func=run_empty_trash)
    p = actions.add_parser(
        "repair", help="save every readable conversation of a damaged database into a fresh one",
        description="Check the conversations database; if SQLite finds it damaged, keep it "
        "aside, copy every readable conversation and message (same ids) into a fresh database "
        "that passes SQLite's integrity check, and report what was saved and what was lost.")
    p.add_argument("--force", action="store_true", help="rebuild even a healthy database")
    p.set_defaults(func=run_repair)


_MARKS = ("\ue000", "\ue001")


def _open() -> Store:
    from app.store import Store

    return Store.open()


def _when(seconds: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(seconds))


def _table(conversations: list[Conversation], empty: str, trash: bool = False) -> None:
    if not conversations:
        print(empty)
        return
    label = "TRASHED" if trash else "UPDATED"
    print(f"{'ID':>6}  {'':1}  {label:<16}  {'MSGS':>5}  TITLE")
    for conv in conversations:
        stamp = conv.trashed_at if trash and conv.trashed_at else conv.updated_at
        pin = "*" if conv.pinned else " "
        print(f"{conv.id:>6}  {pin}  {_when(stamp):<16}  {conv.message_count:>5}  "
              f"{clean(conv.display_title, one_line=True)}")


def run_list(args: argparse.Namespace) -> int:
    with _open() as store:
        _table(store.list_conversations(counts=True), "No conversations yet.")
    return 0


def run_trash(args: argparse.Namespace) -> int:
    with _open() as store:
        _table(store.list_trash(counts=True), "The trash is empty.", trash=True)
    return 0


def _message_header(msg: StoredMessage) -> str:
    parts = [clean(p, one_line=True) for p in heading_parts(msg, _when, state="({})")]
    return f"── {' · '.join(parts)} (#{msg.id})"


def run_show(args: argparse.Namespace) -> int:
    with _open() as store:
        conv = store.get_conversation(args.id)
        branch = store.current_branch(conv.id)
    print(f"{clean(conv.display_title, one_line=True)}  (#{conv.id}"
          f"{', pinned' if conv.pinned else ''}"
          f"{', in the trash' if conv.trashed_at is not None else ''})")
    print(f"created {_when(conv.created_at)}, updated {_when(conv.updated_at)}"
          + (f", model {clean(conv.model, one_line=True)}" if conv.model else ""))
    if conv.system_prompt:
        print(f"system prompt: {clean(conv.system_prompt)}")
    for msg in branch:
        print()
        print(_message_header(msg))
        print(clean(msg.content))
        if msg.state == "error" and msg.error:
            print(f"error: {clean(msg.error)}")
    if not branch:
        print("\n(no messages)")
    return 0


def run_search(args: argparse.Namespace) -> int:
    with _open() as store:
        # Private-use marks survive clean(); only then do they become the terminal's bold.
        hits = store.search(" ".join(args.text), limit=args.limit, marks=_MARKS)
    bold = ("\x1b[1m", "\x1b[0m") if sys.stdout.isatty() else ("[", "]")
    if not hits:
        print("No matches.")
        return 0
    for hit in hits:
        title = clean(hit.conversation_title or "New conversation", one_line=True)
        snippet = clean(" ".join(hit.snippet.split()), one_line=True)
        snippet = snippet.replace(_MARKS[0], bold[0]).replace(_MARKS[1], bold[1])
        print(f"#{hit.conversation_id} {title} · {hit.role} · {_when(hit.created_at)}")
        print(f"    {snippet}")
    return 0


def run_export(args: argparse.Namespace) -> int:
    from app.errors import UserError
    from app.store.exchange import write_text_file

    if args.all == bool(args.ids):
        raise UserError("Give conversation ids to export, or --all (not both).")
    fmt = args.format or ("json" if args.output.lower().endswith(".json") else "md")
    ids = None if args.all else args.ids
    with _open() as store:
        text = store.export_json_text(ids) if fmt == "json" else store.export_markdown(ids)
        count = len(store.list_conversations()) if args.all else len(args.ids)
    if args.output == "-":
        sys.stdout.write(clean(text) if sys.stdout.isatty() else text)  # a pipe gets it exact
    else:
        write_text_file(Path(args.output), text)
        print(f"Exported {count} conversation{'s' if count != 1 else ''} to {args.output}.")
    return 0


def run_import(args: argparse.Namespace) -> int:
    from app.store.exchange import load_json_file

    data = load_json_file(args.file)
    with _open() as store:
        ids = store.import_json(data)
    print(f"Imported {len(ids)} conversation{'s' if len(ids) != 1 else ''}"
          + (f" (ids {', '.join(map(str, ids))})." if ids else "."))
    return 0


def _change(args: argparse.Namespace, change: Callable[[Store], Conversation],
            said: Callable[[Conversation, str], str]) -> int:
    """Apply one change to a conversation and say what was done (its title made safe to print)."""
    with _open() as store:
        conv = change(store)
    print(said(conv, clean(conv.display_title, one_line=True)))
    return 0


def run_rename(args: argparse.Namespace) -> int:
    return _change(args, lambda s: s.rename(args.id, " ".join(args.title)),
                   lambda c, title: f"Renamed #{c.id} to {title!r}.")


def run_pin(args: argparse.Namespace) -> int:
    return _change(args, lambda s: s.set_pinned(args.id, args.pinned),
                   lambda c, title: f"{'Pinned' if c.pinned else 'Unpinned'} #{c.id} {title}.")


def run_delete(args: argparse.Namespace) -> int:
    return _change(args, lambda s: s.trash(args.id),
                   lambda c, title: f"Moved #{c.id} {title} to the trash "
                                    f"(undo: llama-desk history restore {c.id}).")


def run_restore(args: argparse.Namespace) -> int:
    return _change(args, lambda s: s.restore(args.id), lambda c, title: f"Restored #{c.id} {title}.")


def run_empty_trash(args: argparse.Namespace) -> int:
    from app.errors import UserError

    with _open() as store:
        waiting = len(store.list_trash())
        if not waiting:
            print("The trash is empty.")
            return 0
        if not args.yes:
            if not sys.stdin.isatty():
                raise UserError("Add --yes to delete the trash for good without a prompt.")
            answer = input(f"Delete {waiting} conversation(s) for good? [y/N] ")
            if answer.strip().lower() not in ("y", "yes"):
                print("Nothing deleted.")
                return 0
        count = store.empty_trash()
    print(f"Deleted {count} conversation{'s' if count != 1 else ''} for good.")
    return 0


def run_repair(args: argparse.Namespace) -> int:
    from app import paths
    from app.store.repair import repair

    report = repair(paths.database_path(), force=args.force)
    for line in report.summary():
        print(line)
    return 0
