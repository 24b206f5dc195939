"""HTTP to one remote engine: JSON calls on a kept-alive client; streamed replies that any thread can cut."""

from __future__ import annotations

import contextlib
import json
import logging
import re
import socket
import ssl
import threading
from collections.abc import Iterator
from typing import Any

from app import __version__
from app.engine.remote.address import host_of
from app.engine.remote.errors import (
    EngineAuthError,
    EngineContextOverflowError,
    EngineModelNotFoundError,
    EngineProtocolError,
    EngineStreamCutError,
    EngineTimeoutError,
    EngineTLSError,
    EngineUnreachableError,
    RemoteEngineError,
)
from app.engine.remote.registry import EngineConfig
from app.netaddr import is_private_host

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 10.0
CALL_TIMEOUT_S = 30.0
# A reply may wait this long for its next byte: a big prompt on a slow server sends nothing
# until its first token (llama-server sends prompt progress meanwhile).
STREAM_READ_TIMEOUT_S = 600.0
OVERFLOW_RE = re.compile(r"context (length|size|window)|too long|exceeds? the", re.IGNORECASE)
MODEL_RE = re.compile(r"model", re.IGNORECASE)


def _error_text(body: Any) -> tuple[str, str]:
    """(message, type) from an error body: OpenAI/llama.cpp, FastAPI, plain text."""
    if isinstance(body, dict):
        err = body.get("error", body.get("detail", body.get("message", "")))
        if isinstance(err, dict):
            return str(err.get("message") or ""), str(err.get("type") or err.get("code") or "")
        return str(err or ""), ""
    return str(body or ""), ""


def _tls_failure(err: BaseException) -> ssl.SSLError | None:
    seen: BaseException | None = err
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return seen
        seen = seen.__cause__ or seen.__context__
    text = str(err)
    return ssl.SSLError(text) if "SSL" in text or "CERTIFICATE" in text else None


class Connection:
    """Talks to one engine over kept-alive connections. ``cut()`` shuts the socket of the reply
    in flight from any thread (that is how Stop closes the request, and the server stops
    generating); the socket is known from the connection's opening, or for a reused connection
    from the reply's headers on. Only the owner thread makes requests."""

    def __init__(self, config: EngineConfig) -> None:
        import httpx2 as httpx

        self.config = config
        self.name = config.name
        key = config.key()
        if config.has_key and not key:
            raise EngineAuthError(
                f"The API key of engine {config.name} is missing from the OS keyring; add it "
                f"again with `llama-desk engines add {config.name} {config.url} --key-stdin`.")
        self.had_key = bool(key)
        headers = {"User-Agent": f"llama-desk/{__version__}"}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        # Proxies from the environment only for hosts outside this network.
        trust_env = not is_private_host(host_of(config.url))
        common: dict[str, Any] = dict(base_url=config.url, headers=headers,
                                      follow_redirects=False, trust_env=trust_env)
        self._client = httpx.Client(
            timeout=httpx.Timeout(CALL_TIMEOUT_S, connect=CONNECT_TIMEOUT_S), **common)
        self._stream_timeout = httpx.Timeout(CALL_TIMEOUT_S, connect=CONNECT_TIMEOUT_S,
                                             read=STREAM_READ_TIMEOUT_S)
        self._lock = threading.Lock()
        self._socket: socket.socket | None = None
        self._cut = False

    def close(self) -> None:
        self._client.close()

    # -- errors ------------------------------------------------------------------------------------
    def transport_error(self, err: Exception, *, started: bool = False) -> RemoteEngineError:
        """The named error for a failed connection, read or timeout."""
        import httpx2 as httpx

        where = f"engine {self.name} ({self.config.url})" if self.name != self.config.url \
            else self.config.url
        check = (f"`llama-desk engines check {self.name}`" if self.name != self.config.url
                 else "that the server is running")
        if isinstance(err, httpx.ConnectTimeout):
            https = (" (a plain http server given an https:// address hangs like this too)"
                     if self.config.url.startswith("https://") else "")
            return EngineUnreachableError(
                f"Cannot reach {where}: no answer within {CONNECT_TIMEOUT_S:.0f} s{https}; check "
                f"the address, the network and any firewall ({check}).")
        if isinstance(err, httpx.TimeoutException):
            return EngineTimeoutError(
                f"{where} stopped answering (timed out); it may be overloaded, or the prompt too "
                f"long for it: try again, or check it with {check}.")
        if isinstance(err, httpx.ConnectError):
            tls = _tls_failure(err)
            if tls is not None:
                reason = getattr(tls, "reason", None) or str(tls)
                return EngineTLSError(
                    f"The https connection to {where} failed ({reason}): its certificate is not "
                    "trusted (self-signed or expired), or it does not speak https; fix the "
                    "certificate, or use http:// on a private network.")
            return EngineUnreachableError(
                f"Cannot reach {where} ({err or 'connection refused'}): is the server running "
                f"and the address right? Check with {check}.")
        if started or isinstance(err, httpx.RemoteProtocolError | httpx.ReadError):
            return EngineStreamCutError(
                f"The connection to {where} was cut mid-reply ({err or 'connection closed'}); "
                f"the text so far is kept. Check the server ({check}) and regenerate.")
        return RemoteEngineError(f"Talking to {where} failed ({type(err).__name__}: {err}).")

    def status_error(self, status: int, body: Any, what: str) -> RemoteEngineError:
        """The named error for an HTTP error answer (server text cut short, never a header)."""
        err = self._status_error(status, body, what)
        err.status = status
        return err

    def _status_error(self, status: int, body: Any, what: str) -> RemoteEngineError:
        message, kind = _error_text(body)
        message = " ".join(message.split())[:300]
        said = f": {message}" if message else ""
        name, url = self.name, self.config.url
        if status in (401, 403):
            if self.had_key:
                return EngineAuthError(
                    f"Engine {name} refused the API key (HTTP {status}{said}); check the key and "
                    f"store it again with `llama-desk engines add {name} {url} --key-stdin`.")
            return EngineAuthError(
                f"Engine {name} needs an API key (HTTP {status}{said}); add it with "
                f"`llama-desk engines add {name} {url} --key-stdin`.")
        if kind == "exceed_context_size_error" or (status in (400, 413) and OVERFLOW_RE.search(message)):
            return EngineContextOverflowError(
                f"Engine {name} says the conversation does not fit its context{said}. Start a "
                "new conversation, shorten the message, or lower max new tokens.")
        if status == 404 and MODEL_RE.search(message):
            return EngineModelNotFoundError(
                f"Engine {name} does not serve that model{said}; list its models with "
                f"`llama-desk engines check {name}`.")
        if status == 404:
            return EngineProtocolError(
                f"Engine {name} has no {what} (HTTP 404): check the URL ({url}) and the kind "
                f"(`llama-desk engines check {name}`).")
        if 300 <= status < 400:
            return EngineProtocolError(
                f"Engine {name} answered with a redirect (HTTP {status}); give the address it "
                "redirects to (often https://) instead.")
        return RemoteEngineError(f"Engine {name} answered HTTP {status} to {what}{said}.")

    # -- calls -------------------------------------------------------------------------------------
    def call(self, method: str, path: str, body: Any = None) -> Any:
        """One JSON request; the decoded answer, or the named error."""
        import httpx2 as httpx

        for attempt in (0, 1):
            try:
                response = self._client.request(method, path, json=body)
                break
            except httpx.HTTPError as err:
                if attempt == 0 and _stale(err):
                    continue  # a kept-alive connection the server had closed: once more, fresh
                raise self.transport_error(err) from None
        data = self._decode(response)
        if response.status_code >= 300:
            raise self.status_error(response.status_code, data, f"{method} {path}")
        return data

    @staticmethod
    def _decode(response: Any) -> Any:
        try:
            return response.json()
        except ValueError:
            return response.text[:1000]

    def stream(self, path: str, body: Any, cancel: threading.Event, *, retried: bool = False
               ) -> Iterator[dict[str, Any]]:
        """POST ``body`` and yield each server-sent event's JSON until the stream ends.

        A stop (``cut()``, or ``cancel`` set) ends the iteration quietly; a broken connection
        raises EngineStreamCutError, an error answer or an error event its named error.
        """
        import httpx2 as httpx

        self._cut = False
        started = answered = False

        def watch(network_stream: Any) -> None:
            sock = network_stream.get_extra_info("socket") if network_stream else None
            with self._lock:
                self._socket = sock
            if cancel.is_set():
                self.cut()

        def trace(event: str, info: dict[str, Any]) -> None:
            if event in ("connection.connect_tcp.complete", "connection.start_tls.complete"):
                watch(info["return_value"])

        try:
            with self._client.stream("POST", path, json=body, extensions={"trace": trace},
                                     timeout=self._stream_timeout,
                                     headers={"Accept": "text/event-stream"}) as response:
                answered = True
                watch(response.extensions.get("network_stream"))
                if response.status_code >= 300:
                    response.read()
                    raise self.status_error(response.status_code, self._decode(response),
                                            f"POST {path}")
                kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
                if kind != "text/event-stream":  # a server that ignores "stream": one answer
                    response.read()
                    yield self._event(self._decode(response))
                    return
                for sse in httpx.EventSource(response):
                    if cancel.is_set():
                        return
                    if sse.data.strip() == "[DONE]":
                        return
                    if not sse.data.strip():
                        continue
                    try:
                        data = json.loads(sse.data)
                    except ValueError:
                        raise EngineProtocolError(
                            f"Engine {self.name} sent a reply this app cannot read (not JSON); "
                            "check its kind with `llama-desk engines check`.") from None
                    started = True
                    yield self._event(data)
        except httpx.HTTPError as err:
            if cancel.is_set() or self._cut:
                return
            if not answered and _stale(err) and not retried:
                # The request met a kept-alive connection the server had closed meanwhile
                # (nothing was read or answered): send it once more, on a fresh connection.
                yield from self.stream(path, body, cancel, retried=True)
                return
            raise self.transport_error(err, started=started) from None
        finally:
            with self._lock:
                self._socket = None

    def _event(self, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise EngineProtocolError(f"Engine {self.name} sent an unexpected answer "
                                      f"({str(data)[:100]!r}).")
        if data.get("error"):
            code = data["error"].get("code", 500) if isinstance(data["error"], dict) else 500
            raise self.status_error(int(code) if str(code).isdigit() else 500, data, "the reply")
        return data

    def cut(self) -> None:
        """Close the reply in flight (any thread): the server sees the request closed."""
        with self._lock:
            sock = self._socket
            self._cut = True
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


def _stale(err: Exception) -> bool:
    """Whether ``err`` is a kept-alive connection found closed before any answer came (the
    server's idle timeout raced the request): safe to send the request again, once."""
    import httpx2 as httpx

    return isinstance(err, httpx.RemoteProtocolError) and "without sending a response" in str(err)
