"""CLI edges: control sequences in data, export targets that are not plain files, bad numbers."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from app import cli
from app.engine.types import GenerationResult
from app.store import Store

ROOT = Path(__file__).resolve().parents[2]
HOSTILE = "Evil \x1b]0;pwned\x07 \x1b[31mred\x1b[0m \x9b2J \u202eevil\rover"


def run(home: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LLAMA_DESK_HOME": str(home)}
    return subprocess.run([sys.executable, "main.py", *args], cwd=ROOT, env=env, input=stdin,
                          capture_output=True, text=True, timeout=120)


def no_controls(text: str) -> bool:
    return not any(ch in text for ch in "\x1b\x07\x9b\r\u202e")


@pytest.fixture
def hostile(llama_desk_home: Path) -> int:
    with Store.open() as store:
        conv = store.create_conversation(system_prompt=HOSTILE, model=HOSTILE)
        user = store.add_user_message(conv.id, f"walrus {HOSTILE}")
        reply = store.start_assistant(conv.id, user.id, HOSTILE, HOSTILE)
        store.reply_writer(reply.id).finish(GenerationResult(
            text=f"tusks {HOSTILE}", finish_reason="error", error=HOSTILE))
        store._conn.execute("UPDATE conversations SET title = ? WHERE id = ?", (HOSTILE, conv.id))
        return conv.id


@pytest.mark.parametrize("args", [("list",), ("show", "1"), ("search", "walrus"),
                                  ("search", "tusks"), ("rename", "1", "x\x1b[2Jy")])
def test_control_sequences_never_reach_the_terminal(hostile: int, llama_desk_home: Path,
                                                    args: tuple[str, ...]) -> None:
    proc = run(llama_desk_home, "history", *args)
    assert proc.returncode == 0, proc.stderr
    assert no_controls(proc.stdout) and no_controls(proc.stderr), repr(proc.stdout)
    assert "␛" in proc.stdout  # shown, not acted on


def test_error_lines_show_control_characters_too(llama_desk_home: Path) -> None:
    proc = run(llama_desk_home, "models", "import", "/tmp/x\x1b]0;pwned\x07\ny.gguf")
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1, proc.stderr
    assert no_controls(proc.stderr) and "x␛]0;pwned␇␊y.gguf" in proc.stderr


def test_an_export_to_a_pipe_stays_exact(hostile: int, llama_desk_home: Path) -> None:
    proc = run(llama_desk_home, "history", "export", "1", "--format", "md", "-o", "-")
    assert "Evil \x1b]0;pwned\x07 \x1b[31mred" in proc.stdout  # not a terminal: untouched


def test_export_never_replaces_what_the_path_is(hostile: int, llama_desk_home: Path,
                                                tmp_path: Path) -> None:
    real = tmp_path / "real.md"
    real.write_text("old")
    link = tmp_path / "link.md"
    link.symlink_to(real)
    assert run(llama_desk_home, "history", "export", "1", "-o", str(link)).returncode == 0
    assert link.is_symlink() and "walrus" in real.read_text()
    assert real.stat().st_mode & 0o077 == 0  # private
    new = tmp_path / "new.json"
    assert run(llama_desk_home, "history", "export", "--all", "-o", str(new)).returncode == 0
    assert stat.S_IMODE(new.stat().st_mode) == 0o600
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    assert run(llama_desk_home, "history", "export", "1", "-o", str(fifo)).returncode == 0
    reader.join(30)
    assert got and b"walrus" in got[0] and stat.S_ISFIFO(fifo.lstat().st_mode)
    assert run(llama_desk_home, "history", "export", "1", "-o", "/dev/null").returncode == 0
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    folder = run(llama_desk_home, "history", "export", "1", "-o", str(tmp_path))
    assert folder.returncode == 1 and "it is a folder" in folder.stderr


@pytest.mark.parametrize("args", [
    ("history", "search", "walrus", "--limit", "-1"), ("history", "search", "walrus", "--limit", "0"),
    ("models", "--ctx", "-5"), ("models", "--ctx", "10"), ("models", "--ctx", "lots"),
])
def test_impossible_numbers_are_refused_in_one_line(args: tuple[str, ...],
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(list(args))
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("llama-desk: error: argument "), err
    assert "out of range" in err or "not a whole number" in err


@pytest.mark.slow
@pytest.mark.parametrize("flag", ["--temperature", "--top-p", "--min-p", "--repeat-penalty"])
def test_chat_refuses_nan_before_anything_is_stored(flag: str, llama_desk_home: Path) -> None:
    proc = run(llama_desk_home, "chat", flag, "nan", "hello")
    assert proc.returncode in (1, 2) and proc.stderr.count("\n") == 1, proc.stderr
    assert "finite" in proc.stderr and "Traceback" not in proc.stderr
    with Store.open() as store:
        assert store.list_conversations() == []


def test_files_and_folders_are_private_and_old_ones_are_fixed(llama_desk_home: Path) -> None:
    for name in ("data", "config", "cache", "logs"):
        folder = llama_desk_home / name
        folder.mkdir(parents=True, mode=0o755)
        os.chmod(folder, 0o755)
    old = llama_desk_home / "data" / "models.json"
    old.write_text('{"models": []}')
    os.chmod(old, 0o644)
    assert run(llama_desk_home, "history", "list").returncode == 0
    assert run(llama_desk_home, "models").returncode == 0
    from app import paths, settings

    settings.save(settings.load())  # the window's first settings write
    assert paths.config_dir() == llama_desk_home / "config"
    for name in ("data", "config", "cache", "logs"):
        assert stat.S_IMODE((llama_desk_home / name).stat().st_mode) == 0o700, name
    assert stat.S_IMODE((llama_desk_home / "config" / "settings.json").stat().st_mode) == 0o600
    for path in (llama_desk_home / "data").iterdir():
        if path.is_file():
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    for path in (llama_desk_home / "logs").iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
