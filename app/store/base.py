"""The connection, transaction and error plumbing that the Store's parts share."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn, ParamSpec, TypeVar

from app.store.models import StoreError

P = ParamSpec("P")
T = TypeVar("T")

# SQLite primary result codes (sqlite3.h) that are the user's environment or a damaged file.
SQLITE_PERM, SQLITE_BUSY, SQLITE_LOCKED, SQLITE_READONLY = 3, 5, 6, 8
SQLITE_IOERR, SQLITE_CORRUPT, SQLITE_FULL, SQLITE_CANTOPEN, SQLITE_NOTADB = 10, 11, 13, 14, 26
DAMAGED_CODES = (SQLITE_CORRUPT, SQLITE_NOTADB)
_ADVICE = {
    SQLITE_BUSY: "another Llama Desk process kept it busy for too long; try again",
    SQLITE_LOCKED: "another Llama Desk process kept it busy for too long; try again",
    SQLITE_FULL: "the disk is full; free some space and try again",
    SQLITE_READONLY: "it is read-only (reading works, changes do not); check the permissions "
                     "of the file and its folder",
    SQLITE_IOERR: "a disk error occurred; check the drive",
    SQLITE_CANTOPEN: "the file or its folder cannot be opened; check permissions",
    SQLITE_PERM: "permission denied; check the file's permissions",
}
_TEXTS = {  # for errors raised without a result code
    "database is locked": SQLITE_BUSY, "database or disk is full": SQLITE_FULL,
    "readonly database": SQLITE_READONLY, "disk i/o error": SQLITE_IOERR,
    "unable to open database file": SQLITE_CANTOPEN, "malformed": SQLITE_CORRUPT,
    "file is not a database": SQLITE_NOTADB,
}


class DamagedDatabaseError(StoreError):
    """SQLite found the database file damaged (corrupt pages); ``history repair`` salvages it."""


def result_code(err: sqlite3.Error) -> int | None:
    """SQLite's primary result code of ``err`` (from the code, else from the message)."""
    code = getattr(err, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF
    text = str(err).lower()
    return next((c for key, c in _TEXTS.items() if key in text), None)


def damaged_message(path: Path | None, err: sqlite3.Error) -> str:
    where = f" {path}" if path else ""
    return (f"The conversations database{where} is damaged (SQLite: {err}). Run `llama-desk "
            "history repair` to save every readable conversation into a fresh database "
            "(the damaged file is kept).")


def environment_error(path: Path | None, err: sqlite3.Error) -> StoreError | None:
    """A StoreError for a damaged, locked, full, read-only or failing database; None otherwise.

    A damaged file gives a DamagedDatabaseError (and leaves a marker beside it, see
    ``mark_damaged``); anything else (a constraint, an SQL mistake) is a bug and stays itself.
    """
    code = result_code(err)
    if code in DAMAGED_CODES:
        if path is not None:
            mark_damaged(path, err)
        return DamagedDatabaseError(damaged_message(path, err))
    if code in _ADVICE:
        where = f" {path}" if path else ""
        return StoreError(f"Could not use the conversations database{where}: {_ADVICE[code]}.")
    return None


def marker_path(path: Path) -> Path:
    """Beside a database SQLite found damaged: stops writes until `history repair` has run."""
    return path.with_name(path.name + ".damaged")


def mark_damaged(path: Path, err: sqlite3.Error) -> None:
    marker = marker_path(path)
    if marker.exists():
        return
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
    with contextlib.suppress(OSError):  # a read-only folder: the database cannot change either
        marker.write_text(f"{stamp} UTC: {err}\n", encoding="utf-8")


class Cursor(sqlite3.Cursor):
    """A cursor whose SQLite errors about the file or the machine become StoreErrors."""

    def _fail(self, err: sqlite3.Error) -> StoreError | sqlite3.Error:
        conn = self.connection
        return environment_error(getattr(conn, "store_path", None), err) or err

    def _named(self, call: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``call(*args)``, its SQLite error about the file or the machine as a StoreError."""
        try:
            return call(*args, **kwargs)
        except sqlite3.DatabaseError as err:
            raise self._fail(err) from err

    def execute(self, sql: str, parameters: Any = (), /) -> Cursor:
        return self._named(super().execute, sql, parameters)

    def executemany(self, sql: str, seq: Any, /) -> Cursor:
        return self._named(super().executemany, sql, seq)

    def fetchone(self) -> Any:
        return self._named(super().fetchone)

    def fetchall(self) -> list[Any]:
        return self._named(super().fetchall)

    def fetchmany(self, size: int | None = 1) -> list[Any]:
        return self._named(super().fetchmany, size if size is not None else self.arraysize)

    def __next__(self) -> Any:
        return self._named(super().__next__)


class Connection(sqlite3.Connection):
    """The Store's connection: every statement runs on a ``Cursor`` (errors named for people)."""

    store_path: Path | None = None

    def cursor(self, factory: Any = Cursor) -> Any:
        return super().cursor(factory)

    def execute(self, sql: str, parameters: Any = (), /) -> Cursor:
        cursor: Cursor = self.cursor().execute(sql, parameters)
        return cursor

    def executemany(self, sql: str, parameters: Any, /) -> Cursor:
        cursor: Cursor = self.cursor().executemany(sql, parameters)
        return cursor


class StoreBase:
    """Holds the sqlite3 connection (autocommit mode) and opens short write transactions."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn = conn
        self.path = path
        self._depth = 0
        self._live: set[int] = set()  # partial messages this Store is writing
        self.read_only = False

    @property
    def damaged(self) -> bool:
        """Whether SQLite has reported this database damaged (a marker beside it says so)."""
        return marker_path(self.path).exists() if self.path.name else False

    @staticmethod
    def _now() -> float:
        return time.time()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One short IMMEDIATE transaction (nested calls join the outer one)."""
        if self._depth:
            self._depth += 1
            try:
                yield self._conn
            finally:
                self._depth -= 1
            return
        if self.damaged:
            raise DamagedDatabaseError(
                f"The conversations database {self.path} was found damaged, so nothing is "
                "written to it: run `llama-desk history repair` to save every readable "
                "conversation into a fresh database (reading still works)."
            )
        try:
            self._conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as err:
            self._raise_environment(err)
        self._depth = 1
        try:
            yield self._conn
        except BaseException:
            self._depth = 0
            with contextlib.suppress(sqlite3.Error, StoreError):  # keep the first error
                self._conn.execute("ROLLBACK")
            raise
        self._depth = 0
        try:
            self._conn.execute("COMMIT")
        except sqlite3.OperationalError as err:
            if self._conn.in_transaction:
                with contextlib.suppress(sqlite3.Error, StoreError):
                    self._conn.execute("ROLLBACK")
            self._raise_environment(err)

    def _raise_environment(self, err: sqlite3.Error) -> NoReturn:
        mapped = environment_error(self.path, err)
        if mapped is not None:
            raise mapped from err
        raise err

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """A consistent snapshot across several SELECTs (joins an open write transaction)."""
        if self._depth or self._conn.in_transaction:
            yield self._conn
            return
        self._conn.execute("BEGIN")
        try:
            yield self._conn
        finally:
            with contextlib.suppress(sqlite3.Error, StoreError):
                self._conn.execute("COMMIT")

    def _require_conversation(self, conversation_id: int, *, active: bool = False) -> None:
        row = self._conn.execute(
            "SELECT trashed_at FROM conversations WHERE id = ?", (conversation_id,)
        ).fetchone()
        if row is None:
            raise StoreError(f"No conversation with id {conversation_id}.")
        if active and row[0] is not None:
            raise StoreError(
                f"Conversation {conversation_id} is in the trash; restore it first."
            )
