"""RPC worker addresses, the Python probe (against fake servers and a real rpc-server), registration."""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from app.engine import rpc, tools
from app.engine.engine import LoadOptions
from app.errors import SettingsError
from app.netaddr import is_loopback
from app.settings import AppSettings
from tests.workers import Worker, free_port, require_tool


@pytest.mark.parametrize(("text", "expected"), [
    ("127.0.0.1:50052", "127.0.0.1:50052"),
    (" 192.168.1.20:6000 ", "192.168.1.20:6000"),
    ("gpu-box", "gpu-box:50052"),
    ("gpu-box.local:1", "gpu-box.local:1"),
])
def test_parse_endpoint(text: str, expected: str) -> None:
    assert rpc.parse_endpoint(text) == expected


@pytest.mark.parametrize(("text", "needle"), [
    ("", "empty"), ("host:0", "1 to 65535"), ("host:70000", "1 to 65535"), ("host:http", "1 to 65535"),
    ("[::1]:50052", "IPv6"), ("fe80::1", "IPv6"), (":50052", "HOST:PORT"), ("a b:1", "HOST:PORT"),
    ("http://host:1", "without a scheme"),
])
def test_parse_endpoint_refuses(text: str, needle: str) -> None:
    with pytest.raises(SettingsError, match=needle):
        rpc.parse_endpoint(text)


def test_parse_endpoints_for_the_rpc_flag_and_settings() -> None:
    assert rpc.parse_endpoints("a:1,b:2, a:1") == ("a:1", "b:2")
    assert rpc.parse_endpoints(["a", "b:7"]) == ("a:50052", "b:7")
    with pytest.raises(SettingsError, match="at most 16"):
        rpc.parse_endpoints([f"h:{1000 + i}" for i in range(17)])
    with pytest.raises(SettingsError):
        rpc.parse_endpoints("a:1,,b:2")


def test_load_options_and_settings_carry_workers() -> None:
    assert LoadOptions(rpc_servers=("h",)).rpc_servers == ("h:50052",)
    assert LoadOptions().rpc_servers == ()
    with pytest.raises(SettingsError):
        LoadOptions(rpc_servers=("h:x",))
    settings = AppSettings(workers=["10.0.0.2:50052", "10.0.0.3"])
    assert settings.load_options().rpc_servers == ("10.0.0.2:50052", "10.0.0.3:50052")
    bad = AppSettings(workers=["10.0.0.2:99999"])
    with pytest.raises(SettingsError):
        bad.validate()


def test_is_loopback() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("127.5.0.1") and is_loopback("::1")
    assert is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.2")
    assert not is_loopback("example.org")


# -- the probe against fake servers -----------------------------------------------------------------
@contextmanager
def fake_server(handle: Callable[[socket.socket], None]) -> Iterator[str]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    port = server.getsockname()[1]

    def serve() -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            with client:
                handle(client)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.close()


def read_command(sock: socket.socket) -> tuple[int, bytes]:
    cmd, size = struct.unpack("<BQ", rpc._recv_exact(sock, 9))
    return cmd, rpc._recv_exact(sock, size)


def reply(sock: socket.socket, payload: bytes) -> None:
    sock.sendall(struct.pack("<Q", len(payload)) + payload)


def rpc_speaker(version: tuple[int, int, int], memory: list[tuple[int, int]]
                ) -> Callable[[socket.socket], None]:
    def handle(sock: socket.socket) -> None:
        cmd, payload = read_command(sock)
        assert cmd == 14 and payload == bytes(24)
        reply(sock, bytes([*version, 0]) + bytes(24))
        while True:
            try:
                cmd, payload = read_command(sock)
            except ConnectionResetError:
                return
            if cmd == 15:
                reply(sock, struct.pack("<I", len(memory)))
            elif cmd == 11:
                (device,) = struct.unpack("<I", payload)
                reply(sock, struct.pack("<QQ", *memory[device]))
    return handle


def test_probe_reads_every_device() -> None:
    with fake_server(rpc_speaker((7, 0, 0), [(3 << 30, 4 << 30), (7 << 30, 8 << 30)])) as endpoint:
        info = rpc.probe(endpoint)
    assert info.version == (7, 0, 0)
    assert info.free_bytes == 10 << 30 and info.total_bytes == 12 << 30


def test_probe_refuses_another_protocol_version() -> None:
    with fake_server(rpc_speaker((6, 1, 0), [(1, 1)])) as endpoint, \
            pytest.raises(rpc.WorkerError, match=r"protocol 6\.1\.0.*same Llama Desk version"):
        rpc.probe(endpoint)


def test_probe_names_a_busy_worker() -> None:
    release = threading.Event()
    with fake_server(lambda _sock: release.wait(5)) as endpoint, \
            pytest.raises(rpc.WorkerError, match=r"busy.*one client at a time"):
        rpc.probe(endpoint, timeout=0.5)
    release.set()


def test_probe_refuses_something_else_on_the_port() -> None:
    def http(sock: socket.socket) -> None:
        sock.recv(100)
        sock.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")

    with fake_server(http) as endpoint, pytest.raises(rpc.WorkerError, match=r"not llama\.cpp RPC"):
        rpc.probe(endpoint)


def test_probe_unreachable_says_how_to_start_a_worker() -> None:
    endpoint = f"127.0.0.1:{free_port()}"
    with pytest.raises(rpc.WorkerError, match=r"not reachable.*llama-desk worker"):
        rpc.probe(endpoint)
    assert not rpc.still_reachable(endpoint)


def test_use_workers_with_a_dead_worker_raises_instead_of_aborting() -> None:
    """ggml would abort the process on an unreachable server; the probe comes first."""
    with pytest.raises(rpc.WorkerError, match="not reachable"):
        rpc.use_workers([f"127.0.0.1:{free_port()}"])
    assert rpc.active_workers() == ()
    assert all(backend != "RPC" for _, _, backend in rpc.devices())


# -- a real worker --------------------------------------------------------------------------------
@pytest.mark.slow
def test_probe_and_register_a_real_worker() -> None:
    require_tool(tools.RPC_SERVER)
    with Worker() as worker:
        info = rpc.probe(worker.endpoint)
        assert info.version[:2] == rpc.PROTOCOL
        assert len(info.devices) == 1 and info.total_bytes > 1 << 30
        worker.wait_for("client disconnected")
        infos = rpc.use_workers([worker.endpoint])
        assert [i.endpoint for i in infos] == [worker.endpoint]
        names = [(name, backend) for name, _, backend in rpc.devices()]
        assert sum(backend == "RPC" for _, backend in names) == 1
        assert rpc.use_workers([worker.endpoint]) and rpc.active_workers() == (worker.endpoint,)
        assert sum(backend == "RPC" for _, _, backend in rpc.devices()) == 1  # not registered twice
        rpc.use_workers([])
        assert all(backend != "RPC" for _, _, backend in rpc.devices())
        assert rpc.rpc_available()  # the RPC backend itself is still registered
