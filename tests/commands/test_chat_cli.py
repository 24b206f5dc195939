"""`llama-desk chat` end to end in a subprocess, on the real starter model."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.store import Store

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def cli(home: Path, *args: str, stdin: str | None = None, timeout: float = 180
        ) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LLAMA_DESK_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, "main.py", *args], cwd=ROOT, env=env, input=stdin,
                          capture_output=True, text=True, timeout=timeout)


def test_one_message_streams_and_is_stored(llama_desk_home: Path) -> None:
    proc = cli(llama_desk_home, "chat", "--stats", "--max-tokens", "24", "--seed", "1",
               "--system", "You are brief.", "Say hello to Ada.")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip()
    assert "tok/s" in proc.stderr and "TTFT" in proc.stderr
    with Store.open() as store:
        [conv] = store.list_conversations()
        branch = store.current_branch(conv.id)
        assert conv.system_prompt == "You are brief."
        assert [m.role for m in branch] == ["user", "assistant"]
        assert branch[0].content == "Say hello to Ada."
        assert branch[1].content.strip() == proc.stdout.strip()
        assert branch[1].state == "complete" and branch[1].stats["generated_tokens"] > 0
        assert conv.title == "Say hello to Ada."


def test_interactive_keeps_the_conversation_and_continue(llama_desk_home: Path) -> None:
    proc = cli(llama_desk_home, "chat", "--max-tokens", "16", "--stats",
               stdin="My name is Ada.\nWhat is my name?\n")
    assert proc.returncode == 0, proc.stderr
    # Turn 2 reused turn 1's tokens: the conversation was kept in the engine between turns.
    stats = [line for line in proc.stderr.splitlines() if "reused" in line]
    assert len(stats) == 2 and "(0 reused)" not in stats[1]
    with Store.open() as store:
        [conv] = store.list_conversations()
        assert len(store.current_branch(conv.id)) == 4
    again = cli(llama_desk_home, "chat", "--continue", str(conv.id), "--max-tokens", "8",
                "--stats", "One more?")
    assert again.returncode == 0, again.stderr
    # The continued prompt carries the stored history: far more tokens than "One more?" alone.
    prompt_tokens = int(again.stderr.split("prompt ")[1].split(" tokens")[0])
    assert prompt_tokens > 40
    with Store.open() as store:
        branch = store.current_branch(conv.id)
        assert len(branch) == 6 and branch[4].content == "One more?"


def test_ctrl_c_stops_the_reply_not_the_program(llama_desk_home: Path) -> None:
    env = {**os.environ, "LLAMA_DESK_HOME": str(llama_desk_home), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "main.py", "chat", "--max-tokens", "2000", "--temperature", "1.0"],
        cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, bufsize=1,
        # A runner started in the background may ignore SIGINT, and children inherit that.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert proc.stdin and proc.stdout
    proc.stdin.write("Write a very long essay about the history of the sea.\n")
    proc.stdin.flush()
    first = proc.stdout.read(1)  # the reply has started streaming
    assert first
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.5)
    _, err = proc.communicate("Hi\n", timeout=180)
    assert proc.returncode == 0, err
    assert "[stopped]" in err
    with Store.open() as store:
        [conv] = store.list_conversations()
        branch = store.current_branch(conv.id)
        assert [m.state for m in branch] == ["complete", "cancelled", "complete", "complete"]
        assert branch[1].stats["finish_reason"] == "cancelled"
        assert len(branch[1].content) > 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["chat", "--model", "/no/such/model.gguf", "hi"], "Model file not found: /no/such/model.gguf"),
        (["chat", "--model", "llama-9000", "hi"], "No installed model called 'llama-9000'"),
        (["chat", "--temperature", "9", "hi"], "temperature=9.0 is out of range"),
        (["chat", "--continue", "999", "hi"], "999"),
    ],
)
def test_errors_are_one_readable_line(llama_desk_home: Path, args: list[str], message: str) -> None:
    proc = cli(llama_desk_home, *args)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("llama-desk: error: "), proc.stderr
    assert message in lines[0]
    assert "Traceback" not in proc.stderr


def test_help_and_version(llama_desk_home: Path) -> None:
    assert "Ctrl+C stops" in cli(llama_desk_home, "chat", "--help").stdout
    version = cli(llama_desk_home, "--version")
    assert version.returncode == 0 and version.stdout.startswith("Llama Desk ")


def test_corrupt_model_file(llama_desk_home: Path, tmp_path: Path) -> None:
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF\x03\x00\x00\x00" + os.urandom(1000))
    proc = cli(llama_desk_home, "chat", "--model", str(bad), "hi")
    assert proc.returncode == 1 and "truncated or corrupt" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_message_too_long_is_refused_before_anything_is_stored(llama_desk_home: Path) -> None:
    proc = cli(llama_desk_home, "chat", "--ctx", "512", "--max-tokens", "16",
               stdin="llama " * 700 + "\nSay hi.\n")
    assert proc.returncode == 0, proc.stderr
    assert "llama-desk: error: The message needs" in proc.stderr
    with Store.open() as store:
        [conv] = store.list_conversations()
        branch = store.current_branch(conv.id)
        # No orphan user message: the refused one was never stored.
        assert [m.role for m in branch] == ["user", "assistant"]
        assert branch[0].content == "Say hi."


def test_invalid_utf8_is_replaced_said_once_and_the_chat_goes_on(llama_desk_home: Path) -> None:
    """Bad bytes on stdin, in the message argument and in --system: U+FFFD, one note, no crash."""
    env = {**os.environ, "LLAMA_DESK_HOME": str(llama_desk_home), "PYTHONUNBUFFERED": "1",
           "LC_ALL": "C.UTF-8"}
    proc = subprocess.run(
        [sys.executable, "main.py", "chat", "--max-tokens", "4", "--seed", "1",
         "--system", os.fsdecode(b"Be brief \xff.")],
        cwd=ROOT, env=env, input=b"caf\xe9 au lait?\n\xc3\x28 twice\nAll good now.\n",
        capture_output=True, timeout=180)
    err = proc.stderr.decode("utf-8", "replace")
    assert proc.returncode == 0, err
    assert err.count("not valid UTF-8") == 1 and "Traceback" not in err
    with Store.open() as store:
        [conv] = store.list_conversations()
        users = [m.content for m in store.current_branch(conv.id) if m.role == "user"]
        assert users == ["caf\ufffd au lait?", "\ufffd( twice", "All good now."]
        assert conv.system_prompt == "Be brief \ufffd."
    one = subprocess.run([sys.executable, "main.py", "chat", "--max-tokens", "2",
                          os.fsdecode(b"hi \x80 there")], cwd=ROOT, env=env,
                         capture_output=True, timeout=180)
    assert one.returncode == 0, one.stderr
    assert b"not valid UTF-8" in one.stderr
