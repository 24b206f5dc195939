"""Secure by default: loopback bind, Host check (DNS rebinding), Origin/CORS, the API key."""

from __future__ import annotations

import socket
from collections.abc import Callable

import httpx2
import pytest

from app.errors import UserError
from app.server.config import HostCheck, ServerConfig, base_url, normalize_origin
from tests.server.conftest import Served

KEY = "sk-test-0123456789abcdef"
CHAT = {"messages": [{"role": "user", "content": "Hi"}]}
CORS_HEADERS = ("access-control-allow-origin", "access-control-allow-credentials",
                "access-control-allow-methods", "access-control-allow-headers")


def no_cors(response: httpx2.Response) -> bool:
    return not any(h in response.headers for h in CORS_HEADERS)


# -- the config ------------------------------------------------------------------------------
def test_loopback_by_default_and_a_key_for_anything_else() -> None:
    assert ServerConfig().host == "127.0.0.1"
    assert ServerConfig().checked().api_key is None
    for host in ("0.0.0.0", "::", "192.168.1.20", "myhost.lan"):
        with pytest.raises(UserError, match="needs an API key"):
            ServerConfig(host=host).checked()
        assert ServerConfig(host=host, api_key=KEY).checked().api_key == KEY
    for host in ("127.0.0.1", "localhost", "::1", "127.0.0.2"):
        ServerConfig(host=host).checked()
    with pytest.raises(UserError, match="at least 8"):
        ServerConfig(api_key="short").checked()
    with pytest.raises(UserError, match="printable ASCII"):
        ServerConfig(api_key="has a space in it").checked()
    assert KEY not in repr(ServerConfig(api_key=KEY))  # never in logs


def test_origins_are_web_origins_and_star_needs_a_key() -> None:
    assert normalize_origin("HTTP://LocalHost:3000/", have_key=False) == "http://localhost:3000"
    assert normalize_origin("https://[::1]:8443", have_key=False) == "https://[::1]:8443"
    for bad in ("localhost:3000", "http://x.com/path", "ftp://x.com", "http://u:p@x.com", "null"):
        with pytest.raises(UserError, match="not a web origin"):
            normalize_origin(bad, have_key=False)
    with pytest.raises(UserError, match="needs an API key"):
        ServerConfig(cors_origins=("*",)).checked()
    assert ServerConfig(cors_origins=("*",), api_key=KEY).checked().cors_origins == ("*",)


def test_host_check() -> None:
    check = HostCheck("127.0.0.1", 8765)
    for ok in ("127.0.0.1:8765", "localhost:8765", "LOCALHOST:8765", "[::1]:8765"):
        assert check.allows(ok), ok
    for bad in (None, "", "evil.com:8765", "127.0.0.1:8766", "127.0.0.1", "localhost",
                "evil.localhost:8765", "127.0.0.1.evil.com:8765", "[::1]", "[::1]x:8765",
                "192.168.1.2:8765", "localhost:8765:1"):
        assert not check.allows(bad), bad
    assert HostCheck("127.0.0.1", 80).allows("localhost")  # no port means 80
    wide = HostCheck("0.0.0.0", 8765)  # reachable by address or this machine's name
    assert wide.allows("192.168.1.2:8765") and wide.allows(f"{socket.gethostname()}:8765")
    assert not wide.allows("evil.com:8765")
    assert base_url("::1", 9) == "http://[::1]:9/v1" and base_url("0.0.0.0", 9).startswith(
        "http://127.0.0.1:9")


# -- over HTTP -------------------------------------------------------------------------------
@pytest.mark.parametrize("host", ["evil.com:{port}", "attacker.example:{port}", "127.0.0.1:1",
                                  "localhost", "evil.localhost:{port}"])
def test_a_foreign_host_header_gets_403(serve_fake: Callable[..., Served], host: str) -> None:
    served = serve_fake(cors_origins=("http://localhost:3000",))
    header = host.format(port=served.server.port)
    for response in (
        httpx2.get(served.url + "/models", headers={"Host": header}),
        httpx2.post(served.url + "/chat/completions", json=CHAT,
                    headers={"Host": header, "Origin": "http://localhost:3000"}),
    ):
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "host_not_allowed"
        assert no_cors(response)
    assert served.engine.requests == []


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "[::1]:{port}"])
def test_our_own_names_are_served(serve_fake: Callable[..., Served], host: str) -> None:
    served = serve_fake()
    header = host.format(port=served.server.port)
    assert httpx2.get(served.url + "/models", headers={"Host": header}).status_code == 200


def test_no_cors_unless_origins_are_configured(serve_fake: Callable[..., Served]) -> None:
    served = serve_fake()
    plain = httpx2.get(served.url + "/models")  # a program: no Origin, no CORS
    assert plain.status_code == 200 and no_cors(plain)
    page = httpx2.post(served.url + "/chat/completions", json=CHAT,
                       headers={"Origin": "http://localhost:3000"})
    assert page.status_code == 403 and no_cors(page)
    assert page.json()["error"]["code"] == "origin_not_allowed"
    preflight = httpx2.options(served.url + "/chat/completions", headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
    assert preflight.status_code == 403 and no_cors(preflight)
    assert served.engine.requests == []  # a web page's request never ran


def test_configured_origins_get_cors_and_a_proper_preflight(serve_fake: Callable[..., Served]
                                                            ) -> None:
    served = serve_fake(cors_origins=("http://localhost:3000",), api_key=KEY)
    origin = {"Origin": "http://localhost:3000"}
    preflight = httpx2.options(served.url + "/chat/completions", headers={
        **origin, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type, x-stainless-os"})
    assert preflight.status_code == 204  # without the key: browsers send none in a preflight
    assert preflight.headers["access-control-allow-origin"] == "http://localhost:3000"
    assert preflight.headers["access-control-allow-methods"] == "GET, POST"
    assert preflight.headers["access-control-allow-headers"] == \
        "authorization, content-type, x-stainless-os"
    assert "access-control-allow-credentials" not in preflight.headers
    assert "origin" in preflight.headers["vary"].lower()
    refused = httpx2.options(served.url + "/chat/completions", headers={
        **origin, "Access-Control-Request-Method": "DELETE"})
    assert refused.status_code == 400
    answer = httpx2.post(served.url + "/chat/completions", json=CHAT,
                         headers={**origin, "Authorization": f"Bearer {KEY}"})
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == "http://localhost:3000"
    assert "access-control-allow-credentials" not in answer.headers
    no_key = httpx2.get(served.url + "/models", headers=origin)
    assert no_key.status_code == 401  # the page can read why
    assert no_key.headers["access-control-allow-origin"] == "http://localhost:3000"
    other = httpx2.get(served.url + "/models", headers={"Origin": "http://localhost:3001",
                                                        "Authorization": f"Bearer {KEY}"})
    assert other.status_code == 403 and no_cors(other)


def test_star_origin_never_comes_with_credentials(serve_fake: Callable[..., Served]) -> None:
    served = serve_fake(cors_origins=("*",), api_key=KEY)
    response = httpx2.get(served.url + "/models", headers={
        "Origin": "https://anything.example", "Authorization": f"Bearer {KEY}"})
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in response.headers


@pytest.mark.parametrize("auth", [None, "Bearer wrong-key-0123456789", f"Basic {KEY}", KEY,
                                  f"Bearer {KEY}x", "Bearer", f"Bearer  {KEY[:-1]}"])
def test_with_a_key_every_request_needs_it(serve_fake: Callable[..., Served],
                                          auth: str | None) -> None:
    served = serve_fake(api_key=KEY)
    headers = {"Authorization": auth} if auth is not None else {}
    for response in (httpx2.get(served.url + "/models", headers=headers),
                     httpx2.get(served.root + "/health", headers=headers),
                     httpx2.post(served.url + "/chat/completions", json=CHAT, headers=headers)):
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json()["error"]["code"] == "invalid_api_key"
        assert KEY not in response.text
    assert served.engine.requests == []


def test_the_key_is_compared_in_constant_time(serve_fake: Callable[..., Served],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import hmac

    from app.server import gate

    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(gate.hmac, "compare_digest", spy)
    served = serve_fake(api_key=KEY)
    ok = httpx2.post(served.url + "/chat/completions", json=CHAT,
                     headers={"Authorization": f"bearer {KEY}"})
    assert ok.status_code == 200
    assert calls == [(KEY.encode(), KEY.encode())]


def test_websockets_are_refused(serve_fake: Callable[..., Served]) -> None:
    served = serve_fake()
    with socket.create_connection(("127.0.0.1", served.server.port), timeout=10) as sock:
        sock.sendall(f"GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1:{served.server.port}\r\n"
                     "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n".encode())
        head = sock.recv(65536).decode()
    assert not head.startswith("HTTP/1.1 101")


def test_a_busy_port_is_a_clear_error(serve_fake: Callable[..., Served]) -> None:
    from app.server.runner import bind

    served = serve_fake()
    with pytest.raises(UserError, match=f"Port {served.server.port} is already in use"):
        bind("127.0.0.1", served.server.port)
