"""Speed measurements shared by `llama-desk bench` and tests/benchmarks: the app vs raw llama_cpp
and vs llama.cpp's own llama-bench."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.chat.service import ChatService
from app.engine.engine import LlamaEngine, load_llama
from app.engine.types import LoadOptions, Message, Sampling
from app.settings import AppSettings

BENCH_PROMPT = "Write a long, detailed story about a llama who learns to sail across the ocean."


@dataclass
class DecodeBench:
    """Decode speed through the chat service, and of raw ``llama_cpp.Llama`` run alternately."""

    engine_tps: list[float] = field(default_factory=list)
    raw_tps: list[float] = field(default_factory=list)
    engine_ttft: list[float] = field(default_factory=list)
    prompt_tokens: int = 0
    tokens: list[int] = field(default_factory=list)
    model: str = ""
    threads: str = ""  # e.g. "2 threads (auto: 2 physical cores of 2 usable CPUs)"
    info: Any = None  # the ModelInfo loaded

    @property
    def ratio(self) -> float:
        return statistics.median(self.engine_tps) / statistics.median(self.raw_tps)


def _service(settings: AppSettings | None) -> ChatService:
    fixed = settings or AppSettings()
    return ChatService(LlamaEngine(), settings=lambda: fixed, history=False)


def _raw_run(llm: Any, tokens: list[int], sampling: Sampling) -> tuple[float, int]:
    """The plain llama-cpp-python loop: generate, stop at end-of-generation or max tokens."""
    import llama_cpp

    llm.reset()
    llm.set_seed(sampling.seed or 0)
    vocab = llm._model.vocab
    n = 0
    first = last = 0.0
    for token in llm.generate(tokens, top_k=sampling.top_k, top_p=sampling.top_p,
                              min_p=sampling.min_p, temp=sampling.temperature,
                              repeat_penalty=sampling.repeat_penalty, reset=True):
        if n == 0:
            first = time.perf_counter()
        if llama_cpp.llama_vocab_is_eog(vocab, token):
            break
        n += 1
        last = time.perf_counter()
        llm.detokenize([token])
        if n >= sampling.max_tokens:
            break
    return ((n - 1) / (last - first) if n > 1 else 0.0), n


def decode_bench(model: str | Path, overrides: Mapping[str, Any] | None = None, *,
                 runs: int = 5, max_tokens: int = 128, vs_raw: bool = True,
                 settings: AppSettings | None = None) -> DecodeBench:
    """Alternate app and raw runs with identical settings, prompt tokens and seed.

    The app side is a chat service reply, exactly what a face gets; its KV cache is reset
    before each run so both sides evaluate the same prompt from scratch.
    """
    request = {"max_tokens": max_tokens, "seed": 1234, "temperature": 0.7}
    messages = [Message("user", BENCH_PROMPT)]
    service = _service(settings)
    info = service.load_model(str(model), overrides=overrides)
    engine = service.engine
    assert isinstance(engine, LlamaEngine)
    raw = load_llama(info.path, engine.options, info.n_gpu_layers) if vs_raw else None
    out = DecodeBench(model=str(info.path), threads=describe_threads(info), info=info)
    try:
        for _ in range(runs):
            engine.reset_context()
            reply = service.complete(messages, overrides=request)
            reply.text()
            out.engine_tps.append(reply.result.tokens_per_s)
            out.engine_ttft.append(reply.result.ttft_s)
            out.prompt_tokens = reply.result.prompt_tokens
            out.tokens.append(reply.result.generated_tokens)
            if raw is not None:
                tps, n = _raw_run(raw, reply.prompt.tokens, reply.sampling)
                out.raw_tps.append(tps)
                out.tokens.append(n)
    finally:
        service.close()
        if raw is not None:
            raw.close()
    return out


def describe_threads(info: Any) -> str:
    """'2 threads for decode, 2 for prompts (auto: 2 physical cores of 2 usable CPUs)'."""
    return (f"{info.threads} thread{'s' if info.threads != 1 else ''} for decode, "
            f"{info.batch_threads} for prompts ({info.threads_why})")


def prompt_bench(model: str | Path, overrides: Mapping[str, Any] | None = None, *,
                 runs: int = 3, n_prompt: int = 512,
                 settings: AppSettings | None = None) -> tuple[list[float], int]:
    """Prompt reading speed (tokens/s) through the chat service: a prompt of about
    ``n_prompt`` tokens read from an empty context each run; also returns its token count."""
    service = _service(settings)
    service.load_model(str(model), overrides=overrides)
    engine = service.engine
    assert isinstance(engine, LlamaEngine)
    words = " ".join(f"w{i % 97}" for i in range(n_prompt))
    text = words
    speeds: list[float] = []
    tokens = 0
    try:  # trim the text until the rendered prompt holds n_prompt tokens at most
        while len(engine.prepare([Message("user", text)], Sampling(max_tokens=1)).tokens) \
                > n_prompt and len(text) > 10:
            text = text[: int(len(text) * 0.97)]
        for _ in range(runs):
            engine.reset_context()
            reply = service.complete([Message("user", text)],
                                     overrides={"max_tokens": 1, "seed": 1})
            reply.text()
            result = reply.result
            tokens = result.prompt_tokens
            speeds.append((result.prompt_tokens - result.reused_tokens) / result.prompt_s)
    finally:
        service.close()
    return speeds, tokens


def find_llama_bench() -> Path | None:
    """llama.cpp's llama-bench built from the same sdist (`make tools`), if it is there."""
    import importlib

    try:  # app.engine.tools (the `make tools` branch) knows every place it may be
        found = importlib.import_module("app.engine.tools").find_tool("llama-bench")
        return Path(found) if found else None
    except ImportError:
        pass
    root = Path(os.environ.get("LLAMA_DESK_BUILD_CACHE", "")
                or Path.home() / ".cache" / "llama-desk-build")
    import llama_cpp

    builds = sorted(root.glob(f"{llama_cpp.__version__}-*/bin/llama-bench"),
                    key=lambda p: -p.stat().st_mtime)
    return builds[0] if builds else None


@dataclass
class LlamaBench:
    """llama-bench's figures (tokens/s) per thread count."""

    pp: dict[int, float] = field(default_factory=dict)
    tg: dict[int, float] = field(default_factory=dict)
    command: list[str] = field(default_factory=list)

    def best(self) -> tuple[int, float, int, float]:
        """(threads, pp tok/s, threads, tg tok/s) at the best thread count of each."""
        pt = max(self.pp, key=lambda t: self.pp[t])
        gt = max(self.tg, key=lambda t: self.tg[t])
        return pt, self.pp[pt], gt, self.tg[gt]


def llama_bench(exe: Path, model: str | Path, info: Any, threads: Sequence[int], *,
                n_prompt: int = 512, n_gen: int = 128, reps: int = 3,
                timeout: float = 1800) -> LlamaBench:
    """Run llama-bench (pp ``n_prompt``, tg ``n_gen``) at each thread count with the app's
    other settings (GPU layers, batch size, KV type, flash attention)."""
    from app.engine.engine import uses_flash_attn

    options = LoadOptions(n_ctx=info.n_ctx, kv_type=info.kv_type)
    cmd = [str(exe), "-m", str(model), "-p", str(n_prompt), "-n", str(n_gen),
           "-t", ",".join(str(t) for t in threads), "-r", str(reps), "-o", "json",
           "-ngl", str(info.n_gpu_layers if info.n_gpu_layers >= 0 else 999),
           "-b", str(options.n_batch), "-ub", str(options.n_batch),
           "-ctk", info.kv_type, "-ctv", info.kv_type,
           "-fa", "1" if uses_flash_attn(options) else "0"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"llama-bench failed ({done.returncode}): {done.stderr[-500:]}")
    out = LlamaBench(command=cmd)
    for row in json.loads(done.stdout):
        speed, t = float(row["avg_ts"]), int(row["n_threads"])
        if row.get("n_prompt") and not row.get("n_gen"):
            out.pp[t] = speed
        elif row.get("n_gen") and not row.get("n_prompt"):
            out.tg[t] = speed
    return out


def ttft_by_turn(model: str | Path, overrides: Mapping[str, Any] | None = None, *,
                 turns: int = 20, max_tokens: int = 48) -> list[float]:
    """Time to first token of each turn of one growing conversation (KV cache reused)."""
    service = _service(None)
    service.load_model(str(model), overrides=overrides)
    messages = [Message("system", "You are a helpful assistant. Keep answers short.")]
    ttfts = []
    try:
        for turn in range(turns):
            messages.append(Message("user", f"Question {turn + 1}: name an animal and one fact "
                                            "about it."))
            reply = service.complete(messages, overrides={"max_tokens": max_tokens, "seed": turn})
            messages.append(Message("assistant", reply.text()))
            ttfts.append(reply.result.ttft_s)
    finally:
        service.close()
    return ttfts
