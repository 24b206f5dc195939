"""API server benchmarks (`make bench`): the API vs the CLI path, same run; /v1/models overhead."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from app.chat.bench import BENCH_PROMPT
from app.chat.service import ChatService
from app.engine.engine import LlamaEngine
from app.engine.owner import EngineOwner, Ticket
from app.engine.types import Message
from app.server.config import ServerConfig
from app.server.runner import ApiServer
from app.settings import AppSettings

RUNS = 9
CLIENT = Path(__file__).with_name("api_client.py")
MAX_TOKENS = 128
SAMPLING = {"max_tokens": MAX_TOKENS, "seed": 7, "temperature": 0.8}


@pytest.fixture(scope="module")
def rig(starter_model: Path) -> Iterator[tuple[EngineOwner[ChatService], ApiServer]]:
    settings = AppSettings()
    owner: EngineOwner[ChatService] = EngineOwner(
        lambda: ChatService(LlamaEngine(), settings=lambda: settings, history=False))
    owner.call(owner.resource.load_model, str(starter_model),
               overrides={"n_ctx": 4096, "n_gpu_layers": 0})
    server = ApiServer(owner, ServerConfig(port=0))
    server.start()
    yield owner, server
    server.stop()
    owner.close(30)


def _reset(owner: EngineOwner[ChatService]) -> None:
    """Each run reads the whole prompt (no KV reuse from the run before)."""
    engine = owner.resource.engine
    assert isinstance(engine, LlamaEngine)
    owner.call(engine.reset_context)


def cli_run(owner: EngineOwner[ChatService]) -> tuple[float, float, int]:
    """As `llama-desk chat` does: start the reply on the owner, stream it here."""
    _reset(owner)
    ticket = Ticket()
    started = time.monotonic()
    reply = owner.call(lambda: owner.resource.complete([Message("user", BENCH_PROMPT)],
                                                       overrides=SAMPLING, ticket=ticket))
    first = last = 0.0
    for _ in owner.stream(reply, on_interrupt=ticket.cancel):
        last = time.monotonic()
        first = first or last
    tokens = reply.result.generated_tokens
    return first - started, (tokens - 1) / (last - first), tokens


BODY = {"messages": [{"role": "user", "content": BENCH_PROMPT}], "stream": True,
        "stream_options": {"include_usage": True}, **SAMPLING}


class Client:
    """The API's client in its own process (as editors, scripts and agents are)."""

    def __init__(self, url: str) -> None:
        self.proc = subprocess.Popen([sys.executable, str(CLIENT), url], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        assert json.loads(self._line())["ready"] == 200

    def _line(self) -> str:
        assert self.proc.stdout is not None
        return self.proc.stdout.readline()

    def run(self, owner: EngineOwner[ChatService], body: dict[str, Any] = BODY
            ) -> tuple[float, float, int]:
        """The same prompt through /v1/chat/completions, streamed, timed at the client."""
        _reset(owner)
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(body) + "\n")
        self.proc.stdin.flush()
        times = json.loads(self._line())
        tokens = times["tokens"]
        return (times["first"] - times["sent"], (tokens - 1) / (times["last"] - times["first"]),
                tokens)

    def models(self, n: int) -> list[float]:
        """Seconds each of ``n`` GET /v1/models took, seen from the client."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"models": n}) + "\n")
        self.proc.stdin.flush()
        return [float(x) for x in json.loads(self._line())]

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(30)


def test_api_decode_and_ttft_vs_cli(rig: tuple[EngineOwner[ChatService], ApiServer]) -> None:
    owner, server = rig
    cli: list[tuple[float, float, int]] = []
    api: list[tuple[float, float, int]] = []
    client = Client(server.url)
    try:
        client.run(owner)  # warm both paths once
        cli_run(owner)
        for _ in range(RUNS):  # alternating, so a slow moment on a shared machine hits both
            cli.append(cli_run(owner))
            api.append(client.run(owner))
    finally:
        client.close()
    cli_tps, api_tps = statistics.median(r[1] for r in cli), statistics.median(r[1] for r in api)
    cli_ttft, api_ttft = statistics.median(r[0] for r in cli), statistics.median(r[0] for r in api)
    print(f"\n[api] {RUNS} alternating runs of up to {MAX_TOKENS} tokens, starter model, CPU; "
          f"tokens per run: CLI {sorted({r[2] for r in cli})}, API {sorted({r[2] for r in api})}")
    print(f"[api] decode: CLI {cli_tps:.1f} tok/s, API {api_tps:.1f} tok/s, "
          f"ratio API/CLI {api_tps / cli_tps:.3f} (target >= 0.95)")
    print(f"[api] TTFT: CLI {cli_ttft * 1000:.1f} ms, API {api_ttft * 1000:.1f} ms, "
          f"ratio CLI/API {cli_ttft / api_ttft:.3f} (target >= 0.95)")
    print(f"[api] runs CLI (ms, tok/s) {[(round(t * 1000), round(s, 1)) for t, s, _ in cli]}")
    print(f"[api] runs API (ms, tok/s) {[(round(t * 1000), round(s, 1)) for t, s, _ in api]}")
    assert [r[2] for r in cli] == [r[2] for r in api]  # the same reply both ways
    assert api_tps / cli_tps >= 0.95
    assert cli_ttft / api_ttft >= 0.95


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[int(len(ordered) * 0.99) - 1]


def test_models_request_overhead(rig: tuple[EngineOwner[ChatService], ApiServer]) -> None:
    _owner, server = rig
    client = Client(server.url)
    try:
        client.models(50)  # warm up
        idle = client.models(1000)
        # Again while a reply streams on the engine: the list never waits for the model.
        done = threading.Event()

        def stream() -> None:
            body = {**BODY, "max_tokens": 64}
            with httpx2.Client(base_url=server.url, timeout=120) as other:
                while not done.is_set():
                    with other.stream("POST", "/chat/completions", json=body) as response:
                        for _ in response.iter_lines():
                            pass

        thread = threading.Thread(target=stream)
        thread.start()
        time.sleep(0.5)
        busy = client.models(300)
        done.set()
        thread.join(120)
    finally:
        client.close()
    p50, p99 = _percentiles(idle)
    b50, b99 = _percentiles(busy)
    print(f"\n[api-models] GET /v1/models, another process, keep-alive, 1000 requests: "
          f"p50 {p50 * 1000:.2f} ms, p99 {p99 * 1000:.2f} ms; while a reply streams (300): "
          f"p50 {b50 * 1000:.2f} ms, p99 {b99 * 1000:.2f} ms")
    assert p50 < 0.05  # a loose sanity bound: the figures themselves go in the README
