"""ApiServer: the API on uvicorn in a background thread, bound at start and stopped cleanly."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from app.errors import UserError
from app.server.config import ServerConfig, base_url
from app.server.dispatch import Dispatcher

if TYPE_CHECKING:
    import uvicorn

    from app.chat.service import ChatService
    from app.engine.owner import EngineOwner

log = logging.getLogger(__name__)
START_TIMEOUT_S = 15.0
GRACEFUL_S = 3


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host``:``port``; UserError saying what to do when it fails."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    except socket.gaierror:
        raise UserError(f"{host!r} is not an address or name of this machine.") from None
    sock = socket.socket(family, kind, proto)
    try:
        if os.name == "posix":  # rebind at once after a restart (on Windows it means sharing)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6 and host == "::":
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(address)
        sock.listen(128)
    except OSError as err:
        sock.close()
        if err.errno == errno.EADDRINUSE:
            raise UserError(f"Port {port} is already in use on {host} (another server, or Llama "
                            "Desk serving already); choose another port.") from None
        if err.errno in (errno.EACCES, errno.EPERM):
            raise UserError(f"Port {port} needs administrator rights; use a port above 1024.") \
                from None
        raise UserError(f"Cannot listen on {host} port {port}: {err.strerror}.") from None
    return sock


class ApiServer:
    """Serves the API for ``owner``'s chat service until ``stop()``.

    ``start()`` binds first, so a busy port or a refused config is a UserError there, then runs
    uvicorn on its own thread (uvicorn installs no signal handlers off the main thread; stopping
    is ``should_exit``). ``stop()`` cancels the API's requests and waits for the thread.
    """

    def __init__(self, owner: EngineOwner[ChatService], config: ServerConfig, *,
                 save_history: Callable[[], bool] = lambda: False,
                 on_stored: Callable[[int], None] | None = None) -> None:
        self.config = config.checked()
        self.dispatcher = Dispatcher(owner, max_waiting=self.config.max_waiting,
                                     switch_models=self.config.switch_models,
                                     save_history=save_history, on_stored=on_stored)
        self.port = 0
        self.error: str | None = None  # why the thread ended early, if it did
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return base_url(self.config.host, self.port)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> str:
        """Listen and serve; returns the base URL (``http://127.0.0.1:8765/v1``)."""
        import uvicorn

        from app.server.routes import build_app

        sock = bind(self.config.host, self.config.port)
        self.port = int(sock.getsockname()[1])
        app = build_app(self.dispatcher, self.config, self.port)
        self._server = uvicorn.Server(uvicorn.Config(
            app, host=self.config.host, port=self.port, http="h11", ws="none", lifespan="off",
            log_config=None, access_log=False, server_header=False,
            timeout_graceful_shutdown=GRACEFUL_S,
        ))
        self._thread = threading.Thread(target=self._serve, args=(self._server, sock),
                                        name="api-server", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._server.started and self._thread.is_alive() \
                and time.monotonic() < deadline:
            self._thread.join(0.01)
        if not self._server.started:
            self.stop()
            raise UserError(f"The API server could not start: {self.error or 'see the log'}.")
        log.info("API server listening on %s", self.url)
        return self.url

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the server to end; True while it still runs."""
        if self._thread is not None:
            self._thread.join(timeout)
        return self.running

    def _serve(self, server: uvicorn.Server, sock: socket.socket) -> None:
        try:
            asyncio.run(server.serve(sockets=[sock]))
        except BaseException as err:  # SystemExit from a failed start included
            self.error = f"{type(err).__name__}: {err}"
            log.exception("the API server stopped")
        finally:
            sock.close()

    def stop(self, timeout: float = GRACEFUL_S + 2) -> bool:
        """Stop serving (API requests are cancelled); True once the thread has ended."""
        self.dispatcher.cancel_all()
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is None:
            return True
        self._thread.join(timeout)
        if self._thread.is_alive() and self._server is not None:
            self._server.force_exit = True
            self._thread.join(2)
        stopped = not self._thread.is_alive()
        if stopped:
            log.info("API server stopped")
        return stopped
