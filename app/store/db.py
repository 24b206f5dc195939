"""The Store: opens (and migrates) the conversations database and combines its operations."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

from app.store import schema
from app.store.base import environment_error
from app.store.exchange import ExchangeMixin
from app.store.models import StoreError
from app.store.recovery import interrupt, recover_partials
from app.store.search import SearchMixin

log = logging.getLogger(__name__)

BUSY_TIMEOUT_S = 10.0


class Store(ExchangeMixin, SearchMixin):
    """The conversations database: one SQLite file in WAL mode with foreign keys on.

    One Store per thread (sqlite3 refuses use from another thread). Several Stores, in this
    process or others, may use the same file at once: writes are short IMMEDIATE transactions
    and a busy database is waited for up to ``BUSY_TIMEOUT_S``.
    """

    backup_path: Path | None = None
    recovered: int = 0
    _closed: bool = False

    @classmethod
    def open(cls, path: Path | str | None = None) -> Store:
        """Open (creating or upgrading) the database; ``path`` defaults to the data dir's.

        Upgrading an existing file first copies it to a timestamped backup beside it; a file
        written by a newer version is refused untouched. Partial replies left by a process that
        died become ``interrupted`` (their text is kept).
        """
        if path is None:
            from app import paths

            path = paths.database_path()
        path = Path(path)
        if path.exists() and path.stat().st_size > 0:
            schema.inspect(path)  # read-only look: refuses newer or foreign files untouched
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=True
            )
        except (OSError, sqlite3.Error) as err:
            raise StoreError(f"Cannot open the conversations database {path}: {err}.") from err
        try:
            conn.execute("PRAGMA foreign_keys = ON")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                log.warning("journal mode is %s, not WAL, for %s", mode, path)
            # Survives the app being killed at any moment; a power cut may lose the last commits.
            conn.execute("PRAGMA synchronous = NORMAL")
            store = cls(conn, path)
            store.backup_path = schema.migrate(conn, path)
            with store._write() as wconn:
                store.recovered = recover_partials(wconn, store._now())
        except StoreError:
            conn.close()
            raise
        except sqlite3.Error as err:
            conn.close()
            mapped = environment_error(path, err)
            if mapped is not None:
                raise mapped from err
            raise StoreError(f"Cannot use the conversations database {path}: {err}.") from err
        if store.recovered:
            log.info("marked %d unfinished replies as interrupted", store.recovered)
        return store

    def close(self) -> None:
        """Mark this Store's unfinished replies interrupted, and close the connection."""
        if self._closed:
            return
        try:
            if self._live:
                with self._write() as conn:
                    interrupt(conn, self._live, self._now())
                self._live.clear()
        finally:
            self._closed = True
            self._conn.close()

    @property
    def closed(self) -> bool:
        return self._closed

    def integrity_check(self) -> str:
        """SQLite's ``PRAGMA integrity_check`` result ('ok' when healthy)."""
        return "; ".join(row[0] for row in self._conn.execute("PRAGMA integrity_check"))

    def schema_version(self) -> int:
        return schema.current_version(self._conn)

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *_exc_info: object) -> None:
        self.close()
