"""`history repair`: keep a damaged database aside and salvage every readable row into a fresh one.

Rows are read by rowid ranges straight from each table's b-tree (no index is trusted); a range
that SQLite cannot read is split in halves down to single rows, so one damaged page costs only
the rows on it. The fresh database gets the same conversation and message ids, its search
index is rebuilt from the saved text, and it must pass ``PRAGMA integrity_check`` before it
takes the damaged file's place. The damaged file (with its -wal) is never deleted.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.store.base import marker_path
from app.store.models import CONVERSATION_FIELDS, MESSAGE_FIELDS, MESSAGE_STATES, StoreError

log = logging.getLogger(__name__)

CHUNK = 512  # rows per range read
PROBES = 100_000  # reads one table may cost; past it a failing range is counted lost whole
ROLES = ("system", "user", "assistant")


@dataclass
class RepairReport:
    """What ``repair`` found, saved and could not read."""

    path: Path
    healthy: bool = False
    aside: Path | None = None
    conversations: int = 0
    messages: int = 0
    lost_conversations: int = 0  # conversation rows that could not be read
    lost_messages: int = 0  # message rows that could not be read
    exact: bool = True  # lost_* counted from an intact index (else an upper estimate)
    recovered_conversations: int = 0  # readable messages whose conversation row was lost
    reattached: int = 0  # messages whose parent was lost, kept as the start of a branch
    integrity: str = ""

    def summary(self) -> list[str]:
        """What the repair saved and lost, as every face says it (one sentence a line)."""
        if self.healthy:
            return [f"The conversations database {self.path} is healthy (SQLite integrity "
                    "check: ok); nothing to repair."]
        plural = "s" if self.conversations != 1 else ""
        lines = [f"Saved {self.conversations:,} conversation{plural} and {self.messages:,} "
                 f"messages into a fresh database (SQLite integrity check: {self.integrity})."]
        if self.lost_messages + self.lost_conversations:
            about = "" if self.exact else "at most "
            lines.append(f"Could not read {about}{self.lost_messages:,} message(s) and "
                         f"{about}{self.lost_conversations:,} conversation record(s): those are "
                         "lost.")
        else:
            lines.append("Nothing was lost.")
        if self.recovered_conversations:
            lines.append(f"{self.recovered_conversations:,} conversation(s) lost their title and "
                         "settings; their messages are kept as \"Recovered conversation #ID\".")
        if self.reattached:
            lines.append(f"{self.reattached:,} message(s) lost the message before them; each now "
                         "starts a branch of its conversation.")
        lines.append(f"The damaged file is kept as {self.aside}.")
        return lines


def _connect_damaged(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    conn.text_factory = lambda raw: raw.decode("utf-8", "replace")
    return conn


def _try(conn: sqlite3.Connection, sql: str, params: Iterable[Any] = ()) -> list[Any] | None:
    try:
        return conn.execute(sql, tuple(params)).fetchall()
    except sqlite3.DatabaseError:
        return None


def _columns(conn: sqlite3.Connection, table: str, wanted: tuple[str, ...]) -> list[str]:
    rows = _try(conn, f"PRAGMA table_info({table})")
    have = {row[1] for row in rows} if rows else set(wanted)
    return [c for c in wanted if c in have]


def _existing_ids(conn: sqlite3.Connection, table: str, index: str | None) -> set[int] | None:
    """Every rowid in ``table`` as an intact index lists them (None when no index can say)."""
    if index is None:
        return None
    rows = _try(conn, f"SELECT rowid FROM {table} INDEXED BY {index}")
    return None if rows is None else {row[0] for row in rows}


def _upper_bound(conn: sqlite3.Connection, table: str, known: set[int] | None,
                 file_bytes: int) -> int:
    candidates = [max(known)] if known else []
    for sql, params in ((f"SELECT max(rowid) FROM {table}", ()),
                        ("SELECT seq FROM sqlite_sequence WHERE name = ?", (table,))):
        rows = _try(conn, sql, params)
        if rows and rows[0][0] is not None:
            candidates.append(int(rows[0][0]))
    # Nothing says how far the ids go: no row takes less than about 8 bytes of the file.
    return max(candidates) if candidates else max(1, file_bytes // 8)


def _salvage(conn: sqlite3.Connection, table: str, columns: list[str], upper: int
             ) -> tuple[dict[int, dict[str, Any]], set[int]]:
    """Readable rows by rowid, and the rowids whose reading failed."""
    rows: dict[int, dict[str, Any]] = {}
    failed: set[int] = set()
    select = f"SELECT rowid, {', '.join(columns)} FROM {table} WHERE rowid BETWEEN ? AND ?"
    probes = [0]

    def scan(low: int, high: int) -> None:
        probes[0] += 1
        got = _try(conn, select, (low, high))
        if got is not None:
            for row in got:
                rows[row[0]] = dict(zip(columns, row[1:], strict=True))
            return
        if low == high or probes[0] > PROBES:
            failed.update(range(low, high + 1))
            return
        middle = (low + high) // 2
        scan(low, middle)
        scan(middle + 1, high)

    for low in range(1, upper + 1, CHUNK):
        scan(low, min(upper, low + CHUNK - 1))
    return rows, failed


def _number(value: Any, default: float = 0.0) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else default


def _text(value: Any, default: str = "") -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value if isinstance(value, str) else default


def _clean_messages(rows: dict[int, dict[str, Any]]) -> tuple[list[dict[str, Any]], int, int]:
    """Messages fit for the fresh database; how many were unusable, how many reattached."""
    usable = {mid: m for mid, m in rows.items()
              if m.get("role") in ROLES and isinstance(m.get("conversation_id"), int)}
    reattached = 0
    out = []
    for mid in sorted(usable):
        m = usable[mid]
        parent = m.get("parent_id")
        if parent is not None and (parent not in usable or parent >= mid
                                   or usable[parent]["conversation_id"] != m["conversation_id"]):
            parent = None  # its parent was lost: this message now starts a branch
            reattached += 1
        state = m.get("state") if m.get("state") in MESSAGE_STATES else "complete"
        out.append({
            "id": mid, "conversation_id": m["conversation_id"], "parent_id": parent,
            "role": m["role"], "content": _text(m.get("content")),
            "created_at": _number(m.get("created_at")),
            "updated_at": _number(m.get("updated_at"), _number(m.get("created_at"))),
            "model_name": m.get("model_name") if isinstance(m.get("model_name"), str) else None,
            "model_file": m.get("model_file") if isinstance(m.get("model_file"), str) else None,
            "state": "interrupted" if state == "partial" else state,
            "error": m.get("error") if isinstance(m.get("error"), str) else None,
            "stats": _text(m.get("stats"), "{}"),
        })
    return out, len(rows) - len(usable), reattached


def _others_using(path: Path) -> list[int]:
    """Other processes of this user that have the database open (repairing under them would
    let them write into the file that is being set aside)."""
    import psutil

    names = {str(path.resolve()), str(path.resolve()) + "-wal"}
    found = []
    for proc in psutil.process_iter(["pid"]):
        if proc.pid == os.getpid():
            continue
        try:
            if any(f.path in names for f in proc.open_files()):
                found.append(proc.pid)
        except (psutil.Error, OSError):
            continue
    return found


def _write_fresh(target: Path, conversations: list[dict[str, Any]], messages: list[dict[str, Any]]
                 ) -> str:
    from app.store.db import Store

    for suffix in ("", "-wal", "-shm"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    store = Store.open(target)
    try:
        conn = store._conn
        conn.execute("PRAGMA foreign_keys = OFF")  # rows go in by id; checked afterwards
        with store._write():
            conn.executemany(
                "INSERT INTO conversations(id, title, created_at, updated_at, system_prompt,"
                " sampling, model, pinned, current_leaf_id, trashed_at)"
                " VALUES (:id, :title, :created_at, :updated_at, :system_prompt, :sampling,"
                " :model, :pinned, :current_leaf_id, :trashed_at)", conversations)
            conn.executemany(
                "INSERT INTO messages(id, conversation_id, parent_id, role, content, created_at,"
                " updated_at, model_name, model_file, state, error, stats)"
                " VALUES (:id, :conversation_id, :parent_id, :role, :content, :created_at,"
                " :updated_at, :model_name, :model_file, :state, :error, :stats)", messages)
        conn.execute("PRAGMA foreign_keys = ON")
        if conn.execute("PRAGMA foreign_key_check").fetchall():
            raise StoreError("The repaired database failed its foreign-key check; nothing was "
                             "replaced.")
        return store.integrity_check()
    finally:
        store.close()


def _conversations(rows: dict[int, dict[str, Any]], messages: list[dict[str, Any]]
                   ) -> tuple[list[dict[str, Any]], int]:
    by_conv: dict[int, list[dict[str, Any]]] = {}
    for m in messages:
        by_conv.setdefault(m["conversation_id"], []).append(m)
    out, recovered = [], 0
    for cid in sorted(set(rows) | set(by_conv)):
        own = by_conv.get(cid, [])
        ids = {m["id"] for m in own}
        if cid in rows:
            c = rows[cid]
            created = _number(c.get("created_at"))
            leaf = c.get("current_leaf_id")
            out.append({
                "id": cid, "title": _text(c.get("title")), "created_at": created,
                "updated_at": _number(c.get("updated_at"), created),
                "system_prompt": _text(c.get("system_prompt")),
                "sampling": _text(c.get("sampling"), "{}"),
                "model": c.get("model") if isinstance(c.get("model"), str) else None,
                "pinned": 1 if c.get("pinned") else 0,
                "current_leaf_id": leaf if leaf in ids else None,  # else: the newest leaf
                "trashed_at": c.get("trashed_at") if isinstance(c.get("trashed_at"), int | float)
                else None,
            })
        else:
            recovered += 1
            times = [m["created_at"] for m in own] or [time.time()]
            out.append({
                "id": cid, "title": f"Recovered conversation #{cid}", "created_at": min(times),
                "updated_at": max(times), "system_prompt": "", "sampling": "{}", "model": None,
                "pinned": 0, "current_leaf_id": None, "trashed_at": None,
            })
    return out, recovered


def _healthy(path: Path) -> bool:
    try:
        conn = _connect_damaged(path)
        try:
            return [r[0] for r in conn.execute("PRAGMA integrity_check").fetchall()] == ["ok"]
        finally:
            conn.close()
    except sqlite3.DatabaseError:
        return False


def _set_aside(path: Path, stamp: str) -> Path:
    """Keep the damaged file (and its -wal, -shm) as ``<name>.damaged-<stamp>``; the file stays
    at ``path`` too (a hard link) until the fresh database replaces it atomically."""
    aside = path.with_name(f"{path.name}.damaged-{stamp}")
    try:
        os.link(path, aside)
    except OSError:
        import shutil

        shutil.copy2(path, aside)
    for suffix in ("-wal", "-shm"):
        extra = Path(f"{path}{suffix}")
        if extra.exists():
            os.replace(extra, Path(f"{aside}{suffix}"))
    return aside


def repair(path: Path, *, force: bool = False) -> RepairReport:
    """Salvage ``path`` into a fresh database that takes its place; see the module docstring.

    A healthy database (integrity check ok) is left alone unless ``force``. Raises StoreError
    when another process has the database open, or when nothing could be written.
    """
    report = RepairReport(path)
    if not path.is_file():
        raise StoreError(f"There is no conversations database at {path} to repair.")
    others = _others_using(path)
    if others:
        raise StoreError(f"Close Llama Desk first: process {others[0]} has {path} open; "
                         "nothing was changed.")
    if not force and _healthy(path):
        marker_path(path).unlink(missing_ok=True)
        report.healthy = True
        report.integrity = "ok"
        return report
    conn = _connect_damaged(path)
    try:
        if _try(conn, "SELECT count(*) FROM sqlite_master") is None:
            raise StoreError(f"Nothing in {path} can be read any more (SQLite cannot read its "
                             "list of tables); it was left as it was.")
        conv_cols = _columns(conn, "conversations", CONVERSATION_FIELDS)
        msg_cols = _columns(conn, "messages", MESSAGE_FIELDS)
        if "id" not in conv_cols or "conversation_id" not in msg_cols:
            raise StoreError(f"{path} is too damaged to read its tables; nothing was changed.")
        known_convs = _existing_ids(conn, "conversations", "conversations_order")
        known_msgs = _existing_ids(conn, "messages", "messages_tree")
        size = path.stat().st_size
        conv_rows, conv_failed = _salvage(
            conn, "conversations", conv_cols,
            _upper_bound(conn, "conversations", known_convs, size))
        msg_rows, msg_failed = _salvage(
            conn, "messages", msg_cols, _upper_bound(conn, "messages", known_msgs, size))
    finally:
        conn.close()
    if not conv_rows and not msg_rows and (conv_failed or msg_failed):
        raise StoreError(f"Nothing in {path} can be read any more (SQLite cannot read its "
                         "tables); it was left as it was. A backup beside it, if any, is "
                         "the way back.")
    messages, unusable, report.reattached = _clean_messages(msg_rows)
    conversations, report.recovered_conversations = _conversations(conv_rows, messages)
    report.exact = known_convs is not None and known_msgs is not None
    report.lost_conversations = (len(known_convs - set(conv_rows)) if known_convs is not None
                                 else len(conv_failed))
    report.lost_messages = unusable + (len(known_msgs - set(msg_rows)) if known_msgs is not None
                                       else len(msg_failed))
    report.conversations, report.messages = len(conversations), len(messages)
    fresh = path.with_name(path.name + ".repairing")
    report.integrity = _write_fresh(fresh, conversations, messages)
    if report.integrity != "ok":
        raise StoreError(f"The repaired copy failed SQLite's integrity check "
                         f"({report.integrity[:200]}); {path} was left as it was.")
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    report.aside = _set_aside(path, stamp)
    os.replace(fresh, path)
    with contextlib.suppress(OSError):
        marker_path(path).unlink()
    log.info("repaired %s: %s", path, report)
    return report
