"""The engine on real models: streaming, stop, trimming, KV reuse, UTF-8 and the Llama-2 path."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from app.engine.engine import LlamaEngine, LoadOptions
from app.engine.types import Message, Sampling
from app.errors import ContextOverflowError, SettingsError, UserError
from tests.engine.test_formats import reference_chat_completion_tokens

pytestmark = pytest.mark.slow
SYSTEM = Message("system", "You are a helpful assistant who always answers in English.")


def test_reply_streams_in_chunks_with_stats(starter_engine: LlamaEngine) -> None:
    gen = starter_engine.generate([SYSTEM, Message("user", "Name three colours.")],
                                  Sampling(max_tokens=40, seed=7))
    chunks = list(gen)
    result = gen.result
    assert len(chunks) > 3 and all(isinstance(c, str) and c for c in chunks)
    assert "".join(chunks) == result.text and result.text.strip()
    assert result.finish_reason in ("stop", "length")
    assert result.prompt_tokens == len(gen.prompt.tokens) > 10
    assert 0 < result.generated_tokens <= 40
    assert result.ttft_s > 0 and result.tokens_per_s > 0
    assert result.model_path.endswith(".gguf")
    assert starter_engine.last_prompt is gen.prompt
    assert gen.prompt.text.startswith("<|im_start|>system\nYou are a helpful")


def test_same_seed_same_reply_and_length_limit(starter_engine: LlamaEngine) -> None:
    msgs = [Message("user", "Tell me a long story about a llama.")]
    a = starter_engine.generate(msgs, Sampling(max_tokens=12, seed=3, temperature=1.0))
    text_a = a.text()
    b = starter_engine.generate(msgs, Sampling(max_tokens=12, seed=3, temperature=1.0))
    assert b.text() == text_a
    assert a.result.finish_reason == "length" and a.result.generated_tokens == 12


def test_stop_mid_reply_then_next_request_works(starter_engine: LlamaEngine) -> None:
    gen = starter_engine.generate([Message("user", "Write a very long essay about the sea.")],
                                  Sampling(max_tokens=3000, seed=1, temperature=1.0))
    received = []
    for i, chunk in enumerate(gen):
        received.append(chunk)
        if i == 4:
            threading.Thread(target=starter_engine.cancel).start()
            time.sleep(0.05)
    result = gen.result
    assert result.finish_reason == "cancelled"
    assert 5 <= result.generated_tokens <= 7  # stopped within one token of the flag
    assert result.text == "".join(received)
    after = starter_engine.generate([Message("user", "Say hello.")], Sampling(max_tokens=8, seed=1))
    assert after.text() and after.result.finish_reason in ("stop", "length")


def test_cancel_interrupts_long_prompt_evaluation(starter_engine: LlamaEngine) -> None:
    long_text = " ".join(f"fact {i} is that llamas hum." for i in range(150))  # ~1,750 tokens
    gen = starter_engine.generate([Message("user", long_text)], Sampling(max_tokens=16, seed=1))
    timer = threading.Timer(0.2, starter_engine.cancel)
    started = time.perf_counter()
    timer.start()
    assert gen.text() == ""
    elapsed = time.perf_counter() - started
    assert gen.result.finish_reason == "cancelled" and gen.result.generated_tokens == 0
    # llama.cpp stopped part-way through the prompt: fewer tokens are in the KV cache than sent.
    assert starter_engine._llm.n_tokens < gen.result.prompt_tokens
    assert elapsed < 3.0, elapsed
    after = starter_engine.generate([Message("user", "Hi")], Sampling(max_tokens=4, seed=1))
    assert after.text() and after.result.finish_reason in ("stop", "length")


def test_abandoning_iteration_reports_cancelled(starter_engine: LlamaEngine) -> None:
    gen = starter_engine.generate([Message("user", "Count to fifty.")], Sampling(max_tokens=200))
    it = iter(gen)
    next(it)
    gen.close()
    assert gen.result.finish_reason == "cancelled"


def test_turn_two_reuses_the_kv_cache(starter_engine: LlamaEngine) -> None:
    msgs = [SYSTEM, Message("user", "What is a llama? Answer in two sentences.")]
    one = starter_engine.generate(msgs, Sampling(max_tokens=60, seed=5))
    reply = one.text()
    r1 = one.result
    msgs += [Message("assistant", reply), Message("user", "And an alpaca?")]
    two = starter_engine.generate(msgs, Sampling(max_tokens=20, seed=5))
    two.text()
    ratio = two.result.reused_tokens / (r1.prompt_tokens + r1.generated_tokens)
    assert ratio >= 0.90, ratio


def test_over_long_history_is_trimmed_keeping_system(starter_model: Path) -> None:
    engine = LlamaEngine()
    engine.load(starter_model, LoadOptions(n_ctx=512, n_gpu_layers=0))
    try:
        msgs = [SYSTEM]
        for i in range(20):
            msgs += [Message("user", f"Tell me fact number {i} about llamas, please."),
                     Message("assistant", f"Fact {i}: llamas are members of the camel family.")]
        msgs.append(Message("user", "Summarise."))
        gen = engine.generate(msgs, Sampling(max_tokens=64, seed=1))
        gen.text()
        assert gen.result.dropped_messages > 0 and gen.result.dropped_messages % 2 == 0
        assert len(gen.prompt.tokens) <= 512 - 64
        assert gen.prompt.text.startswith("<|im_start|>system\nYou are a helpful assistant who")
        assert "Summarise." in gen.prompt.text and "fact number 0 " not in gen.prompt.text
        with pytest.raises(ContextOverflowError, match="448"):
            engine.generate([Message("user", "llama " * 600)], Sampling(max_tokens=64))
        with pytest.raises(SettingsError, match="below the context size"):
            engine.generate([Message("user", "hi")], Sampling(max_tokens=600))
    finally:
        engine.close()


def test_split_utf8_characters_are_held_back(starter_engine: LlamaEngine, monkeypatch: Any) -> None:
    llm = starter_engine._llm
    target = "Llama 🦙 café 日本"
    tokens = llm.tokenize(target.encode(), add_bos=False, special=False)
    # Byte-level BPE splits the emoji over several tokens: some pieces are not valid UTF-8 alone.
    pieces = [llm.detokenize([t]) for t in tokens]
    assert any(_invalid_utf8(p) for p in pieces)
    real_generate = llm.generate

    def scripted(prompt: Any, **kw: Any) -> Any:
        for _ in real_generate(prompt, **kw):
            break
        yield from [*tokens, llm.token_eos()]

    monkeypatch.setattr(llm, "generate", scripted)
    gen = starter_engine.generate([Message("user", "x")], Sampling(max_tokens=50))
    chunks = list(gen)
    assert "".join(chunks) == target
    assert all("\ufffd" not in c for c in chunks)
    assert gen.result.finish_reason == "stop"


def _invalid_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def test_llama2_gguf_without_template_uses_reference_format(tiny_llama2: Path, spm_llama: Any) -> None:
    engine = LlamaEngine()
    info = engine.load(tiny_llama2, LoadOptions(n_ctx=1024, n_gpu_layers=0))
    try:
        assert info.format_name == "llama-2" and info.name == "LLaMA v2"
        dialog = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                  {"role": "assistant", "content": "Hello there"},
                  {"role": "user", "content": "[INST] nested? [/INST]"}]
        gen = engine.generate([Message(m["role"], m["content"]) for m in dialog],  # type: ignore[arg-type]
                              Sampling(max_tokens=5, seed=1))
        gen.text()
        assert engine.last_prompt is not None
        assert engine.last_prompt.tokens == reference_chat_completion_tokens(dialog, spm_llama)
        assert gen.result.prompt_tokens == len(engine.last_prompt.tokens)
        assert gen.result.generated_tokens >= 1
    finally:
        engine.close()


def test_no_model_and_switching(starter_model: Path, tiny_llama2: Path) -> None:
    engine = LlamaEngine()
    with pytest.raises(UserError, match="No model is loaded"):
        engine.generate([Message("user", "hi")])
    engine.load(starter_model, LoadOptions(n_ctx=512, n_gpu_layers=0))
    first = engine._llm
    engine.load(tiny_llama2, LoadOptions(n_ctx=512, n_gpu_layers=0))
    assert first._ctx.ctx is None and first._model.model is None  # previous model freed
    assert engine.info is not None and engine.info.format_name == "llama-2"
    engine.close()
    engine.close()
    assert not engine.loaded
