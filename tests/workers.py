"""Test helpers: llama.cpp's built tools, and `llama-desk worker` processes on 127.0.0.1."""

from __future__ import annotations

import contextlib
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from app.engine import tools

ROOT = Path(__file__).resolve().parent.parent
REQUIRE_ENV = "LLAMA_DESK_REQUIRE_TOOLS"  # set by `make test`, which builds the tools first


def require_tool(name: str) -> Path:
    """The built tool; missing, it fails under `make test` (which builds it) and skips otherwise."""
    path = tools.find_tool(name)
    if path is None:
        message = tools.missing_tool_message(name)
        if os.environ.get(REQUIRE_ENV):
            pytest.fail(f"{message} (`make test` should have built it: see `make tools`)")
        pytest.skip(message)
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cli(*args: str) -> list[str]:
    return [sys.executable, str(ROOT / "main.py"), *args]


class Worker:
    """A `llama-desk worker` subprocess; its stdout lines are collected as they come."""

    def __init__(self, port: int | None = None, *extra: str, env: dict[str, str] | None = None) -> None:
        self.port = port or free_port()
        self.endpoint = f"127.0.0.1:{self.port}"
        self.lines: list[str] = []
        self.errors: list[str] = []
        self._new: queue.Queue[str] = queue.Queue()
        self.proc = subprocess.Popen(
            cli("worker", "--port", str(self.port), *extra), stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, env=env, start_new_session=True,
        )
        threading.Thread(target=self._read, args=(self.proc.stdout, self.lines), daemon=True).start()
        threading.Thread(target=self._read, args=(self.proc.stderr, self.errors), daemon=True).start()

    def _read(self, stream: object, into: list[str]) -> None:
        for line in stream:  # type: ignore[attr-defined]
            into.append(line.rstrip("\n"))
            self._new.put(line)

    def wait_for(self, pattern: str, timeout: float = 30.0) -> str:
        """The first stdout line matching ``pattern`` (waiting for it)."""
        deadline = time.monotonic() + timeout
        rx = re.compile(pattern)
        while True:
            for line in list(self.lines):
                if rx.search(line):
                    return line
            if time.monotonic() > deadline or (self.proc.poll() is not None and self._new.empty()):
                raise AssertionError(f"no line matching {pattern!r} from the worker; "
                                     f"stdout {self.lines}, stderr {self.errors[-10:]}")
            with contextlib.suppress(queue.Empty):
                self._new.get(timeout=0.1)

    def connections(self) -> int:
        return sum("client connected" in line for line in self.lines)

    def rpc_server_pids(self) -> list[int]:
        import psutil

        try:
            return [c.pid for c in psutil.Process(self.proc.pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def interrupt(self, sig: int = signal.SIGINT, timeout: float = 15.0) -> int:
        """Send ``sig`` to the worker's process group (as a terminal's Ctrl+C does); wait."""
        os.killpg(self.proc.pid, sig)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        """SIGKILL the whole worker (llama-desk and its rpc-server) at once: a machine gone."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(15)

    def __enter__(self) -> Worker:
        try:
            self.wait_for("listening on")
        except BaseException:
            self.kill()
            raise
        return self

    def __exit__(self, *_exc: object) -> None:
        if self.proc.poll() is None:
            self.kill()
