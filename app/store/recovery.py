"""Which partial messages are still being written by a live process, and recovery of the rest."""

from __future__ import annotations

import functools
import os
import sqlite3

import psutil


@functools.cache
def process_started() -> float:
    """This process's start time; with the pid it identifies the writer of a partial message."""
    try:
        return float(psutil.Process().create_time())
    except psutil.Error:
        return 0.0


def writer_alive(pid: int | None, started: float | None) -> bool:
    """Whether the process that started writing a message is still running."""
    if pid is None or started is None:
        return False
    if pid == os.getpid():
        return abs(started - process_started()) < 0.01
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return abs(proc.create_time() - started) < 1.0
    except psutil.AccessDenied:  # another user's process: leave its reply alone
        return True
    except psutil.Error:
        return False


def recover_partials(conn: sqlite3.Connection, now: float) -> int:
    """Mark partial messages whose writer died as interrupted (text kept). Returns how many.

    ``conn`` must be inside a write transaction.
    """
    rows = conn.execute(
        "SELECT id, writer_pid, writer_started FROM messages WHERE state = 'partial'"
    ).fetchall()
    dead = [(now, row[0]) for row in rows if not writer_alive(row[1], row[2])]
    conn.executemany(
        "UPDATE messages SET state = 'interrupted', updated_at = ?, writer_pid = NULL,"
        " writer_started = NULL WHERE id = ? AND state = 'partial'",
        dead,
    )
    return len(dead)


def interrupt(conn: sqlite3.Connection, message_ids: set[int], now: float) -> None:
    """Mark this Store's unfinished replies as interrupted (on close)."""
    conn.executemany(
        "UPDATE messages SET state = 'interrupted', updated_at = ?, writer_pid = NULL,"
        " writer_started = NULL WHERE id = ? AND state = 'partial'",
        [(now, message_id) for message_id in sorted(message_ids)],
    )
