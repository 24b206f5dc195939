"""The checks every request passes first: Host (DNS rebinding), Origin and CORS, then the API key."""

from __future__ import annotations

import hmac
import re

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.server.config import HostCheck, ServerConfig
from app.server.errors import ApiError

HEADER_LIST = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+(\s*,\s*[A-Za-z0-9!#$%&'*+.^_`|~-]+)*$")
PREFLIGHT_MAX_AGE_S = 600


class Gate:
    """ASGI middleware in front of the API, in this order:

    1. ``Host`` must name this server (its bound address, localhost, 127.0.0.1 or [::1], with
       its port), else 403: a web page on an attacker's domain that resolves to 127.0.0.1
       (DNS rebinding) is refused.
    2. A request carrying ``Origin`` (a web page's) must come from a configured origin, else
       403 with no CORS headers (the page learns nothing, and the request never runs). An
       allowed origin gets ``Access-Control-Allow-Origin`` (its own value, or ``*`` when ``*``
       is configured, which needs a key), never ``Allow-Credentials``; its preflight
       ``OPTIONS`` is answered here, without the key, as browsers send none.
    3. With an API key, ``Authorization: Bearer KEY`` is required (compared in constant time),
       else 401.
    """

    def __init__(self, app: ASGIApp, config: ServerConfig, port: int) -> None:
        self.app = app
        self.hosts = HostCheck(config.host, port)
        self.origins = frozenset(config.cors_origins)
        self.any_origin = "*" in self.origins
        self.key = config.api_key.encode() if config.api_key else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":  # no WebSocket endpoints: refuse the handshake
            await send({"type": "websocket.close", "code": 1008})
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if not self.hosts.allows(headers.get("host")):
            await self._refuse(scope, receive, send, ApiError(
                403, "This server answers only requests addressed to it by its own address "
                f"(localhost or 127.0.0.1, port {self.hosts.port}); the Host header names "
                "another.", kind="permission_error", code="host_not_allowed"))
            return
        cors: dict[str, str] = {}
        origin = headers.get("origin")
        if origin is not None:
            if not self._origin_allowed(origin):
                await self._refuse(scope, receive, send, ApiError(
                    403, f"Web pages from {origin[:100]!r} may not use this server; allow the "
                    "origin in Llama Desk's Settings (or `serve --cors-origin`).",
                    kind="permission_error", code="origin_not_allowed"))
                return
            cors = {"Access-Control-Allow-Origin": "*" if self.any_origin else origin,
                    "Access-Control-Expose-Headers": "Retry-After", "Vary": "Origin"}
            if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
                await self._preflight(scope, receive, send, headers, cors)
                return
        if self.key is not None and not self._authorized(headers.get("authorization")):
            await self._refuse(scope, receive, send, ApiError(
                401, "A valid API key is required: send `Authorization: Bearer KEY`.",
                code="invalid_api_key", headers={"WWW-Authenticate": "Bearer"}), cors)
            return
        if cors:
            send = _with_headers(send, cors)
        await self.app(scope, receive, send)

    def _origin_allowed(self, origin: str) -> bool:
        return self.any_origin or origin.strip().lower() in self.origins

    def _authorized(self, header: str | None) -> bool:
        scheme, _, given = (header or "").strip().partition(" ")
        if self.key is None or scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(given.strip().encode("utf-8", "replace"), self.key)

    async def _preflight(self, scope: Scope, receive: Receive, send: Send, headers: Headers,
                         cors: dict[str, str]) -> None:
        method = headers["access-control-request-method"].strip().upper()
        asked = headers.get("access-control-request-headers", "").strip()
        if method not in ("GET", "POST") or (asked and not HEADER_LIST.match(asked)):
            await self._refuse(scope, receive, send, ApiError(
                400, f"Preflight for {method[:20]} with headers {asked[:200]!r} is not allowed; "
                "this API takes GET and POST.", code="cors_preflight_refused"), cors)
            return
        allowed = {**cors, "Access-Control-Allow-Methods": "GET, POST",
                   "Access-Control-Max-Age": str(PREFLIGHT_MAX_AGE_S)}
        if asked:  # any header a page asks for: the origin is what is trusted
            allowed["Access-Control-Allow-Headers"] = asked
        await Response(status_code=204, headers=allowed)(scope, receive, send)

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send, error: ApiError,
                      cors: dict[str, str] | None = None) -> None:
        response = error.response()
        response.headers.update(cors or {})
        await response(scope, receive, send)


def _with_headers(send: Send, extra: dict[str, str]) -> Send:
    async def sender(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = MutableHeaders(scope=message)
            for name, value in extra.items():
                headers[name] = value
        await send(message)

    return sender
