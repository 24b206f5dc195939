"""Run llama.cpp's rpc-server as a child process and turn its output into events (no Qt)."""

from __future__ import annotations

import contextlib
import os
import queue
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.engine import tools
from app.engine.rpc import UNAUTHENTICATED_WARNING
from app.errors import UserError
from app.netaddr import is_loopback

# Lines of ggml-rpc.cpp's ggml_backend_rpc_start_server (stdout) and rpc-server.cpp (stderr).
_VERSION = re.compile(r"^Starting RPC server v(\d+\.\d+\.\d+)")
_DEVICE = re.compile(r"^\s+(\S+): (.*) \((\d+) MiB, (\d+) MiB free\)$")
_TRANSPORT = re.compile(r"^\s+transport\s+:\s+(.*)$")
_ACCEPTED = "Accepted client connection"
_CLOSED = "Client connection closed"
_FAILED_SOCKET = "Failed to create server socket"
_ERROR_HINTS = {
    _FAILED_SOCKET: "could not listen on {endpoint}: the port is in use or the address is not one "
                    "of this machine's; choose another with --port / --host",
    "No devices found": "llama.cpp found no device to serve",
}


class WorkerStartError(UserError):
    """rpc-server could not be started or stopped before it was listening."""


@dataclass(frozen=True)
class Event:
    """One thing the worker did: ``listening``, ``connected``, ``disconnected``, ``log``, ``exited``."""

    kind: str
    text: str = ""


@dataclass(frozen=True)
class WorkerConfig:
    """What ``llama-desk worker`` was asked for."""

    host: str = "127.0.0.1"
    port: int = 50052
    threads: int | None = None
    mem_mib: int | None = None
    cache: bool = False
    unauthenticated_ok: bool = False

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.port}"

    def check(self) -> None:
        """Refuse a non-loopback bind unless the user said they understand the risk."""
        if not 1 <= self.port <= 65535:
            raise UserError(f"Port {self.port} is out of range; use 1 to 65535.")
        if self.threads is not None and not 1 <= self.threads <= 1024:
            raise UserError(f"Thread count {self.threads} is out of range; use 1 to 1024.")
        if self.mem_mib is not None and self.mem_mib < 256:
            raise UserError(f"--mem {self.mem_mib} is too small; give at least 256 MiB.")
        if not is_loopback(self.host) and not self.unauthenticated_ok:
            raise UserError(
                f"Refusing to bind {self.host}: {UNAUTHENTICATED_WARNING} Bind 127.0.0.1 (the "
                "default) and tunnel to it (e.g. ssh -L), or, on a network you trust completely, "
                "add --i-understand-rpc-is-unauthenticated."
            )


def command(config: WorkerConfig, binary: Path) -> list[str]:
    args = [str(binary), "--host", config.host, "--port", str(config.port)]
    if config.threads:
        args += ["--threads", str(config.threads)]
    if config.cache:
        args.append("--cache")
    return args


def _preexec(mem_mib: int | None) -> None:
    """In the child before exec: die with the parent (Linux), cap its memory (``--mem``)."""
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if mem_mib is not None:
        import resource

        limit = mem_mib * 1024 * 1024
        # Address space rather than resident memory: only that limit is enforced everywhere.
        # A tensor buffer that would pass it fails to allocate and the client's load fails cleanly.
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _line_buffered_stdout() -> tuple[int | None, Any]:
    """(read fd, child's stdout) over a pseudo-terminal where there is one, else a plain pipe."""
    try:
        import pty

        read_fd, write_fd = pty.openpty()
    except (ImportError, OSError):
        return None, subprocess.PIPE
    return read_fd, write_fd


class WorkerProcess:
    """One rpc-server child. Iterate :meth:`events` for what it does; :meth:`stop` ends it."""

    def __init__(self, config: WorkerConfig, binary: Path | None = None) -> None:
        config.check()
        found = binary or tools.find_tool(tools.RPC_SERVER)
        if found is None:
            raise UserError(tools.missing_tool_message(tools.RPC_SERVER))
        if config.mem_mib is not None and sys.platform == "win32":
            raise UserError("--mem is not supported on Windows.")
        self.config = config
        self.binary = found
        self.version = ""
        self.devices: list[tuple[str, str, int, int]] = []  # name, description, MiB, MiB free
        self.transport = ""
        self.clients = 0
        self._errors: list[str] = []
        self._events: queue.Queue[Event] = queue.Queue()
        # rpc-server prints its start-up lines with printf and flushes only at the first client:
        # through a pipe they would wait in its stdio buffer, so its stdout is a terminal (a pty).
        out_read, out_write = _line_buffered_stdout()
        self._proc = subprocess.Popen(
            command(config, found), stdin=subprocess.DEVNULL, stdout=out_write,
            stderr=subprocess.PIPE, env=tools.tool_env(), text=True, errors="replace", bufsize=1,
            preexec_fn=(lambda: _preexec(config.mem_mib)) if os.name == "posix" else None,
        )
        if out_write is not subprocess.PIPE:
            os.close(out_write)
        stdout = self._proc.stdout if out_read is None else os.fdopen(out_read, errors="replace")
        self._readers = [
            threading.Thread(target=self._read, args=(stdout, False), daemon=True),
            threading.Thread(target=self._read, args=(self._proc.stderr, True), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    @property
    def pid(self) -> int:
        return self._proc.pid

    @property
    def returncode(self) -> int | None:
        return self._proc.poll()

    def _read(self, stream: Any, is_stderr: bool) -> None:
        assert stream is not None
        try:
            for raw in stream:
                line = raw.rstrip("\r\n")
                if is_stderr:
                    if line.strip() and not set(line.strip()) <= {"!"}:
                        self._errors.append(line.strip())
                        self._events.put(Event("log", line))
                    continue
                self._parse(line)
        except OSError:  # a pty reads EIO once rpc-server has exited
            pass
        finally:
            if not is_stderr:
                self._events.put(Event("eof"))
                with contextlib.suppress(OSError):
                    stream.close()

    def _parse(self, line: str) -> None:
        if m := _VERSION.match(line):
            self.version = m.group(1)
        elif m := _DEVICE.match(line):
            self.devices.append((m.group(1), m.group(2), int(m.group(3)), int(m.group(4))))
        elif m := _TRANSPORT.match(line):
            # The next thing rpc-server does is bind and listen; a failure comes on stderr.
            self.transport = m.group(1)
            self._events.put(Event("transport"))
        elif line.strip() == _ACCEPTED:
            self.clients += 1
            self._events.put(Event("connected", str(self.clients)))
        elif line.strip() == _CLOSED:
            self._events.put(Event("disconnected"))

    def _listening(self) -> bool:
        """Whether rpc-server holds a listening socket (psutil; assumed once it got that far)."""
        try:
            import psutil

            conns = psutil.Process(self._proc.pid).net_connections(kind="tcp")
        except Exception:  # no permission on some systems: rpc-server's own order is the sign
            return True
        return any(c.status == "LISTEN" and c.laddr and c.laddr[1] == self.config.port for c in conns)

    def _wait_listening(self) -> Event:
        for _ in range(100):
            if self._proc.poll() is not None:
                return self._exited()
            if self._listening():
                return Event("listening", self.describe())
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(0.05)
        return Event("listening", self.describe())

    def _exited(self) -> Event:
        code = self._proc.wait()
        for reader in self._readers:
            reader.join(2)
        why = next((hint for key, hint in _ERROR_HINTS.items() if any(key in e for e in self._errors)),
                   self._errors[-1] if self._errors else f"exit status {code}")
        return Event("exited", why.format(endpoint=self.config.endpoint))

    def describe(self) -> str:
        devices = "; ".join(f"{name} {desc} ({total:,} MiB)" for name, desc, total, _ in self.devices)
        n = self.config.threads
        threads = f", {n} thread{'s' if n != 1 else ''}" if n else ""
        cap = f", capped at {self.config.mem_mib:,} MiB" if self.config.mem_mib else ""
        return (f"rpc-server {self.version} listening on {self.config.endpoint} "
                f"[{devices or 'no device'}{threads}{cap}]")

    def events(self) -> Iterator[Event]:
        """``listening`` first (or ``exited`` if it could not start), then each client event,
        stderr ``log`` lines, and ``exited`` when rpc-server ends."""
        while True:
            event = self._events.get()
            if event.kind == "transport":
                event = self._wait_listening()
                yield event
                if event.kind == "exited":
                    return
            elif event.kind == "eof":
                yield self._exited()
                return
            else:
                yield event

    def stop(self, timeout: float = 5.0) -> int:
        """End rpc-server (SIGTERM, then SIGKILL) and return its exit status."""
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
        return self._proc.wait()
