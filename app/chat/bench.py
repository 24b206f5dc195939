"""Speed measurements shared by `llama-desk bench` and tests/benchmarks: engine vs raw llama_cpp."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.engine.engine import Engine, LoadOptions, load_llama
from app.engine.types import Message, Sampling

BENCH_PROMPT = "Write a long, detailed story about a llama who learns to sail across the ocean."


@dataclass
class DecodeBench:
    """Decode speed of the engine, and of raw ``llama_cpp.Llama`` run alternately in one process."""

    engine_tps: list[float] = field(default_factory=list)
    raw_tps: list[float] = field(default_factory=list)
    engine_ttft: list[float] = field(default_factory=list)
    prompt_tokens: int = 0
    tokens: list[int] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        return statistics.median(self.engine_tps) / statistics.median(self.raw_tps)


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


def decode_bench(path: Path, options: LoadOptions, *, runs: int = 5, max_tokens: int = 128,
                 vs_raw: bool = True) -> DecodeBench:
    """Alternate engine and raw runs with identical settings, prompt tokens and seed."""
    sampling = Sampling(max_tokens=max_tokens, seed=1234, temperature=0.7)
    messages = [Message("user", BENCH_PROMPT)]
    engine = Engine()
    info = engine.load(path, options)
    raw = load_llama(info.path, options, info.n_gpu_layers) if vs_raw else None
    out = DecodeBench()
    try:
        for _ in range(runs):
            engine._llm.reset()  # no KV reuse: both sides evaluate the same prompt from scratch
            gen = engine.generate(messages, sampling)
            gen.text()
            out.engine_tps.append(gen.result.tokens_per_s)
            out.engine_ttft.append(gen.result.ttft_s)
            out.prompt_tokens = gen.result.prompt_tokens
            out.tokens.append(gen.result.generated_tokens)
            if raw is not None:
                tps, n = _raw_run(raw, gen.prompt.tokens, sampling)
                out.raw_tps.append(tps)
                out.tokens.append(n)
    finally:
        engine.close()
        if raw is not None:
            raw.close()
    return out


def ttft_by_turn(path: Path, options: LoadOptions, *, turns: int = 20, max_tokens: int = 48
                 ) -> list[float]:
    """Time to first token of each turn of one growing conversation (KV cache reused)."""
    engine = Engine()
    engine.load(path, options)
    messages = [Message("system", "You are a helpful assistant. Keep answers short.")]
    ttfts = []
    try:
        for turn in range(turns):
            messages.append(Message("user", f"Question {turn + 1}: name an animal and one fact "
                                            "about it."))
            gen = engine.generate(messages, Sampling(max_tokens=max_tokens, seed=turn))
            messages.append(Message("assistant", gen.text()))
            ttfts.append(gen.result.ttft_s)
    finally:
        engine.close()
    return ttfts
