"""Engine URLs: normalised base URLs, and whether a host keeps the conversation on this network."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from app.engine.remote.errors import RemoteEngineError
from app.netaddr import is_private_host

LEAVES_MACHINE = ("the conversation leaves this machine and its network: whatever you type goes "
                  "to {host} and its operator")


def normalize_url(url: str) -> str:
    """``url`` as a base URL: scheme (http for a private host, https otherwise when none is
    given), host and port, an optional path prefix; no trailing slash, no ``/v1``, no query.

    Raises RemoteEngineError for anything that is not an http(s) URL with a host.
    """
    text = url.strip()
    if not text:
        raise RemoteEngineError("The engine URL is empty; give one like http://127.0.0.1:8080.")
    if "://" not in text:
        host = urlsplit(f"//{text}").hostname or ""
        text = f"{'http' if host and is_private_host(host, resolve=False) else 'https'}://{text}"
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as err:
        raise RemoteEngineError(f"{url!r} is not a valid URL ({err}).") from None
    if parts.scheme not in ("http", "https"):
        raise RemoteEngineError(f"Engine URLs start with http:// or https://, not {parts.scheme}://.")
    if not parts.hostname:
        raise RemoteEngineError(f"{url!r} names no host; give one like http://127.0.0.1:8080.")
    if parts.username or parts.password:
        raise RemoteEngineError("Put no user name or password in the engine URL; give the API "
                                "key with --key-stdin (it is kept in the OS keyring).")
    path = parts.path.rstrip("/")
    if path.endswith("/v1"):
        path = path[:-3]
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    netloc = host + (f":{port}" if port is not None else "")
    return urlunsplit((parts.scheme, netloc, path, "", ""))


def host_of(url: str) -> str:
    return urlsplit(url).hostname or ""


def privacy_warning(url: str) -> str | None:
    """A warning for a URL whose host is public (None for loopback and private networks)."""
    host = host_of(url)
    if is_private_host(host):
        return None
    text = LEAVES_MACHINE.format(host=host)
    if urlsplit(url).scheme == "http":
        return (f"{url} is plain http to a public host: {text}, unencrypted, readable by "
                "anyone on the way. Prefer its https:// address.")
    return f"{url} is a public host: {text}."
