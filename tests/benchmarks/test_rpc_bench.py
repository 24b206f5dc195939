"""RPC benchmark (`make bench`): decode on two loopback `llama-desk worker`s vs on this machine alone.

On one machine RPC can only be slower (every token crosses loopback TCP to each worker and back);
the point is an honest ratio, the cost of the engine process that isolates RPC, and how many
network round trips one token costs, counted from rpc-server's own debug log (GGML_RPC_DEBUG).
"""

from __future__ import annotations

import os
import re
import statistics
import time
from collections import Counter
from pathlib import Path
from typing import Any

from app.chat.bench import BENCH_PROMPT
from app.engine import rpc, tools
from app.engine.engine import LlamaEngine, LoadOptions
from app.engine.isolated import IsolatedEngine
from app.engine.types import Message, Sampling
from tests.workers import Worker, require_tool

RUNS, TOKENS = 7, 128
SAMPLING = Sampling(max_tokens=TOKENS, seed=1234, temperature=0.7)
MESSAGES = [Message("user", BENCH_PROMPT)]
# Server commands that send a reply back (a network round trip); the others are one-way.
ROUND_TRIP = {"get_tensor", "copy_tensor", "alloc_buffer", "get_alloc_size", "buffer_get_base",
              "get_alignment", "get_max_size", "set_tensor_hash", "get_device_memory", "hello"}
_COMMAND = re.compile(r"^\[(\w+)\]")


def run(engine: Any) -> tuple[float, float, int]:
    gen = engine.generate(MESSAGES, SAMPLING)
    gen.text()
    result = gen.result
    return result.tokens_per_s, result.ttft_s, result.generated_tokens


def commands(worker: Worker) -> Counter[str]:
    return Counter(m.group(1) for line in worker.errors if (m := _COMMAND.match(line)))


def loopback_rtt(endpoint: str, n: int = 200) -> float:
    """Median seconds of one small RPC request/response (DEVICE_COUNT) over loopback."""
    import socket
    import struct

    host, port = endpoint.rsplit(":", 1)
    with socket.create_connection((host, int(port))) as sock:
        rpc._command(sock, 14, bytes(24), 28)
        times = []
        for _ in range(n):
            started = time.perf_counter()
            struct.unpack("<I", rpc._command(sock, 15, b"", 4))
            times.append(time.perf_counter() - started)
    return statistics.median(times)


def test_rpc_two_loopback_workers_vs_local(starter_model: Path) -> None:
    require_tool(tools.RPC_SERVER)
    threads = max(1, (os.cpu_count() or 2) // 2)
    local_opts = LoadOptions(n_ctx=2048, n_gpu_layers=0, n_threads=threads)
    debug_env = dict(os.environ, GGML_RPC_DEBUG="1")
    with Worker(None, "--threads", str(threads), env=debug_env) as a, \
            Worker(None, "--threads", str(threads), env=debug_env) as b:
        rtt = loopback_rtt(a.endpoint)
        a.wait_for("client disconnected")
        remote_opts = LoadOptions(n_ctx=2048, n_gpu_layers=-1, n_threads=threads,
                                  rpc_servers=(a.endpoint, b.endpoint))
        local, isolated, remote = LlamaEngine(), IsolatedEngine(), IsolatedEngine()
        local.load(starter_model, local_opts)
        isolated.load(starter_model, local_opts)
        started = time.perf_counter()
        remote.load(starter_model, remote_opts)
        load_s = time.perf_counter() - started
        figures: dict[str, list[tuple[float, float, int]]] = {"local": [], "isolated": [], "rpc": []}
        per_token: list[dict[str, float]] = []
        try:
            for _ in range(RUNS):  # alternate, so a slow moment on a shared machine hits all three
                figures["local"].append(run(local))
                figures["isolated"].append(run(isolated))
                before = [commands(w) for w in (a, b)]
                figures["rpc"].append(run(remote))
                n = figures["rpc"][-1][2]
                after = [commands(w) for w in (a, b)]
                per_token.append({
                    "commands": sum(sum((x - y).values()) for x, y in zip(after, before, strict=True)) / n,
                    "round_trips": sum(sum(v for k, v in (x - y).items() if k in ROUND_TRIP)
                                       for x, y in zip(after, before, strict=True)) / n,
                })
        finally:
            local.close()
            isolated.close()
            remote.close()
    tps = {k: statistics.median(r[0] for r in v) for k, v in figures.items()}
    ttft = {k: statistics.median(r[1] for r in v) for k, v in figures.items()}
    kinds = after[0] - before[0]
    print(f"\n[rpc] starter model, {RUNS} alternating runs of up to {TOKENS} tokens, {threads} "
          f"thread(s) per process; model load on 2 workers {load_s:.1f} s")
    for name in ("local", "isolated", "rpc"):
        print(f"[rpc] {name:8} decode {tps[name]:6.1f} tok/s, TTFT {ttft[name] * 1000:5.0f} ms "
              f"(runs {[round(r[0], 1) for r in figures[name]]})")
    print(f"[rpc] ratio rpc/local = {tps['rpc'] / tps['local']:.3f}; engine process alone "
          f"(isolated/local) = {tps['isolated'] / tps['local']:.3f}")
    commands_per_token = statistics.median(p["commands"] for p in per_token)
    print(f"[rpc] per token, both workers together: {commands_per_token:.1f} "
          f"RPC commands, {statistics.median(p['round_trips'] for p in per_token):.1f} round trips "
          f"(worker a's commands in the last run: {dict(kinds)}); loopback RPC round trip "
          f"{rtt * 1e6:.0f} µs")
    assert tps["rpc"] > 0 and all(r[2] > 10 for v in figures.values() for r in v)
