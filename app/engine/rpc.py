"""llama.cpp RPC workers: endpoint parsing, a safe probe of each worker, device registration.

llama-cpp-python 0.3.x ignores ``rpc_servers=``; RPC devices are added through ggml's backend
registry instead (``ggml_backend_rpc_add_server`` from the RPC backend's proc address, then
``ggml_backend_register``), as llama.cpp's own ``--rpc`` does. ggml's RPC client aborts the whole
process when a worker cannot be reached (and when one vanishes mid-reply), so every worker is
first probed here in Python with the RPC protocol itself (HELLO, device count, device memory):
an unreachable, busy or mismatched worker becomes a :class:`WorkerError` with the next step.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import socket
import struct
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from app.errors import SettingsError, UserError

log = logging.getLogger(__name__)

DEFAULT_PORT = 50052
MAX_WORKERS = 16  # GGML_RPC_MAX_SERVERS
# ggml-rpc.h of the llama.cpp in the pinned llama-cpp-python (app/engine/tools.py).
PROTOCOL = (7, 0)
_HELLO, _GET_DEVICE_MEMORY, _DEVICE_COUNT = 14, 11, 15
_CONN_CAPS = 24  # RPC_CONN_CAPS_SIZE: transport capabilities (all zero: plain TCP)
LOST_MARKER = "Remote RPC server crashed or returned malformed response"
UNAUTHENTICATED_WARNING = (
    "WARNING: RPC is unauthenticated and unencrypted: anyone who can reach this port can run "
    "code on this machine's devices and read what they compute. Never expose the RPC server to "
    "an open network!"
)


class WorkerError(UserError):
    """An RPC worker cannot be used: unreachable, busy, another protocol version, or lost."""


@dataclass(frozen=True)
class WorkerInfo:
    """What a worker reported: protocol version and each device's (free, total) bytes."""

    endpoint: str
    version: tuple[int, int, int]
    devices: tuple[tuple[int, int], ...]

    @property
    def free_bytes(self) -> int:
        return sum(free for free, _ in self.devices)

    @property
    def total_bytes(self) -> int:
        return sum(total for _, total in self.devices)


def parse_endpoint(text: str) -> str:
    """``HOST[:PORT]`` → ``"host:port"`` (port 50052 by default), or ``SettingsError``."""
    value = text.strip()
    if not value:
        raise SettingsError("An RPC worker address is empty; use HOST:PORT, e.g. 192.168.1.20:50052.")
    if "://" in value:
        raise SettingsError(f"RPC worker {value!r}: give HOST:PORT without a scheme (RPC is not HTTP).")
    if value.startswith("[") or value.count(":") > 1:
        raise SettingsError(
            f"RPC worker {value!r}: IPv6 addresses are not supported by llama.cpp's RPC client; "
            "use an IPv4 address or a host name."
        )
    host, _, port_text = value.partition(":")
    port = DEFAULT_PORT
    if port_text:
        if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
            raise SettingsError(f"RPC worker {value!r}: the port must be a number from 1 to 65535.")
        port = int(port_text)
    if not host or any(c.isspace() or c in "/@?#," for c in host):
        raise SettingsError(f"RPC worker {value!r}: use HOST:PORT, e.g. 192.168.1.20:50052.")
    return f"{host}:{port}"


def parse_endpoints(value: str | Iterable[str]) -> tuple[str, ...]:
    """A comma-separated string (``--rpc``) or a list (settings) → unique ``host:port`` endpoints.

    This is what ``chat --rpc HOST:PORT[,HOST:PORT...]`` and the Workers setting go through.
    """
    items = value.split(",") if isinstance(value, str) else list(value)
    endpoints: list[str] = []
    for item in items:
        endpoint = parse_endpoint(item)
        if endpoint not in endpoints:
            endpoints.append(endpoint)
    if len(endpoints) > MAX_WORKERS:
        raise SettingsError(f"{len(endpoints)} RPC workers given; llama.cpp accepts at most {MAX_WORKERS}.")
    return tuple(endpoints)


# -- the probe: llama.cpp's RPC protocol, three commands --------------------------------------------
def _split(endpoint: str) -> tuple[str, int]:
    host, _, port = endpoint.rpartition(":")
    return host, int(port)


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionResetError("connection closed by the worker")
        data += chunk
    return bytes(data)


def _command(sock: socket.socket, cmd: int, payload: bytes, reply_size: int) -> bytes:
    sock.sendall(struct.pack("<BQ", cmd, len(payload)) + payload)
    (size,) = struct.unpack("<Q", _recv_exact(sock, 8))
    if size != reply_size:
        raise ValueError(f"unexpected reply size {size} to command {cmd}")
    return _recv_exact(sock, size)


def probe(endpoint: str, timeout: float = 5.0) -> WorkerInfo:
    """Ask a worker for its protocol version and memory; ``WorkerError`` with the next step.

    rpc-server serves one client at a time: a worker already serving another app accepts the
    connection but does not answer, which shows up here as "busy" after ``timeout``.
    """
    host, port = _split(endpoint)
    start = f"Start it there with `llama-desk worker --host HOST --port {port}`"
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except socket.gaierror as err:
        raise WorkerError(f"RPC worker {endpoint}: unknown host ({err.strerror}); check the address."
                          ) from err
    except TimeoutError as err:
        raise WorkerError(f"RPC worker {endpoint} does not answer (timed out after {timeout:g} s); "
                          "check the address and the firewall.") from err
    except OSError as err:
        raise WorkerError(f"RPC worker {endpoint} is not reachable ({err.strerror or err}). "
                          f"{start}, or remove it from the workers.") from err
    try:
        with sock:
            sock.settimeout(timeout)
            try:
                reply = _command(sock, _HELLO, bytes(_CONN_CAPS), 4 + _CONN_CAPS)
            except TimeoutError as err:
                raise WorkerError(
                    f"RPC worker {endpoint} is busy: it accepted the connection but did not answer "
                    f"within {timeout:g} s (rpc-server serves one client at a time); close the "
                    "other client or start another worker."
                ) from err
            version = (reply[0], reply[1], reply[2])
            if version[0] != PROTOCOL[0] or version[1] > PROTOCOL[1]:
                raise WorkerError(
                    f"RPC worker {endpoint} speaks RPC protocol {'.'.join(map(str, version))}, this "
                    f"app {PROTOCOL[0]}.{PROTOCOL[1]}; run the worker from the same Llama Desk "
                    "version (its rpc-server must come from the same llama.cpp)."
                )
            (count,) = struct.unpack("<I", _command(sock, _DEVICE_COUNT, b"", 4))
            devices = []
            for device in range(count):
                free, total = struct.unpack(
                    "<QQ", _command(sock, _GET_DEVICE_MEMORY, struct.pack("<I", device), 16))
                devices.append((free, total))
    except (OSError, ValueError, struct.error) as err:
        if isinstance(err, WorkerError):
            raise
        raise WorkerError(f"RPC worker {endpoint} answered with something that is not llama.cpp RPC "
                          f"({err}); check the port.") from err
    if not devices:
        raise WorkerError(f"RPC worker {endpoint} offers no devices; restart it.")
    return WorkerInfo(endpoint, version, tuple(devices))


def probe_all(endpoints: Sequence[str], timeout: float = 5.0) -> list[WorkerInfo]:
    """:func:`probe` each endpoint; the first failure is raised.

    Connections this process holds open to workers (see :func:`use_workers`) are closed first:
    a worker serves one client at a time, so our own would make it look busy.
    """
    if endpoints:
        _release_held()
    return [probe(endpoint, timeout) for endpoint in endpoints]


def still_reachable(endpoint: str, timeout: float = 1.0) -> bool:
    """Whether something still listens on ``endpoint`` (a plain TCP connect, nothing sent)."""
    try:
        with socket.create_connection(_split(endpoint), timeout=timeout):
            return True
    except OSError:
        return False


def lost_message(endpoints: Sequence[str], detail: str = "", *, loading: bool = False) -> str:
    """The error line for workers lost mid-reply (or mid-load), naming those no longer listening."""
    gone = [e for e in endpoints if not still_reachable(e)]
    who = (f"RPC worker {', '.join(gone)}" if gone else
           f"An RPC worker ({', '.join(endpoints)})")
    why = f" ({detail})" if detail else ""
    if loading:
        return (f"{who} stopped answering while the model was loading{why}; restart the worker "
                "(`llama-desk worker`) and load the model again, or remove it from the workers.")
    return (f"{who} stopped answering in the middle of the reply{why}. The reply so far is kept; "
            "restart the worker (`llama-desk worker`) and regenerate, or remove it from the workers "
            "to run on this machine alone.")


# -- ggml's backend registry through ctypes -----------------------------------------------------------
_lock = threading.RLock()
_server_regs: dict[str, int] = {}  # endpoint -> ggml_backend_reg_t from ggml_backend_rpc_add_server
_held: list[int] = []  # ggml_backend_t per RPC device in use: keeps one connection per worker open
_active: tuple[str, ...] = ()
_abort_hook: Any = None
_abort_sink: Callable[[str], None] | None = None
_ADD_SERVER = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_char_p)
_ABORT_CALLBACK = ctypes.CFUNCTYPE(None, ctypes.c_char_p)


def _ggml() -> Any:
    """libllama's handle: its symbol lookup reaches libggml and libggml-base, which it links."""
    import llama_cpp

    lib = llama_cpp.llama_cpp._lib
    if getattr(lib, "_llama_desk_rpc_types", False):
        return lib
    vp, cp, sz = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t
    for name, res, args in (
        ("ggml_backend_reg_by_name", vp, [cp]),
        ("ggml_backend_reg_get_proc_address", vp, [vp, cp]),
        ("ggml_backend_reg_dev_count", sz, [vp]),
        ("ggml_backend_reg_dev_get", vp, [vp, sz]),
        ("ggml_backend_dev_init", vp, [vp, cp]),
        ("ggml_backend_free", None, [vp]),
        ("ggml_backend_register", None, [vp]),
        ("ggml_backend_unload", None, [vp]),
        ("ggml_backend_dev_count", sz, []),
        ("ggml_backend_dev_get", vp, [sz]),
        ("ggml_backend_dev_name", cp, [vp]),
        ("ggml_backend_dev_description", cp, [vp]),
        ("ggml_backend_dev_type", ctypes.c_int, [vp]),
        ("ggml_backend_dev_backend_reg", vp, [vp]),
        ("ggml_backend_reg_name", cp, [vp]),
        ("ggml_set_abort_callback", vp, [_ABORT_CALLBACK]),
    ):
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = res, args
    lib._llama_desk_rpc_types = True
    return lib


def rpc_available() -> bool:
    """Whether the installed llama_cpp was built with ggml's RPC backend (-DGGML_RPC=on)."""
    try:
        import llama_cpp

        from app import logs

        logs.route_llama_cpp_logs()
        llama_cpp.llama_backend_init()
        return bool(_ggml().ggml_backend_reg_by_name(b"RPC"))
    except (ImportError, OSError, AttributeError):
        return False


def devices() -> list[tuple[str, str, str]]:
    """(name, description, backend) of every device llama.cpp would consider right now."""
    lib = _ggml()
    found = []
    for index in range(lib.ggml_backend_dev_count()):
        dev = lib.ggml_backend_dev_get(index)
        reg = lib.ggml_backend_dev_backend_reg(dev)
        found.append((lib.ggml_backend_dev_name(dev).decode(), lib.ggml_backend_dev_description(dev).decode(),
                      lib.ggml_backend_reg_name(reg).decode() if reg else ""))
    return found


def install_abort_hook(sink: Callable[[str], None] | None = None) -> None:
    """Make ggml's fatal errors print one readable line before the process ends.

    ggml aborts the process when an RPC worker vanishes; nothing can return from that, so the
    engine runs models with workers in a child process (``app.engine.isolated``), and this line
    tells the parent (``sink``, called first) and a terminal what happened. The first call's
    ``sink`` is kept.
    """
    global _abort_hook, _abort_sink
    if sink is not None and _abort_sink is None:
        _abort_sink = sink
    if _abort_hook is not None:
        return

    def on_abort(message: bytes | None) -> None:
        text = (message or b"").decode("utf-8", "replace").strip()
        line = f"llama-desk: llama.cpp stopped: {text}\n"
        if LOST_MARKER in text:
            line = f"llama-desk: error: {lost_message(_active, 'llama.cpp: ' + LOST_MARKER)}\n"
        if _abort_sink is not None:
            with contextlib.suppress(Exception):
                _abort_sink(line)
        os.write(2, line.encode("utf-8", "replace"))

    _abort_hook = _ABORT_CALLBACK(on_abort)
    _ggml().ggml_set_abort_callback(_abort_hook)


def use_workers(endpoints: Sequence[str]) -> list[WorkerInfo]:
    """Make exactly ``endpoints``' devices the RPC devices llama.cpp's next model load sees.

    Each worker is probed first (``WorkerError`` instead of ggml's abort). Devices of workers
    from an earlier load that are not wanted now are removed from the registry, so a later load
    without workers runs locally. Returns what each worker reported.
    """
    global _active
    wanted = tuple(endpoints)
    with _lock:
        if not wanted and not _server_regs:
            return []  # never touched the registry: a plain local load
        _release_held()
        infos = probe_all(wanted)
        lib = _ggml()
        rpc_reg = lib.ggml_backend_reg_by_name(b"RPC")
        if not rpc_reg:
            raise WorkerError(
                "This llama-cpp-python was built without RPC support; reinstall with "
                "`rm -rf .venv && make` (the project's build adds -DGGML_RPC=on).")
        add_server = _ADD_SERVER(
            lib.ggml_backend_reg_get_proc_address(rpc_reg, b"ggml_backend_rpc_add_server"))
        install_abort_hook()
        # Every RPC device belongs to the one "RPC" registration, whichever server it came from:
        # unloading that drops them all; it is registered again (with no devices of its own).
        for reg in _server_regs.values():
            lib.ggml_backend_unload(reg)
        if _server_regs:
            lib.ggml_backend_unload(rpc_reg)
            lib.ggml_backend_register(rpc_reg)
        _active = ()
        for endpoint in wanted:
            reg = _server_regs.get(endpoint) or add_server(endpoint.encode())
            if not reg:
                raise WorkerError(f"RPC worker {endpoint} offers no devices; restart it.")
            _server_regs[endpoint] = reg
            lib.ggml_backend_register(reg)
            # Without a live RPC backend each of llama.cpp's memory queries while it plans the load
            # opens (and closes) a new connection: a dozen per load. One held backend per device
            # keeps one connection per worker, until the next call here or release_workers().
            for index in range(lib.ggml_backend_reg_dev_count(reg)):
                backend = lib.ggml_backend_dev_init(lib.ggml_backend_reg_dev_get(reg, index), None)
                if backend:
                    _held.append(backend)
        _active = wanted
        log.info("RPC workers in use: %s", ", ".join(wanted) or "none")
        return infos


def _release_held() -> None:
    with _lock:
        if _held:
            lib = _ggml()
            while _held:
                lib.ggml_backend_free(_held.pop())


def release_workers() -> None:
    """Close the connections :func:`use_workers` keeps open (a loaded model keeps its own)."""
    _release_held()


def active_workers() -> tuple[str, ...]:
    """The endpoints whose devices the next load will use."""
    return _active

