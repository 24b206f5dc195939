"""Remote-engine failures told apart, each a UserError whose message says what to do next."""

from __future__ import annotations

from app.errors import ContextOverflowError, UserError


class RemoteEngineError(UserError):
    """Something went wrong with a remote engine (its configuration or talking to it).

    ``status`` is the HTTP status of the server's error answer, when there was one.
    """

    status: int | None = None


class EngineNotFoundError(RemoteEngineError):
    """No configured engine has that name."""


class EngineUnreachableError(RemoteEngineError):
    """No connection: wrong address, server not running, firewall, no network."""


class EngineTLSError(RemoteEngineError):
    """The https connection failed: bad or self-signed certificate, or not an https server."""


class EngineAuthError(RemoteEngineError):
    """The server answered 401/403: the API key is missing, wrong or not allowed."""


class EngineModelNotFoundError(RemoteEngineError):
    """The server does not serve the model asked for."""


class EngineContextOverflowError(RemoteEngineError, ContextOverflowError):
    """The server said the prompt does not fit its context."""


class EngineTimeoutError(RemoteEngineError):
    """The server stopped answering for longer than the time allowed."""


class EngineStreamCutError(RemoteEngineError):
    """The connection dropped in the middle of a reply."""


class EngineProtocolError(RemoteEngineError):
    """The server answered something this kind of engine never sends (wrong kind or URL)."""
