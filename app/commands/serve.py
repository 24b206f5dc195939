"""`llama-desk serve`: the local OpenAI-compatible API on the chat service, until Ctrl+C."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from app.errors import UserError

if TYPE_CHECKING:
    from app.engine.protocol import Engine
    from app.server.runner import ApiServer


def register(sub: Any) -> None:
    from app.commands.chat import add_load_flags
    from app.server.config import DEFAULT_HOST, DEFAULT_PORT

    p = sub.add_parser(
        "serve", help="serve the model to other programs through an OpenAI-compatible API",
        description="Load the model and answer OpenAI-compatible requests (/v1/models, "
        "/v1/chat/completions, /v1/completions, /health) until Ctrl+C. Prints the base URL "
        "once it listens. Only this machine can connect unless --host says otherwise, which "
        "needs an API key. A request naming another installed model loads it.",
    )
    p.add_argument("-m", "--model", help="installed model name, or a path to a .gguf file")
    p.add_argument("--host", default=DEFAULT_HOST,
                   help=f"address to listen on (default {DEFAULT_HOST}: this machine only; "
                   "0.0.0.0 for every interface, which needs --api-key-stdin)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT,
                   help=f"port (default {DEFAULT_PORT}; 0 picks a free one)")
    p.add_argument("--api-key-stdin", action="store_true",
                   help="read the API key from the first line of stdin; every request must "
                   "then send `Authorization: Bearer KEY`")
    p.add_argument("--cors-origin", action="append", default=[], metavar="ORIGIN",
                   help="a web origin allowed to call the API from a browser, like "
                   "http://localhost:3000 (repeat for more; * needs a key)")
    p.add_argument("--save-history", action="store_true", default=None,
                   help="store each chat request as a conversation in the history (default: "
                   "the app setting, off unless turned on)")
    add_load_flags(p)
    p.set_defaults(func=run)


def read_key(stream: Any) -> str:
    """The key from the first line of ``stream`` (never from the command line: `ps` shows it)."""
    line = stream.readline()
    if not line.strip():
        raise UserError("--api-key-stdin read no key: pipe it in, e.g. "
                        "`llama-desk serve --api-key-stdin < keyfile`.")
    return str(line).strip()


@contextlib.contextmanager
def _sigterm_stops() -> Iterator[None]:
    """SIGTERM (a service manager's stop) ends serving like Ctrl+C does."""
    def stop(_sig: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, stop)
    except ValueError:  # not the main thread (tests): nothing to install
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run(args: argparse.Namespace) -> int:
    return run_serve(args)


def run_serve(args: argparse.Namespace, engine_factory: Callable[[], Engine] | None = None,
              *, ready: Callable[[ApiServer], None] | None = None,
              until: Callable[[], bool] | None = None) -> int:
    """Serve until Ctrl+C/SIGTERM (or until ``until()`` is true: tests). ``ready`` hears the
    running server once its URL is printed."""
    from app import settings as app_settings
    from app.chat.service import ChatService
    from app.commands.chat import load_overrides
    from app.engine.engine import LlamaEngine
    from app.engine.owner import EngineOwner
    from app.server.config import ServerConfig
    from app.server.runner import ApiServer

    key = read_key(sys.stdin) if args.api_key_stdin else None
    config = ServerConfig(host=args.host, port=args.port, api_key=key,
                          cors_origins=tuple(args.cors_origin), switch_models=True).checked()
    settings = app_settings.load()
    save = settings.api_save_history if args.save_history is None else args.save_history
    make_engine = engine_factory or LlamaEngine
    owner: EngineOwner[ChatService] = EngineOwner(
        lambda: ChatService(make_engine(), settings=lambda: settings), name="api-engine")
    server: ApiServer | None = None
    try:
        info = owner.call(owner.resource.load_model, args.model, overrides=load_overrides(args))
        server = ApiServer(owner, config, save_history=lambda: save)
        url = server.start()
        print(f"Serving {info.name} ({info.n_ctx:,}-token context); "
              f"{'a key is required' if key else 'no key'}; "
              f"{'requests are saved to the history' if save else 'nothing is saved'}; "
              "Ctrl+C stops.", file=sys.stderr)
        print(url, flush=True)
        if ready is not None:
            ready(server)
        with _sigterm_stops():
            try:
                while server.wait(0.2) and not (until is not None and until()):
                    pass
            except KeyboardInterrupt:
                print("Stopping…", file=sys.stderr)
        if server.error:
            raise UserError(f"The API server stopped: {server.error}")
        return 0
    finally:
        if server is not None:
            server.stop()
        owner.close()
