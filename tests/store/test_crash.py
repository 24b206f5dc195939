"""A process generating with the real starter model is SIGKILLed mid-reply: nothing is lost."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.store import Store

HELPER = Path(__file__).with_name("crash_generator.py")
ROOT = Path(__file__).resolve().parents[2]


def saved_reply(db_path: Path, message_id: int) -> tuple[str, str]:
    """Read without the Store (which would run recovery): plain read-only SQLite."""
    conn = sqlite3.connect(f"{db_path.as_uri()}?mode=ro", uri=True)
    try:
        row = conn.execute("SELECT content, state FROM messages WHERE id = ?", (message_id,))
        content, state = row.fetchone()
        return content, state
    finally:
        conn.close()


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="SIGKILL is POSIX-only")
def test_sigkill_mid_reply_keeps_user_message_and_partial_text(
    db_path: Path, starter_model: Path
) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, str(HELPER), str(db_path), str(starter_model)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline().split()
        assert first[:1] == ["user"], proc.stderr.read() if proc.stderr else ""
        conv_id, user_id = int(first[1]), int(first[2])
        line = proc.stdout.readline().split()
        assert line[:1] == ["flushed"], (line, proc.stderr.read() if proc.stderr else "")
        message_id = int(line[1])
        flushed_at = time.monotonic()
        seen, state = saved_reply(db_path, message_id)
        assert seen and state == "partial"
        # Let it stream for more than 1.2 s past the first save, then kill it mid-reply.
        while time.monotonic() - flushed_at < 1.3:
            time.sleep(0.05)
        assert proc.poll() is None, "the reply finished before the kill"
        seen, _ = saved_reply(db_path, message_id)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL

    with Store.open(db_path) as store:
        assert store.integrity_check() == "ok"
        assert store.recovered == 1
        branch = store.current_branch(conv_id)
        assert [m.id for m in branch] == [user_id, message_id]
        user, reply = branch
        assert user.role == "user" and user.content.startswith("Write a very long story")
        assert reply.role == "assistant" and reply.state == "interrupted"
        assert reply.content.startswith(seen) and len(reply.content) >= len(seen) > 0
        assert reply.model_file == str(starter_model)
        assert store.search("walrus")  # the partial text is searchable
