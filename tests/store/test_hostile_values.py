"""Hostile values in and out of the store: NaN, huge text, missing leaves, duplicate keys, devices."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app import cli
from app.engine.types import GenerationResult, Sampling
from app.errors import SettingsError
from app.store import Store, StoreError, exchange, schema
from app.store.validate import MAX_TEXT

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", ["temperature", "top_p", "min_p", "repeat_penalty"])
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_sampling_refuses_non_finite_numbers(name: str, value: float) -> None:
    with pytest.raises(SettingsError, match=f"{name}"):
        Sampling(**{name: value})


def test_the_store_refuses_what_an_import_would_refuse(store: Store) -> None:
    with pytest.raises(StoreError, match="finite"):
        store.create_conversation(sampling={"temperature": math.nan})
    conv = store.create_conversation()
    with pytest.raises(StoreError, match="Unknown sampling"):
        store.update_settings(conv.id, sampling={"temprature": 0.5})
    with pytest.raises(StoreError, match="limit is 16,000,000"):
        store.add_user_message(conv.id, "x" * (MAX_TEXT + 1))
    with pytest.raises(StoreError, match="system prompt"):
        store.update_settings(conv.id, system_prompt="x" * (MAX_TEXT + 1))


def test_an_export_always_imports_again_even_with_hostile_values(store: Store) -> None:
    """NaN stats, NaN left in old rows, long names and errors: the export still imports."""
    conv = store.create_conversation(model="m" * 10_000)
    user = store.add_user_message(conv.id, "hi")
    reply = store.start_assistant(conv.id, user.id, "n" * 10_000, "f" * 10_000)
    result = GenerationResult(text="there", finish_reason="error", error="e" * 10_000,
                              tokens_per_s=math.inf, ttft_s=math.nan)
    store.reply_writer(reply.id).finish(result)
    # What an earlier version could have stored: NaN written into the TEXT columns.
    store._conn.execute("UPDATE conversations SET sampling = ? WHERE id = ?",
                        ('{"temperature": NaN, "top_p": 0.5}', conv.id))
    store._conn.execute("UPDATE messages SET stats = ? WHERE id = ?",
                        ('{"tokens_per_s": Infinity, "prompt_tokens": 3}', reply.id))
    text = store.export_json_text([conv.id])
    assert "NaN" not in text and "Infinity" not in text
    [again] = store.import_json(text)
    copy = store.get_conversation(again)
    assert copy.sampling == {"top_p": 0.5}  # the broken value reads as "not set"
    msg = store.current_branch(again)[-1]
    assert msg.stats == {"prompt_tokens": 3} and msg.state == "error"
    assert msg.error is not None and len(msg.error) == 4096


def test_duplicate_keys_are_refused(store: Store) -> None:
    doc = ('{"format": "llama-desk-conversations", "version": 1, "conversations": [{"created_at":'
           ' 1, "created_at": 2, "messages": []}]}')
    with pytest.raises(StoreError, match="'created_at' appears twice"):
        store.import_json(doc)
    assert store.list_conversations() == []


def test_an_import_without_current_leaf_shows_and_continues_the_newest_leaf(
    store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = {"format": "llama-desk-conversations", "version": 1, "conversations": [{
        "created_at": 1.0, "messages": [
            {"id": 1, "parent": None, "role": "user", "content": "Where do walruses live?",
             "created_at": 1.0},
            {"id": 2, "parent": 1, "role": "assistant", "content": "Old answer", "created_at": 2.0},
            {"id": 3, "parent": 1, "role": "assistant", "content": "In the Arctic.",
             "created_at": 3.0},
        ]}]}
    [conv_id] = store.import_json(doc)
    assert [m.content for m in store.current_branch(conv_id)] == [
        "Where do walruses live?", "In the Arctic."]
    assert "In the Arctic." in store.export_markdown([conv_id])
    follow = store.add_user_message(conv_id, "And in winter?")  # what --continue does
    assert follow.parent_id == store.current_branch(conv_id)[-2].id
    assert cli.main(["history", "show", str(conv_id)]) == 0
    assert "(no messages)" not in capsys.readouterr().out


def test_import_counts_bytes_and_refuses_devices_and_folders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for path, message in ((Path("/dev/zero"), "not a JSON export"),
                          (tmp_path, "is a folder")):
        with pytest.raises(StoreError, match=message):
            exchange.load_json_file(path)
    big = tmp_path / "big.json"
    big.write_text('{"format": "' + "x" * 5000 + '"}')
    monkeypatch.setattr(exchange, "MAX_FILE_BYTES", 4096)
    with pytest.raises(StoreError, match="larger than the limit"):
        exchange.load_json_file(big)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    feeder = subprocess.Popen([sys.executable, "-c", "import sys\nwith open(sys.argv[1], 'w') as f:"
                               "\n    f.write('{' + ' ' * 1_000_000)", str(fifo)])
    try:  # a pipe has no size to trust: the count while reading stops it
        with pytest.raises(StoreError, match="larger than the limit"):
            exchange.load_json_file(fifo)
    finally:
        feeder.kill()
        feeder.wait()


@pytest.mark.slow
def test_history_import_dev_zero_in_a_process(llama_desk_home: Path) -> None:
    env = {**os.environ, "LLAMA_DESK_HOME": str(llama_desk_home)}
    proc = subprocess.run([sys.executable, "main.py", "history", "import", "/dev/zero"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1
    assert "not a JSON export" in proc.stderr


def _v1(db_path: Path) -> None:
    import shutil

    db_path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(Path(__file__).parent / "fixtures" / "v1.sqlite3", db_path)


def backups(db_path: Path) -> list[str]:
    return sorted(p.name for p in db_path.parent.iterdir() if "-backup-" in p.name)


def test_a_backup_killed_midway_never_looks_complete_and_is_cleaned_up(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _v1(db_path)
    real_replace = os.replace

    def killed(src: object, dst: object) -> None:
        if str(src).endswith(schema.PARTIAL):
            raise KeyboardInterrupt  # the process dies after copying, before the rename
        real_replace(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        Store.open(db_path)
    assert all(name.endswith(schema.PARTIAL) for name in backups(db_path))
    monkeypatch.setattr(os, "replace", real_replace)
    with Store.open(db_path) as store:
        assert store.backup_path is not None
    [name] = backups(db_path)  # the half copy is gone, one complete backup is left
    assert not name.endswith(schema.PARTIAL)


def test_a_complete_backup_from_an_interrupted_upgrade_is_reused(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _v1(db_path)
    real = schema.MIGRATIONS
    broken = (real[0], schema.Migration(2, "dies", ("SELECT no_such_function()",)))
    monkeypatch.setattr(schema, "MIGRATIONS", broken)
    with pytest.raises(StoreError, match="no_such_function"):  # died after the backup
        Store.open(db_path)
    first = backups(db_path)
    assert len(first) == 1
    monkeypatch.setattr(schema, "MIGRATIONS", real)
    with Store.open(db_path) as store:
        assert store.backup_path is not None and store.backup_path.name == first[0]
        assert store.schema_version() == schema.LATEST
    assert backups(db_path) == first  # no second copy of the database


def test_two_processes_continuing_one_conversation_end_on_two_branches(db_path: Path) -> None:
    """Each writer names the message it continues from (as a face must): no interleaving."""
    with Store.open(db_path) as store:
        conv = store.create_conversation()
        first = store.add_user_message(conv.id, "start")
    code = ("import sys\nfrom app.store import Store\n"
            "with Store.open(sys.argv[1]) as s:\n"
            "    parent = int(sys.argv[2])\n"
            "    for i in range(30):\n"
            "        m = s.add_user_message(int(sys.argv[3]), f'{sys.argv[4]} {i}', parent)\n"
            "        parent = m.id\n")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(db_path), str(first.id),
                               str(conv.id), name], cwd=ROOT) for name in ("A", "B")]
    assert [p.wait(120) for p in procs] == [0, 0]
    with Store.open(db_path) as store:
        messages = store.messages(conv.id)
        by_id = {m.id: m for m in messages}
        for m in messages[1:]:  # every message follows one of its own writer's, or the start
            parent = by_id[m.parent_id] if m.parent_id else None
            assert parent is not None
            assert parent.id == first.id or parent.content.split()[0] == m.content.split()[0]
        assert len(store.siblings(messages[1].id)) == 2  # the two branches
