"""Remote-engine benchmark (`make bench`): a reply through the app vs the same request sent straight
to the same llama-server, alternating, in one run.

Both sides are timed the same way, on this side of the HTTP connection: TTFT from the moment the
reply is asked for (the app: ``generate`` + first iteration, so its prompt rendering and the
/tokenize call of the new message count; direct: the POST) to the first text, and decode tok/s
from the first to the last token. The direct client keeps its connection alive; the app opens one
per reply (that is how Stop closes it). Each side gets its own fresh question (same length), so
neither finds the other's prompt in the server's cache.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import httpx2 as httpx

from app.chat.bench import BENCH_PROMPT
from app.engine.remote.engine import RemoteEngine
from app.engine.remote.registry import EngineRef
from app.engine.types import Message, Sampling
from tests.engine.remote.servers import llama_server

RUNS, TOKENS = 7, 128
SAMPLING = Sampling(max_tokens=TOKENS, seed=1234, temperature=0.7)


def question(run: int, side: str) -> list[Message]:
    return [Message("system", "You are a storyteller."),
            Message("user", f"Story {run}{side}. {BENCH_PROMPT}")]


def through_app(engine: RemoteEngine, messages: list[Message]) -> tuple[float, float, int]:
    started = time.perf_counter()
    first = last = 0.0
    count = 0
    reply = engine.generate(messages, SAMPLING)
    for _ in reply:
        last = time.perf_counter()
        first = first or last
        count += 1
    return first - started, (count - 1) / (last - first), reply.result.generated_tokens


def direct(client: httpx.Client, tokens: list[int]) -> tuple[float, float, int]:
    body = {"prompt": tokens, "cache_prompt": True, "stream": True, "n_predict": TOKENS,
            "temperature": SAMPLING.temperature, "top_k": SAMPLING.top_k, "top_p": SAMPLING.top_p,
            "min_p": SAMPLING.min_p, "repeat_penalty": SAMPLING.repeat_penalty,
            "seed": SAMPLING.seed}
    started = time.perf_counter()
    first = last = 0.0
    count = generated = 0
    with client.stream("POST", "/completion", json=body) as response:
        for sse in httpx.EventSource(response):
            event = json.loads(sse.data)
            if event.get("content"):
                last = time.perf_counter()
                first = first or last
                count += 1
            generated = event.get("tokens_predicted", generated)
    return first - started, (count - 1) / (last - first), generated


def bench(model: Path, name: str) -> None:
    # One server thread: the client gets the other core, as if the server were another machine.
    with llama_server(model, "--alias", "bench", "-t", "1") as server:
        engine = RemoteEngine()
        engine.load(str(EngineRef(server.url)))
        client = httpx.Client(base_url=server.url, timeout=120)
        engine.generate(question(0, "w"), SAMPLING).text()  # warm both paths up
        direct(client, engine.prepare(question(0, "v"), SAMPLING).tokens)
        ttft: dict[str, list[float]] = {"app": [], "direct": []}
        tps: dict[str, list[float]] = {"app": [], "direct": []}
        prepare: list[float] = []
        for run in range(1, RUNS + 1):
            began = time.perf_counter()
            tokens = engine.prepare(question(run, "b"), SAMPLING).tokens  # for direct
            prepare.append(time.perf_counter() - began)  # what the app's TTFT includes too
            order = ("app", "direct") if run % 2 else ("direct", "app")
            for side in order:
                if side == "app":
                    t, rate, n = through_app(engine, question(run, "a"))
                else:
                    t, rate, n = direct(client, tokens)
                assert n > 16, f"{side} produced only {n} tokens"
                ttft[side].append(t)
                tps[side].append(rate)
        client.close()
        engine.close()
    med = {side: (statistics.median(ttft[side]), statistics.median(tps[side]))
           for side in ("app", "direct")}
    print(f"\n[remote] {name} on llama-server (127.0.0.1, 1 thread), {RUNS} alternating runs of "
          f"{TOKENS} tokens, prompt {len(tokens)} tokens")
    for side, (t, rate) in med.items():
        print(f"[remote] {side:7} TTFT {t * 1000:6.1f} ms, decode {rate:6.1f} tok/s")
    print(f"[remote] ratio app/direct: decode tok/s {med['app'][1] / med['direct'][1]:.3f}, "
          f"TTFT speed (direct TTFT / app TTFT) {med['direct'][0] / med['app'][0]:.3f}; the app's "
          f"prompt preparation (render + /tokenize of the new text) "
          f"{statistics.median(prepare) * 1000:.1f} ms of its TTFT")
    assert med["app"][1] > 0 and med["direct"][1] > 0


def test_remote_vs_direct_tiny_llama2(tiny_llama2: Path) -> None:
    bench(tiny_llama2, "tiny Llama-2 GGUF (llama-2 format)")


def test_remote_vs_direct_starter(starter_model: Path) -> None:
    bench(starter_model, "starter SmolLM2-135M (its chat template)")
