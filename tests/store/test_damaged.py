"""A database damaged in the middle: named as damaged everywhere, then `history repair` salvages it."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from app import cli
from app.store import Store, StoreError
from app.store.base import DamagedDatabaseError, marker_path
from app.store.repair import repair
from tests.store.damage import damage_page, fill

ROOT = Path(__file__).resolve().parents[2]


def run(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LLAMA_DESK_HOME": str(home)}
    return subprocess.run([sys.executable, "main.py", "history", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def damaged_ids(capsys: pytest.CaptureFixture[str], count: int) -> list[int]:
    bad = []
    for conv_id in range(1, count + 1):
        if cli.main(["history", "show", str(conv_id)]) != 0:
            err = capsys.readouterr().err
            assert err.count("\n") == 1 and "is damaged" in err and "history repair" in err, err
            bad.append(conv_id)
        else:
            capsys.readouterr()
    return bad


def test_damage_is_named_writes_stop_and_repair_saves_the_rest(
    db_path: Path, llama_desk_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fill(db_path)
    damage_page(db_path)
    listed = run(llama_desk_home, "list")  # the conversations table is intact: list works
    assert listed.returncode == 0 and "conversation 59" in listed.stdout
    bad = damaged_ids(capsys, 60)
    assert bad, "the damaged page holds some conversation's messages"
    export = run(llama_desk_home, "export", "--all", "-o", str(llama_desk_home / "all.json"))
    assert export.returncode == 1 and "is damaged" in export.stderr
    assert "unexpected" not in export.stderr and export.stderr.count("\n") == 1
    # Once SQLite has said so, nothing more is written into the damaged file.
    assert marker_path(db_path).exists()
    rename = run(llama_desk_home, "rename", "1", "new title")
    assert rename.returncode == 1 and "nothing is written to it" in rename.stderr
    with Store.open(db_path) as store, pytest.raises(DamagedDatabaseError):
        store.create_conversation()

    repaired = run(llama_desk_home, "repair")
    assert repaired.returncode == 0, repaired.stderr
    out = repaired.stdout
    assert "Saved 60 conversations and" in out and "integrity check: ok" in out
    assert "Could not read" in out and "The damaged file is kept as" in out
    lost = int(out.split("Could not read ")[1].split(" ")[0])
    assert 0 < lost < 20  # one page's worth, not the table
    [aside] = [p for p in db_path.parent.iterdir() if p.name.startswith(
        "conversations.sqlite3.damaged-") and not p.name.endswith(("-wal", "-shm"))]
    assert aside.stat().st_size > 0 and not marker_path(db_path).exists()

    with Store.open(db_path) as store:
        assert store.integrity_check() == "ok"
        convs = store.list_conversations(counts=True)
        assert len(convs) == 60 and sum(c.message_count for c in convs) == 600 - lost
        for conv_id in bad:  # the damaged conversations are back, minus the lost messages
            assert store.current_branch(conv_id)
        assert store.search("walrus")  # the search index was rebuilt from the saved text
        store.add_user_message(convs[0].id, "writing works again")
    export = run(llama_desk_home, "export", "--all", "-o", str(llama_desk_home / "all.json"))
    assert export.returncode == 0, export.stderr
    with Store.open(llama_desk_home / "other.sqlite3") as other:
        assert len(other.import_json(json.loads((llama_desk_home / "all.json").read_text()))) == 60


def test_repair_of_a_healthy_database_changes_nothing(db_path: Path) -> None:
    fill(db_path, conversations=3)
    before = db_path.read_bytes()
    report = repair(db_path)
    assert report.healthy and report.aside is None
    assert db_path.read_bytes() == before
    assert not [p for p in db_path.parent.iterdir() if ".damaged-" in p.name]


def test_repair_keeps_messages_whose_conversation_row_was_lost(db_path: Path) -> None:
    fill(db_path, conversations=400, turns=1)
    damage_page(db_path, "conversations", 0.5)
    report = repair(db_path)
    assert report.lost_conversations > 0 and report.recovered_conversations > 0
    assert report.lost_messages == 0 and report.messages == 800
    with Store.open(db_path) as store:
        titles = [c.title for c in store.list_conversations()]
        assert sum(t.startswith("Recovered conversation #") for t in titles) == \
            report.recovered_conversations
        assert store.integrity_check() == "ok"


def test_repair_refuses_while_another_process_has_the_database_open(db_path: Path) -> None:
    fill(db_path, conversations=2)
    damage_page(db_path)
    code = ("import sys, time; from app.store import Store\n"
            "s = Store.open(sys.argv[1]); print('open', flush=True); time.sleep(60)\n")
    holder = subprocess.Popen([sys.executable, "-c", code, str(db_path)], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        with pytest.raises(StoreError, match=f"process {holder.pid} has"):
            repair(db_path)
    finally:
        holder.kill()
        holder.wait()
    assert repair(db_path).integrity == "ok"


def test_a_damaged_page_one_is_named_not_called_foreign(db_path: Path) -> None:
    fill(db_path, conversations=2)
    conn = sqlite3.connect(db_path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    with db_path.open("r+b") as fh:  # the schema table's page, after the 100-byte file header
        fh.seek(100)
        fh.write(b"\xff" * 200)
    with pytest.raises(StoreError, match="is damaged"):
        Store.open(db_path)
    before = db_path.read_bytes()
    with pytest.raises(StoreError, match=r"Nothing in .* can be read any more"):
        repair(db_path)  # nothing readable: the file is not replaced by an empty one
    assert db_path.read_bytes() == before
