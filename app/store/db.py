"""The Store: opens (and migrates) the conversations database and combines its operations."""

from __future__ import annotations

import logging
import os
import sqlite3
from pathlib import Path

from app import fileio
from app.store import schema
from app.store.base import Connection, environment_error
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
    def open(cls, path: Path | str | None = None, *, read_only: bool = False) -> Store:
        """Open (creating or upgrading) the database; ``path`` defaults to the data dir's.

        Upgrading an existing file first copies it to a timestamped backup beside it; a file
        written by a newer version is refused untouched. Partial replies left by a process that
        died become ``interrupted`` (their text is kept). A new file is created 0600.

        A file that cannot be written (a read-only disk or folder, a read-only file), or
        ``read_only``, is opened for reading only: listing, showing, searching and exporting
        work, and any change is refused with a StoreError that says the database is read-only.
        """
        if path is None:
            from app import paths

            path = paths.database_path()
        path = Path(path)
        try:
            exists = path.stat().st_size > 0
        except FileNotFoundError:
            exists = False
        except OSError as err:  # e.g. a data folder this user may not look into
            raise StoreError(f"Cannot open the conversations database {path}: "
                             f"{fileio.reason(err)}.") from err
        if exists:
            schema.inspect(path)  # read-only look: refuses newer or foreign files untouched
        if read_only or (exists and not _writable(path)):
            return cls._open_read_only(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fileio.create_private(path)
            conn = sqlite3.connect(
                path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=True,
                factory=Connection,
            )
        except (OSError, sqlite3.Error) as err:
            why = fileio.reason(err) if isinstance(err, OSError) else str(err)
            raise StoreError(f"Cannot open the conversations database {path}: {why}.") from err
        conn.store_path = path
        try:
            conn.execute("PRAGMA foreign_keys = ON")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                log.warning("journal mode is %s, not WAL, for %s", mode, path)
            # Survives the app being killed at any moment; a power cut may lose the last commits.
            conn.execute("PRAGMA synchronous = NORMAL")
            store = cls(conn, path)
            store.backup_path = schema.migrate(conn, path)
            if not store.damaged:
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

    @classmethod
    def _open_read_only(cls, path: Path) -> Store:
        """A reading-only Store; a WAL file in a read-only folder is opened as immutable."""
        if not path.exists():
            raise StoreError(f"Cannot open the conversations database {path}: it does not exist.")
        uri = path.resolve().as_uri()
        conn = None
        for query in ("?mode=ro", "?immutable=1"):
            conn = sqlite3.connect(f"{uri}{query}", uri=True, timeout=BUSY_TIMEOUT_S,
                                   isolation_level=None, check_same_thread=True,
                                   factory=Connection)
            conn.store_path = path
            try:
                conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
                break
            except StoreError:
                conn.close()
                conn = None
                continue  # no -shm beside a WAL database and no right to create one
        if conn is None:
            raise StoreError(f"Cannot read the conversations database {path}: its folder is "
                             "read-only and SQLite cannot open it there.")
        store = cls(conn, path)
        store.read_only = True
        version = schema.current_version(conn)
        if version != schema.LATEST:
            conn.close()
            raise StoreError(
                f"The conversations database {path} is read-only and needs upgrading (schema "
                f"{version} to {schema.LATEST}); make it writable and start Llama Desk again."
            )
        log.info("opened %s read-only", path)
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


def _writable(path: Path) -> bool:
    """Whether SQLite can write the file and create its -wal and -shm files beside it."""
    return os.access(path, os.W_OK) and os.access(path.parent, os.W_OK | os.X_OK)
