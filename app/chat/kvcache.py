"""Kept KV states per conversation: the last few in RAM, the rest in checksummed files, LRU-capped."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import queue
import struct
import sys
import threading
import time
from array import array
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from app.engine.types import EngineState

log = logging.getLogger(__name__)

MAGIC = b"LDKVST\x00\x01"  # Llama Desk KV state, file format 1
SUFFIX = ".kvstate"
RAM_STATES = 4  # states kept in RAM for instant switching between conversations
RAM_BYTES = 1 << 30  # ... and at most this much of them
_HEADER = struct.Struct("<I")
_TOKEN = "i"  # int32 token ids, little-endian on disk


@dataclass
class CacheStats:
    """What the cache did (tests and benchmarks read it)."""

    ram_hits: int = 0
    disk_hits: int = 0
    rejected: int = 0  # files ignored: damaged, for another model, or not matching
    written: int = 0
    evicted: int = 0


def _atomic_write(path: Path, parts: list[bytes | bytearray]) -> None:
    """Write ``parts`` to ``path`` through a temporary file and a rename: readers see the old
    file or the whole new one, never half of it. (Local until a shared helper lands.)"""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:  # readable by the user only: a state holds the conversation, in another form
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0),
                     0o600)
        with os.fdopen(fd, "wb") as out:
            for part in parts:
                out.write(part)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


class StateCache:
    """KV states of conversations, by conversation key (one state per conversation: the newest).

    ``put`` keeps a state in RAM (the last RAM_STATES, at most RAM_BYTES) and queues it for a
    background thread that writes it under ``folder`` atomically, with a SHA-256 of its token ids
    and data, then evicts the least recently used files beyond ``disk_cap`` bytes. ``get``
    returns a state only when its key is ``key`` and ``wanted(tokens)`` agrees; a file is read
    in full and its checksum verified first, and any damaged, truncated or foreign file is
    ignored (and removed). ``disk_cap`` 0 keeps states in RAM only (files are then neither read nor written).
    """

    def __init__(self, folder: Path, disk_cap: int, *, ram_states: int = RAM_STATES,
                 ram_bytes: int = RAM_BYTES) -> None:
        self.folder = folder
        self.disk_cap = max(0, int(disk_cap))
        self.ram_states = ram_states
        self.ram_bytes = ram_bytes
        self.stats = CacheStats()
        self._ram: OrderedDict[str, EngineState] = OrderedDict()
        self._pending: dict[str, EngineState] = {}  # newest state per name not yet written
        self._lock = threading.Lock()
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._writer: threading.Thread | None = None

    # -- the owner thread's side -----------------------------------------------------------------
    def put(self, name: str, state: EngineState) -> None:
        """Keep ``state`` as conversation ``name``'s (replacing the one before)."""
        self._ram[name] = state
        self._ram.move_to_end(name)
        while len(self._ram) > self.ram_states or (
                len(self._ram) > 1 and sum(s.size for s in self._ram.values()) > self.ram_bytes):
            self._ram.popitem(last=False)
        if not self.disk_cap or not isinstance(state.data, bytes | bytearray) \
                or state.size > self.disk_cap:
            return
        with self._lock:
            self._pending[name] = state
        self._start_writer()
        self._queue.put(name)

    def get(self, name: str, key: str, wanted: Callable[[list[int]], bool]
            ) -> tuple[EngineState, int] | None:
        """Conversation ``name``'s state and how many of its tokens to use, if it is for ``key``
        and ``wanted(those tokens)``; else None.

        A state kept in RAM (this process) is used whole, as the live context would have been;
        one read from a file only as far as it was read in prompt batches (``batched``), so a
        new process continues exactly as a cold read of the conversation would.
        """
        state = self._ram.get(name)
        if state is None:
            with self._lock:
                state = self._pending.get(name)
        if state is not None:
            if state.key == key and wanted(state.tokens):
                if name in self._ram:
                    self._ram.move_to_end(name)
                self.stats.ram_hits += 1
                return state, len(state.tokens)
            return None
        if not self.disk_cap:
            return None
        state = self._read(self._path(name), key, wanted)
        if state is None:
            return None
        self.stats.disk_hits += 1
        return state, len(state.tokens) if state.batched is None else state.batched

    def forget(self, name: str) -> None:
        """Drop conversation ``name``'s state (RAM and file)."""
        self._ram.pop(name, None)
        with self._lock:
            self._pending.pop(name, None)
        self._path(name).unlink(missing_ok=True)

    def flush(self, timeout: float | None = 30.0) -> bool:
        """Wait until queued states are written; True when none is left."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                if not self._pending:
                    return True
            if deadline is not None and time.monotonic() > deadline:
                return False
            time.sleep(0.01)

    def close(self, timeout: float | None = 30.0) -> None:
        """Write what is queued (up to ``timeout``), then stop the writer thread."""
        self.flush(timeout)
        if self._writer is not None:
            self._queue.put(None)
            self._writer.join(timeout)
            self._writer = None
        self._ram.clear()

    # -- files ------------------------------------------------------------------------------------
    def _path(self, name: str) -> Path:
        return self.folder / f"{name}{SUFFIX}"

    def _start_writer(self) -> None:
        if self._writer is None or not self._writer.is_alive():
            self._writer = threading.Thread(target=self._write_loop, name="kv-state-writer",
                                            daemon=True)
            self._writer.start()

    def _write_loop(self) -> None:
        while True:
            name = self._queue.get()
            if name is None:
                return
            with self._lock:
                state = self._pending.get(name)
            if state is None:
                continue
            try:
                self._write(name, state)
            except OSError as err:
                log.warning("could not keep the KV state of %s: %s", name, err)
            finally:
                with self._lock:
                    if self._pending.get(name) is state:
                        del self._pending[name]

    def _write(self, name: str, state: EngineState) -> None:
        assert isinstance(state.data, bytes | bytearray)
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        tokens = array(_TOKEN, state.tokens)
        if tokens.itemsize != 4:
            raise OSError("this platform has no 32-bit int array")
        token_bytes = tokens.tobytes() if sys.byteorder == "little" else _swapped(tokens)
        digest = hashlib.sha256(token_bytes)
        digest.update(state.data)
        header = json.dumps({
            "key": state.key, "tokens": len(state.tokens), "data_bytes": len(state.data),
            "batched": len(state.tokens) if state.batched is None else state.batched,
            "sha256": digest.hexdigest(), "saved_at": time.time(),
        }).encode()
        _atomic_write(self._path(name), [MAGIC, _HEADER.pack(len(header)), header,
                                         token_bytes, state.data])
        self.stats.written += 1
        self._evict(keep=self._path(name))

    def _evict(self, keep: Path) -> None:
        """Remove the least recently used files until the folder fits ``disk_cap``."""
        files = []
        for path in self.folder.glob(f"*{SUFFIX}"):
            try:
                stat = path.stat()
            except OSError:
                continue
            files.append((stat.st_mtime_ns, stat.st_size, path))
        total = sum(size for _, size, _ in files)
        for _, size, path in sorted(files):
            if total <= self.disk_cap:
                break
            if path == keep:
                continue
            path.unlink(missing_ok=True)
            total -= size
            self.stats.evicted += 1
            log.info("KV state cache over %d bytes: removed %s", self.disk_cap, path.name)

    def _read(self, path: Path, key: str, wanted: Callable[[list[int]], bool]
              ) -> EngineState | None:
        try:
            with open(path, "rb") as f:
                state = self._parse(f, key, wanted)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError, struct.error) as err:
            log.warning("ignoring the damaged KV state %s: %s", path.name, err)
            self.stats.rejected += 1
            path.unlink(missing_ok=True)
            return None
        if state is None:
            self.stats.rejected += 1
            return None
        os.utime(path)  # used: the LRU order is by modification time
        return state

    @staticmethod
    def _parse(f: object, key: str, wanted: Callable[[list[int]], bool]) -> EngineState | None:
        read = f.read  # type: ignore[attr-defined]
        if read(len(MAGIC)) != MAGIC:
            raise ValueError("not a Llama Desk KV state file")
        (size,) = _HEADER.unpack(read(_HEADER.size))
        if size > 1 << 20:
            raise ValueError("header too large")
        header = json.loads(read(size))
        if header["key"] != key:
            return None  # another model or options: not damaged, just not ours
        token_bytes = read(4 * int(header["tokens"]))
        tokens = array(_TOKEN)
        tokens.frombytes(token_bytes if sys.byteorder == "little" else _swap(token_bytes))
        if len(tokens) != header["tokens"]:
            raise ValueError("truncated token ids")
        token_list = tokens.tolist()
        batched = int(header["batched"])
        if not 0 <= batched <= len(token_list):
            raise ValueError("bad header")
        if not wanted(token_list[:batched]):
            return None
        data = read(int(header["data_bytes"]) + 1)
        if len(data) != header["data_bytes"]:
            raise ValueError("truncated or over-long state data")
        digest = hashlib.sha256(token_bytes)
        digest.update(data)
        if digest.hexdigest() != header["sha256"]:
            raise ValueError("checksum mismatch")
        return EngineState(key, token_list, data, batched)


def _swapped(tokens: array[int]) -> bytes:
    copy = array(_TOKEN, tokens)
    copy.byteswap()
    return copy.tobytes()


def _swap(raw: bytes) -> bytes:
    copy = array(_TOKEN)
    copy.frombytes(raw)
    copy.byteswap()
    return copy.tobytes()
