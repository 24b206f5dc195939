"""Damage a database the way a failing disk does: one page of a table overwritten with noise."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from app.engine.types import GenerationResult
from app.store import Store


def fill(path: Path, conversations: int = 60, turns: int = 5) -> None:
    """Conversations with long messages, so the messages table spans many pages."""
    with Store.open(path) as store:
        for i in range(conversations):
            conv = store.create_conversation(title=f"conversation {i}")
            for j in range(turns):
                user = store.add_user_message(conv.id, f"question {i}.{j} " + "walrus " * 60)
                reply = store.start_assistant(conv.id, user.id, "Tiny", "/m/tiny.gguf")
                store.reply_writer(reply.id).finish(
                    GenerationResult(text=f"answer {i}.{j} " + "tusks " * 80))


def damage_page(path: Path, table: str = "messages", which: float = 0.5) -> int:
    """Overwrite one leaf page of ``table`` (by position, 0..1) with random bytes; its number."""
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        size = conn.execute("PRAGMA page_size").fetchone()[0]
        pages = [r[0] for r in conn.execute(
            "SELECT pageno FROM dbstat WHERE name = ? AND pagetype = 'leaf' ORDER BY pageno",
            (table,))]
    finally:
        conn.close()
    page = pages[min(len(pages) - 1, int(len(pages) * which))]
    with path.open("r+b") as fh:
        fh.seek((page - 1) * size)
        fh.write(os.urandom(size))
    return page
