"""The remote engines' HTTP connection: a kept-alive connection the server closed meanwhile is
retried once on a fresh one, for plain calls and for streamed replies alike."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator

import pytest

from app.engine.remote import registry
from app.engine.remote.errors import EngineStreamCutError
from app.engine.remote.http import Connection


class DroppingServer:
    """Answers the first request on each connection (keeping it alive), then closes that
    connection when a second request arrives on it, without answering: what a server whose
    idle timeout races the client's next request does. ``always`` drops every request."""

    def __init__(self, *, always: bool = False) -> None:
        self.always = always
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.connections = 0
        self.dropped = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            served = 0
            buf = b""
            while True:
                while b"\r\n\r\n" not in buf:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    buf += chunk
                head, _, rest = buf.partition(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                while len(rest) < length:
                    rest += conn.recv(65536)
                buf = rest[length:]
                if served or self.always:
                    self.dropped += 1
                    return  # closed without a word
                served += 1
                if b"/stream" in head.split(b"\r\n")[0]:
                    body = b'data: {"n": 1}\n\ndata: {"n": 2}\n\ndata: [DONE]\n\n'
                    kind = b"text/event-stream"
                else:
                    body, kind = json.dumps({"ok": served}).encode(), b"application/json"
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: " + kind + b"\r\nContent-Length: "
                             + str(len(body)).encode() + b"\r\nConnection: keep-alive\r\n\r\n"
                             + body)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def dropping() -> Iterator[DroppingServer]:
    server = DroppingServer()
    yield server
    server.close()


def connect(url: str) -> Connection:
    return Connection(registry.parse_ref(str(registry.EngineRef(url))).config())


def test_a_call_on_a_connection_the_server_closed_is_sent_again(dropping: DroppingServer
                                                                ) -> None:
    conn = connect(dropping.url)
    try:
        assert conn.call("GET", "/props") == {"ok": 1}
        assert conn.call("POST", "/tokenize", {"content": "a"}) == {"ok": 1}  # once more, fresh
        assert dropping.dropped == 1 and dropping.connections == 2
    finally:
        conn.close()


def test_a_reply_on_a_connection_the_server_closed_is_sent_again(dropping: DroppingServer
                                                                 ) -> None:
    conn = connect(dropping.url)
    try:
        assert conn.call("GET", "/props") == {"ok": 1}
        events = list(conn.stream("/stream", {"prompt": [1, 2]}, threading.Event()))
        assert events == [{"n": 1}, {"n": 2}]
        assert dropping.dropped == 1 and dropping.connections == 2
    finally:
        conn.close()


def test_a_server_that_never_answers_is_still_an_error() -> None:
    server = DroppingServer(always=True)
    conn = connect(server.url)
    try:
        with pytest.raises(EngineStreamCutError):
            list(conn.stream("/stream", {"prompt": [1]}, threading.Event()))
        assert server.dropped == 2  # tried once more, not forever
    finally:
        conn.close()
        server.close()
