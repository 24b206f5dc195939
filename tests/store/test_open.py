"""Opening the database: pragmas, migrations, backups, refusal of newer or foreign files."""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
from pathlib import Path

import pytest

from app import paths
from app.store import Store, StoreError
from app.store.schema import LATEST, MIGRATIONS

FIXTURES = Path(__file__).parent / "fixtures"


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_default_path_is_the_data_dir_database() -> None:
    with Store.open() as store:
        assert store.path == paths.database_path()
    assert paths.database_path().is_file()


def test_fresh_database_is_wal_with_foreign_keys_and_recorded_migrations(db_path: Path) -> None:
    with Store.open(db_path) as store:
        conn = store._conn
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
        assert store.schema_version() == LATEST
        recorded = conn.execute("SELECT version, name FROM schema_migrations ORDER BY version")
        assert [tuple(r) for r in recorded] == [(m.version, m.name) for m in MIGRATIONS]
        assert store.backup_path is None  # nothing to back up in a new file
        assert store.integrity_check() == "ok"
    assert not list(db_path.parent.glob("*backup*"))


def test_reopening_an_up_to_date_database_makes_no_backup(db_path: Path) -> None:
    Store.open(db_path).close()
    with Store.open(db_path) as store:
        assert store.backup_path is None
    assert not list(db_path.parent.glob("*backup*"))


def test_migrates_a_first_version_database_after_backing_it_up(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    shutil.copy(FIXTURES / "v1.sqlite3", db_path)
    original = digest(db_path)
    with Store.open(db_path) as store:
        assert store.schema_version() == LATEST
        backup = store.backup_path
        assert backup is not None and backup.parent == db_path.parent
        assert backup.name.startswith("conversations.sqlite3.v1-backup-")
        # The data survived, and the new columns and the search index work on it.
        convs = store.list_conversations(counts=True)
        assert [c.title for c in convs] == ["Walrus facts", "Empty one"]
        walrus = convs[0]
        assert walrus.pinned and walrus.system_prompt == "Be brief."
        assert walrus.sampling == {"temperature": 0.7} and walrus.message_count == 3
        assert walrus.trashed_at is None
        branch = store.current_branch(walrus.id)
        assert [m.content for m in branch] == [
            "Tell me about the walrus", "The walrus has long tusks and whiskers"
        ]
        # A reply left partial by the old version is recovered as interrupted, text kept.
        assert branch[1].state == "interrupted" and store.recovered == 1
        assert branch[1].updated_at >= branch[1].created_at
        assert (branch[1].sibling_index, branch[1].sibling_count) == (1, 2)
        assert [h.message_id for h in store.search("tusks")] == [3]
        assert store.integrity_check() == "ok"
    # The backup is the untouched first version.
    conn = sqlite3.connect(backup)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
        assert conn.execute("SELECT count(*) FROM messages").fetchone()[0] == 3
    finally:
        conn.close()
    assert original != digest(db_path)


def test_fixture_matches_migration_one(tmp_path: Path) -> None:
    """The v1 fixture has exactly the tables and columns migration 1 creates."""
    made = sqlite3.connect(tmp_path / "m1.sqlite3")
    for statement in MIGRATIONS[0].statements:
        made.execute(statement)
    fixture = sqlite3.connect(FIXTURES / "v1.sqlite3")

    def shape(conn: sqlite3.Connection) -> dict[str, list[tuple[object, ...]]]:
        tables = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name IN"
            " ('conversations', 'messages')")]
        return {t: [tuple(r) for r in conn.execute(f"PRAGMA table_info({t})")] for t in tables}

    try:
        assert shape(made) == shape(fixture) and len(shape(made)) == 2
    finally:
        made.close()
        fixture.close()


def test_refuses_a_newer_database_without_touching_it(db_path: Path) -> None:
    Store.open(db_path).close()
    conn = sqlite3.connect(db_path)
    conn.execute(f"PRAGMA user_version = {LATEST + 5}")
    conn.execute("PRAGMA journal_mode = DELETE")
    conn.close()
    before = digest(db_path)
    names_before = sorted(p.name for p in db_path.parent.iterdir())
    with pytest.raises(StoreError, match=r"newer version of Llama Desk.*untouched"):
        Store.open(db_path)
    assert digest(db_path) == before
    assert sorted(p.name for p in db_path.parent.iterdir()) == names_before


def test_refuses_a_foreign_sqlite_file(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    conn = sqlite3.connect(db_path)
    conn.execute("CREATE TABLE notes (x)")
    conn.commit()
    conn.close()
    before = digest(db_path)
    with pytest.raises(StoreError, match="not a Llama Desk conversations database"):
        Store.open(db_path)
    assert digest(db_path) == before


def test_refuses_a_file_that_is_not_a_database(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    db_path.write_bytes(b"this is not sqlite at all, just some words " * 100)
    with pytest.raises(StoreError, match="not a readable Llama Desk conversations database"):
        Store.open(db_path)


def test_store_refuses_use_from_another_thread(store: Store) -> None:
    import threading

    errors: list[BaseException] = []

    def use() -> None:
        try:
            store.list_conversations()
        except BaseException as err:
            errors.append(err)

    thread = threading.Thread(target=use)
    thread.start()
    thread.join()
    assert len(errors) == 1 and isinstance(errors[0], sqlite3.ProgrammingError)


def test_one_store_per_thread_works(db_path: Path) -> None:
    import threading

    Store.open(db_path).close()
    done: list[int] = []

    def worker(n: int) -> None:
        with Store.open(db_path) as own:
            conv = own.create_conversation(title=f"thread {n}")
            for i in range(20):
                own.add_user_message(conv.id, f"message {i}")
            done.append(conv.id)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with Store.open(db_path) as store:
        assert len(done) == 4
        assert all(store.get_conversation(i).current_leaf_id for i in done)
        assert sum(c.message_count for c in store.list_conversations(counts=True)) == 80
