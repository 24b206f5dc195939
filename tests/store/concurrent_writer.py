"""Helper process for the concurrency tests: writes to the store while the test does too.

Usage: concurrent_writer.py DB_PATH MESSAGES | concurrent_writer.py DB_PATH --hold SECONDS
"""

from __future__ import annotations

import sqlite3
import sys
import time
from pathlib import Path

from app.engine.types import GenerationResult
from app.store import Store


def write(path: Path, count: int) -> None:
    with Store.open(path) as store:
        conv = store.create_conversation(title="from the other process")
        print("started", flush=True)
        for i in range(count):
            user = store.add_user_message(conv.id, f"other question {i}")
            msg = store.start_assistant(conv.id, user.id, "M", "m.gguf")
            writer = store.reply_writer(msg.id, flush_interval=0.0)
            for word in ("other", "answer", str(i)):
                writer.append(word + " ")
            writer.finish(GenerationResult(text=writer.text))
    print("done", conv.id, flush=True)


def hold(path: Path, seconds: float) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("UPDATE conversations SET title = title")
    print("locked", flush=True)
    time.sleep(seconds)
    conn.execute("COMMIT")
    conn.close()
    print("released", flush=True)


if __name__ == "__main__":
    if sys.argv[2] == "--hold":
        hold(Path(sys.argv[1]), float(sys.argv[3]))
    else:
        write(Path(sys.argv[1]), int(sys.argv[2]))
