"""Speed measurements shared by `llama-desk bench` and tests/benchmarks: the app vs raw llama_cpp."""

from __future__ import annotations

import statistics
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.chat.service import ChatService
from app.engine.engine import LlamaEngine, load_llama
from app.engine.types import Message, Sampling
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


def prompt_text(engine: LlamaEngine, n_prompt: int) -> str:
    """A user message whose prompt holds at most (about) ``n_prompt`` tokens."""
    text = " ".join(f"w{i % 97}" for i in range(n_prompt))
    while len(engine.prepare([Message("user", text)], Sampling(max_tokens=1)).tokens) \
            > n_prompt and len(text) > 10:
        text = text[: int(len(text) * 0.97)]
    return text


def prompt_run(service: ChatService, text: str) -> tuple[float, int]:
    """(tokens/s, prompt tokens) of reading ``text``'s prompt from an empty context."""
    engine = service.engine
    assert isinstance(engine, LlamaEngine)
    engine.reset_context()
    reply = service.complete([Message("user", text)], overrides={"max_tokens": 1, "seed": 1})
    reply.text()
    result = reply.result
    return (result.prompt_tokens - result.reused_tokens) / result.prompt_s, result.prompt_tokens


def decode_run(service: ChatService, max_tokens: int = 128) -> float:
    """Decode tokens/s of one reply to BENCH_PROMPT from an empty context."""
    engine = service.engine
    assert isinstance(engine, LlamaEngine)
    engine.reset_context()
    reply = service.complete([Message("user", BENCH_PROMPT)],
                             overrides={"max_tokens": max_tokens, "seed": 1234,
                                        "temperature": 0.7})
    reply.text()
    return reply.result.tokens_per_s


def prompt_bench(model: str | Path, overrides: Mapping[str, Any] | None = None, *,
                 runs: int = 3, n_prompt: int = 512,
                 settings: AppSettings | None = None) -> tuple[list[float], int]:
    """Prompt reading speed (tokens/s) through the chat service: a prompt of about
    ``n_prompt`` tokens read from an empty context each run; also returns its token count."""
    service = _service(settings)
    service.load_model(str(model), overrides=overrides)
    engine = service.engine
    assert isinstance(engine, LlamaEngine)
    speeds: list[float] = []
    tokens = 0
    try:
        text = prompt_text(engine, n_prompt)
        for _ in range(runs):
            speed, tokens = prompt_run(service, text)
            speeds.append(speed)
    finally:
        service.close()
    return speeds, tokens


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
