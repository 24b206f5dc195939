"""`llama-desk worker`: lend this machine's devices to another Llama Desk through llama.cpp's rpc-server."""

from __future__ import annotations

import argparse
import signal
import sys
from typing import Any

from app.errors import UserError

PREFIX = "llama-desk worker:"


def register(sub: Any) -> None:
    p = sub.add_parser(
        "worker", help="serve this machine's CPU/GPU to another Llama Desk (llama.cpp RPC)",
        description="Start llama.cpp's rpc-server (built from the same llama.cpp as this app) so "
        "another machine can offload model layers here with `chat --rpc HOST:PORT` or the Workers "
        "setting. RPC is unauthenticated: the worker binds 127.0.0.1 unless told otherwise.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=50052, help="port to listen on (default 50052)")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads for the CPU device (default: half the cores, llama.cpp's choice)")
    p.add_argument("--mem", type=int, default=None, metavar="MiB",
                   help="most memory rpc-server may take on this machine (allocations past it "
                        "fail, so the client's load fails cleanly instead of swapping)")
    p.add_argument("--cache", action="store_true",
                   help="keep large tensors in llama.cpp's local cache (faster repeated loads)")
    p.add_argument("--i-understand-rpc-is-unauthenticated", dest="unauthenticated_ok",
                   action="store_true",
                   help="allow binding an address other than loopback (anyone who reaches the "
                        "port can use this machine)")
    p.set_defaults(func=run)


def say(text: str, *, err: bool = False) -> None:
    """One whole line (written at once: a Ctrl+C can never cut it from its newline)."""
    stream = sys.stderr if err else sys.stdout
    stream.write(f"{PREFIX} {text}\n")
    stream.flush()


def run(args: argparse.Namespace) -> int:
    from app.engine.rpc import UNAUTHENTICATED_WARNING
    from app.engine.rpc_worker import WorkerConfig, WorkerProcess
    from app.netaddr import is_loopback

    config = WorkerConfig(host=args.host, port=args.port, threads=args.threads, mem_mib=args.mem,
                          cache=args.cache, unauthenticated_ok=args.unauthenticated_ok)
    config.check()
    if not is_loopback(config.host):
        say(UNAUTHENTICATED_WARNING, err=True)

    def on_term(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_term)
    worker = WorkerProcess(config)
    try:
        for event in worker.events():
            if event.kind == "listening":
                say(event.text)
            elif event.kind == "connected":
                say(f"client connected ({event.text} so far)")
            elif event.kind == "disconnected":
                say("client disconnected")
            elif event.kind == "log":
                print(event.text, file=sys.stderr, flush=True)
            elif event.kind == "exited":
                if worker.returncode in (-signal.SIGINT, -signal.SIGTERM):
                    break  # Ctrl+C reaches rpc-server too (same process group)
                raise UserError(f"rpc-server stopped: {event.text}")
    except KeyboardInterrupt:
        pass
    finally:
        worker.stop()
        signal.signal(signal.SIGTERM, previous)
    say(f"stopped ({worker.clients} client connection(s) served)")
    return 0
