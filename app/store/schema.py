"""Named, ordered schema migrations, recorded in the database, with a backup before migrating."""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from app.store.models import StoreError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Migration:
    """One schema step. Released migrations are frozen: change the schema by appending one."""

    version: int
    name: str
    statements: tuple[str, ...]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "conversations and message trees",
        (
            """CREATE TABLE conversations (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                title TEXT NOT NULL DEFAULT '',
                created_at REAL NOT NULL,
                updated_at REAL NOT NULL,
                system_prompt TEXT NOT NULL DEFAULT '',
                sampling TEXT NOT NULL DEFAULT '{}',
                model TEXT,
                pinned INTEGER NOT NULL DEFAULT 0,
                current_leaf_id INTEGER
            )""",
            """CREATE TABLE messages (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                conversation_id INTEGER NOT NULL
                    REFERENCES conversations(id) ON DELETE CASCADE,
                parent_id INTEGER REFERENCES messages(id) ON DELETE CASCADE,
                role TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
                content TEXT NOT NULL DEFAULT '',
                created_at REAL NOT NULL,
                model_name TEXT,
                model_file TEXT,
                state TEXT NOT NULL DEFAULT 'complete'
                    CHECK (state IN ('complete', 'partial', 'interrupted', 'cancelled', 'error')),
                error TEXT
            )""",
            "CREATE INDEX messages_tree ON messages(conversation_id, parent_id)",
            "CREATE INDEX messages_parent ON messages(parent_id)",
        ),
    ),
    Migration(
        2,
        "trash, generation stats and live writers",
        (
            "ALTER TABLE conversations ADD COLUMN trashed_at REAL",
            "ALTER TABLE messages ADD COLUMN updated_at REAL NOT NULL DEFAULT 0",
            "UPDATE messages SET updated_at = created_at",
            "ALTER TABLE messages ADD COLUMN stats TEXT NOT NULL DEFAULT '{}'",
            "ALTER TABLE messages ADD COLUMN writer_pid INTEGER",
            "ALTER TABLE messages ADD COLUMN writer_started REAL",
            "CREATE INDEX conversations_order ON conversations(trashed_at, pinned, updated_at)",
            "CREATE INDEX messages_partial ON messages(state) WHERE state = 'partial'",
        ),
    ),
    Migration(
        3,
        "full-text search",
        (
            """CREATE VIRTUAL TABLE messages_fts USING fts5(
                content, content='messages', content_rowid='id',
                tokenize='porter unicode61 remove_diacritics 2'
            )""",
            """CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
                INSERT INTO messages_fts(rowid, content) VALUES (new.id, new.content);
            END""",
            """CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
                INSERT INTO messages_fts(messages_fts, rowid, content)
                    VALUES ('delete', old.id, old.content);
            END""",
            """CREATE TRIGGER messages_fts_update AFTER UPDATE OF content ON messages BEGIN
                INSERT INTO messages_fts(messages_fts, rowid, content)
                    VALUES ('delete', old.id, old.content);
                INSERT INTO messages_fts(rowid, content) VALUES (new.id, new.content);
            END""",
            "INSERT INTO messages_fts(messages_fts) VALUES ('rebuild')",
        ),
    ),
)

LATEST = MIGRATIONS[-1].version

RECORD_TABLE = """CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at REAL NOT NULL
)"""


def newer_message(path: Path, version: int) -> str:
    return (
        f"The conversations database {path} was written by a newer version of Llama Desk "
        f"(schema {version}; this version knows up to {LATEST}). It was left untouched: "
        "update Llama Desk to open it."
    )


def inspect(path: Path) -> int:
    """The schema version of an existing file, read without changing it. Refuses newer files.

    A file that is not SQLite is refused (move it aside); a damaged one is named as damaged
    (repair it); one that only the environment keeps from being read (a read-only folder
    around a WAL database) is read as immutable instead of being called corrupt.
    """
    from app.store.base import SQLITE_CORRUPT, damaged_message, result_code

    uri = path.resolve().as_uri()
    version, tables, failure = 0, set(), None
    for query in ("?mode=ro", "?immutable=1"):
        try:
            conn = sqlite3.connect(f"{uri}{query}", uri=True)
        except sqlite3.Error as err:
            raise StoreError(f"Cannot open the conversations database {path}: {err}.") from err
        try:
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
            failure = None
            break
        except sqlite3.DatabaseError as err:
            failure = err
        finally:
            conn.close()
    if failure is not None:
        code = result_code(failure)
        if code == SQLITE_CORRUPT:
            raise StoreError(damaged_message(path, failure)) from failure
        if isinstance(failure, sqlite3.OperationalError) and code is not None:
            raise StoreError(f"Cannot read the conversations database {path}: {failure}; "
                             "check the permissions of the file and its folder.") from failure
        raise StoreError(
            f"{path} is not a readable Llama Desk conversations database ({failure}). "
            "Move it aside to start a fresh one."
        ) from failure
    if version > LATEST:
        raise StoreError(newer_message(path, version))
    if version == 0 and tables:
        raise StoreError(
            f"{path} is an SQLite file but not a Llama Desk conversations database; "
            "move it aside to start a fresh one."
        )
    return version


def backup_path(path: Path, version: int) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    candidate = path.with_name(f"{path.name}.v{version}-backup-{stamp}")
    n = 1
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.name}.v{version}-backup-{stamp}-{n}")
    return candidate


PARTIAL = ".partial"  # a backup being written; renamed to its final name once complete


def fingerprint(conn: sqlite3.Connection) -> tuple[object, ...]:
    """What a backup must match to stand for the database (columns every schema version has)."""
    row = conn.execute(
        "SELECT (SELECT count(*) FROM conversations), (SELECT max(id) FROM conversations),"
        " (SELECT total(updated_at) FROM conversations), (SELECT count(*) FROM messages),"
        " (SELECT max(id) FROM messages)"
    ).fetchone()
    return (*row, current_version(conn))


def reusable_backup(conn: sqlite3.Connection, path: Path, version: int) -> Path | None:
    """A complete backup of this very content from an earlier, interrupted upgrade, if any.

    Half-written backups (``.partial``) left by a run that was killed are removed.
    """
    wanted = None
    for old in sorted(path.parent.glob(f"{path.name}.v{version}-backup-*")):
        if old.name.endswith(PARTIAL):
            old.unlink(missing_ok=True)
            continue
        if old.name.endswith(("-wal", "-shm", "-journal")):
            continue
        try:
            backup = sqlite3.connect(f"{old.resolve().as_uri()}?immutable=1", uri=True)
            try:
                found = fingerprint(backup)
            finally:
                backup.close()
        except sqlite3.Error:
            continue
        wanted = wanted or fingerprint(conn)
        if found == wanted:
            return old
    return None


def make_backup(conn: sqlite3.Connection, path: Path, version: int) -> Path:
    """Copy the database (WAL content included) to a timestamped file beside it.

    The copy is written under a ``.partial`` name and renamed when complete, so a kill during
    the copy never leaves something that looks like a backup; a complete backup of the same
    content left by an interrupted upgrade is reused instead of copying again.
    """
    from app import fileio

    found = reusable_backup(conn, path, version)
    if found is not None:
        log.info("reusing the complete backup %s", found)
        return found
    target = backup_path(path, version)
    partial = target.with_name(target.name + PARTIAL)
    try:
        fileio.create_private(partial)
        dest = sqlite3.connect(partial)
        try:
            conn.backup(dest)
        finally:
            dest.close()
        os.replace(partial, target)
    except (sqlite3.Error, OSError) as err:
        partial.unlink(missing_ok=True)
        raise StoreError(
            f"Could not back up {path} before upgrading it ({err}); nothing was changed. "
            "Check free disk space and permissions."
        ) from err
    log.info("backed up schema %d database to %s", version, target)
    return target


def current_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection, path: Path | None) -> Path | None:
    """Bring the schema up to LATEST, one recorded migration per transaction.

    An existing file with data is first copied to a timestamped backup (returned). ``conn`` is in
    autocommit mode (``isolation_level=None``).
    """
    version = current_version(conn)
    if version > LATEST:
        raise StoreError(newer_message(path or Path(":memory:"), version))
    if version == LATEST:
        return None
    backup = make_backup(conn, path, version) if path is not None and version > 0 else None
    for migration in MIGRATIONS:
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Re-read inside the write lock: another process may have migrated meanwhile.
            if current_version(conn) >= migration.version:
                conn.execute("COMMIT")
                continue
            conn.execute(RECORD_TABLE)
            for statement in migration.statements:
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_migrations(version, name, applied_at) VALUES (?, ?, ?)",
                (migration.version, migration.name, time.time()),
            )
            conn.execute(f"PRAGMA user_version = {migration.version}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        log.info("applied schema migration %d: %s", migration.version, migration.name)
    return backup
