"""Where the API server listens and who may call it: checked before it starts, with clear refusals."""

from __future__ import annotations

import dataclasses
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from app.errors import UserError
from app.netaddr import is_loopback, parse_ip

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
MAX_BODY_BYTES = 8 * 1024 * 1024
MAX_WAITING = 8  # requests waiting for the engine; more get 429
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
WILDCARDS = ("0.0.0.0", "::", "")
MIN_KEY_LENGTH = 8


def check_key(key: str) -> str:
    """The key as used in ``Authorization: Bearer KEY``; refuses one that cannot be (unnamed)."""
    value = key.strip()
    if len(value) < MIN_KEY_LENGTH:
        raise UserError(f"The API key must have at least {MIN_KEY_LENGTH} characters.")
    if any(not ("!" <= ch <= "~") for ch in value):
        raise UserError("The API key may only hold printable ASCII characters, no spaces.")
    return value


def normalize_origin(origin: str, *, have_key: bool) -> str:
    """``scheme://host[:port]`` as browsers send it in ``Origin``; ``*`` only with a key."""
    text = origin.strip().rstrip("/")
    if text == "*":
        if not have_key:
            raise UserError("Allowing every web page (origin *) needs an API key: otherwise any "
                            "site you visit could use your model.")
        return text
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path or \
            parts.query or parts.fragment or parts.username or parts.password:
        raise UserError(f"Allowed origin {origin!r} is not a web origin; write it like "
                        "http://localhost:3000 (scheme, host and port, no path).")
    host = parts.hostname.lower()
    host = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "")


@dataclass(frozen=True)
class ServerConfig:
    """How one API server runs. ``port`` 0 picks a free port (the bound one is reported).

    ``switch_models``: a request naming another installed model loads it (``serve``); the
    window refuses instead, so an API client never swaps the model out from under it.
    """

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    api_key: str | None = dataclasses.field(default=None, repr=False)
    cors_origins: tuple[str, ...] = ()
    switch_models: bool = True
    max_waiting: int = MAX_WAITING
    max_body_bytes: int = MAX_BODY_BYTES

    def checked(self) -> ServerConfig:
        """This config validated and normalised; UserError with the reason otherwise."""
        if isinstance(self.port, bool) or not 0 <= self.port <= 65535:
            raise UserError(f"Port {self.port} is out of range; use 1 to 65535 (0: any free port).")
        host = self.host.strip()
        key = check_key(self.api_key) if self.api_key else None
        if not is_loopback(host) and key is None:
            where = "every network interface" if host in WILDCARDS else host
            raise UserError(f"Listening on {where} lets other computers reach the API, so it "
                            "needs an API key (--api-key-stdin, or a key in Settings); or listen "
                            "on 127.0.0.1.")
        origins = tuple(dict.fromkeys(normalize_origin(o, have_key=key is not None)
                                      for o in self.cors_origins if o.strip()))
        return dataclasses.replace(self, host=host, api_key=key, cors_origins=origins)

    @property
    def wildcard(self) -> bool:
        return self.host in WILDCARDS


def url_host(host: str) -> str:
    """``host`` as written in a URL (IPv6 in brackets; a wildcard as 127.0.0.1)."""
    if host in WILDCARDS:
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def base_url(host: str, port: int) -> str:
    return f"http://{url_host(host)}:{port}/v1"


class HostCheck:
    """The ``Host`` header test against DNS rebinding: a web page on a name the attacker controls
    (resolving to 127.0.0.1) sends that name, so only our own names are served."""

    def __init__(self, bound_host: str, port: int) -> None:
        self.port = port
        names = {n.lower() for n in LOOPBACK_NAMES}
        self.wildcard = bound_host in WILDCARDS
        if not self.wildcard:
            names.add(bound_host.strip("[]").lower())
        else:  # reachable from the network by this machine's name or any of its addresses
            hostname = socket.gethostname().lower()
            names |= {hostname, f"{hostname}.local"}
        self.names = frozenset(names)

    def allows(self, header: str | None) -> bool:
        if not header:
            return False
        value = header.strip().lower()
        if value.startswith("["):
            name, _, rest = value[1:].partition("]")
            port = rest[1:] if rest.startswith(":") else ("" if not rest else None)
        else:
            name, sep, port_text = value.rpartition(":")
            name, port = (name, port_text) if sep else (value, "")
        if port is None or (port != str(self.port) if port else self.port != 80):
            return False  # a Host without a port means port 80
        return name in self.names or (self.wildcard and parse_ip(name) is not None)
