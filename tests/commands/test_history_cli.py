"""`llama-desk history`: subprocess runs of main.py and in-process runs of app.cli.main."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app import cli
from app.engine.types import GenerationResult
from app.store import Store

ROOT = Path(__file__).resolve().parents[2]
# While the lead's other command modules are still being written, run the CLI with only
# `history` registered; once they all exist, the real `main.py` is used unchanged.
ALL_COMMANDS_PRESENT = all(
    importlib.util.find_spec(f"app.commands.{name}") is not None for name in cli.COMMANDS
)
SHIM = "import sys, app.cli as c; c.COMMANDS = ('history',); sys.exit(c.main(sys.argv[1:]))"


def run_cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "main.py"] if ALL_COMMANDS_PRESENT else [sys.executable, "-c", SHIM]
    env = {**os.environ, "LLAMA_DESK_HOME": str(home)}
    return subprocess.run(
        [*argv, "history", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


@pytest.fixture(autouse=True)
def only_history_when_others_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    if not ALL_COMMANDS_PRESENT:
        monkeypatch.setattr(cli, "COMMANDS", ("history",))


@pytest.fixture
def filled() -> dict[str, int]:
    with Store.open() as store:
        walrus = store.create_conversation(system_prompt="Be brief.")
        user = store.add_user_message(walrus.id, "Where do walruses live?")
        msg = store.start_assistant(walrus.id, user.id, "Tiny", "/models/tiny.gguf")
        writer = store.reply_writer(msg.id)
        writer.append("In the Arctic")
        writer.finish(GenerationResult(text="In the Arctic.", generated_tokens=4))
        alt = store.start_assistant(walrus.id, user.id, "Tiny", "/models/tiny.gguf")
        store.reply_writer(alt.id).finish(GenerationResult(text="Near", finish_reason="cancelled"))
        eggs = store.create_conversation()
        store.add_user_message(eggs.id, "How long to boil an egg?")
        store.set_pinned(eggs.id, True)
        return {"walrus": walrus.id, "eggs": eggs.id, "answer": msg.id}


def test_list_empty_and_filled_in_a_subprocess(llama_desk_home: Path) -> None:
    result = run_cli(llama_desk_home, "list")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "No conversations yet."


def test_list_show_search_in_a_subprocess(llama_desk_home: Path, filled: dict[str, int]) -> None:
    listed = run_cli(llama_desk_home, "list")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].split() == ["ID", "UPDATED", "MSGS", "TITLE"]
    assert lines[1].split()[:2] == [str(filled["eggs"]), "*"]  # pinned first
    assert lines[1].endswith("How long to boil an egg?")
    assert lines[2].split()[0] == str(filled["walrus"]) and lines[2].split()[-5] == "3"

    shown = run_cli(llama_desk_home, "show", str(filled["walrus"]))
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout
    assert out.startswith("Where do walruses live?") and "system prompt: Be brief." in out
    assert "── User · " in out and "── Assistant · Tiny · " in out
    assert "(stopped)" in out and " · alternate 2 of 2 (#" in out and "\nNear\n" in out

    found = run_cli(llama_desk_home, "search", "arctic")
    assert found.returncode == 0, found.stderr
    assert f"#{filled['walrus']} Where do walruses live? · assistant" in found.stdout
    assert "In the [Arctic]." in found.stdout


def test_unknown_id_is_one_error_line(llama_desk_home: Path) -> None:
    result = run_cli(llama_desk_home, "show", "999")
    assert result.returncode == 1
    assert result.stderr == "llama-desk: error: No conversation with id 999.\n"
    assert result.stdout == ""


def test_rename_pin_delete_restore_trash(filled: dict[str, int], capsys: pytest.CaptureFixture[str]) -> None:
    walrus = filled["walrus"]
    assert cli.main(["history", "rename", str(walrus), "Walrus", "homes"]) == 0
    assert "Renamed" in capsys.readouterr().out
    assert cli.main(["history", "pin", str(walrus)]) == 0
    assert cli.main(["history", "unpin", str(filled["eggs"])]) == 0
    capsys.readouterr()
    assert cli.main(["history", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].endswith("Walrus homes") and " * " in lines[1]
    assert cli.main(["history", "delete", str(walrus)]) == 0
    assert f"history restore {walrus}" in capsys.readouterr().out
    assert cli.main(["history", "list"]) == 0
    assert "Walrus homes" not in capsys.readouterr().out
    assert cli.main(["history", "trash"]) == 0
    assert "Walrus homes" in capsys.readouterr().out
    assert cli.main(["history", "restore", str(walrus)]) == 0
    assert cli.main(["history", "trash"]) == 0
    assert capsys.readouterr().out.endswith("The trash is empty.\n")
    assert cli.main(["history", "rename", "424242", "x"]) == 1
    assert "No conversation with id 424242." in capsys.readouterr().err


def test_empty_trash(filled: dict[str, int], capsys: pytest.CaptureFixture[str],
                     monkeypatch: pytest.MonkeyPatch) -> None:
    cli.main(["history", "delete", str(filled["eggs"])])
    with open(os.devnull) as devnull:
        monkeypatch.setattr(sys, "stdin", devnull)  # not a terminal: no prompt
        assert cli.main(["history", "empty-trash"]) == 1
    assert "--yes" in capsys.readouterr().err
    assert cli.main(["history", "empty-trash", "--yes"]) == 0
    assert "Deleted 1 conversation for good." in capsys.readouterr().out
    with Store.open() as store:
        assert [c.id for c in store.list_conversations(include_trashed=True)] == [filled["walrus"]]


def test_export_and_import(filled: dict[str, int], tmp_path: Path,
                           capsys: pytest.CaptureFixture[str]) -> None:
    md = tmp_path / "walrus.md"
    assert cli.main(["history", "export", str(filled["walrus"]), "--format", "md",
                     "-o", str(md)]) == 0
    text = md.read_text(encoding="utf-8")
    assert text.startswith("# Where do walruses live?") and "### Assistant · Tiny" in text

    everything = tmp_path / "all.json"
    assert cli.main(["history", "export", "--all", "-o", str(everything)]) == 0  # by extension
    assert "Exported 2 conversations" in capsys.readouterr().out
    doc = json.loads(everything.read_text(encoding="utf-8"))
    assert doc["format"] == "llama-desk-conversations" and len(doc["conversations"]) == 2

    assert cli.main(["history", "import", str(everything)]) == 0
    assert "Imported 2 conversations" in capsys.readouterr().out
    with Store.open() as store:
        assert len(store.list_conversations()) == 4

    assert cli.main(["history", "export", str(filled["eggs"]), "--format", "json", "-o", "-"]) == 0
    assert json.loads(capsys.readouterr().out)["conversations"][0]["title"].startswith("How long")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["export", "-o", "x.md"], "Give conversation ids to export, or --all"),
        (["export", "1", "--all", "-o", "x.md"], "Give conversation ids to export, or --all"),
        (["export", "77", "-o", "x.md"], "No conversation with id 77."),
        (["import", "missing.json"], "Cannot read missing.json"),
    ],
)
def test_export_import_errors(argv: list[str], message: str, tmp_path: Path,
                              capsys: pytest.CaptureFixture[str],
                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert cli.main(["history", *argv]) == 1
    err = capsys.readouterr().err
    assert err.startswith("llama-desk: error: ") and message in err and err.count("\n") == 1
    assert not (tmp_path / "x.md").exists()


def test_import_of_hostile_file_imports_nothing(filled: dict[str, int], tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({
        "format": "llama-desk-conversations", "version": 1,
        "conversations": [{"created_at": 1, "messages": [
            {"id": 1, "parent": 2, "role": "user", "content": "a", "created_at": 1},
            {"id": 2, "parent": 1, "role": "user", "content": "b", "created_at": 1},
        ]}],
    }), encoding="utf-8")
    assert cli.main(["history", "import", str(bad)]) == 1
    assert "form a cycle" in capsys.readouterr().err
    with Store.open() as store:
        assert len(store.list_conversations()) == 2
