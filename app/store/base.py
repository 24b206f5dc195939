"""The connection, transaction and error plumbing that the Store's parts share."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

from app.store.models import StoreError

# OperationalError texts that are the user's environment, not a bug.
_ENVIRONMENT_ERRORS = {
    "database is locked": "another Llama Desk process kept it busy for too long; try again",
    "database or disk is full": "the disk is full; free some space and try again",
    "attempt to write a readonly database": "the file is read-only; check its permissions",
    "disk i/o error": "a disk error occurred; check the drive",
    "unable to open database file": "the file or its folder cannot be opened; check permissions",
}


def environment_error(path: Path | None, err: sqlite3.Error) -> StoreError | None:
    """A StoreError for a locked, full, read-only or failing database; None for anything else."""
    text = str(err).lower()
    for key, advice in _ENVIRONMENT_ERRORS.items():
        if key in text:
            where = f" {path}" if path else ""
            return StoreError(f"Could not use the conversations database{where}: {advice}.")
    return None


class StoreBase:
    """Holds the sqlite3 connection (autocommit mode) and opens short write transactions."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn = conn
        self.path = path
        self._depth = 0
        self._live: set[int] = set()  # partial messages this Store is writing

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
        try:
            self._conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as err:
            self._raise_environment(err)
        self._depth = 1
        try:
            yield self._conn
        except BaseException:
            self._depth = 0
            self._conn.execute("ROLLBACK")
            raise
        self._depth = 0
        try:
            self._conn.execute("COMMIT")
        except sqlite3.OperationalError as err:
            if self._conn.in_transaction:
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
