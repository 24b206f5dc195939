"""Kind vllm against a loopback vLLM emulator (a real Llama vocabulary): detection, reference
token ids sent as /v1/completions' prompt, streaming, stop, stats, errors."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.engine.engine import LlamaEngine
from app.engine.remote import registry
from app.engine.remote.engine import RemoteEngine
from app.engine.remote.errors import (
    EngineAuthError,
    EngineContextOverflowError,
    EngineProtocolError,
    RemoteEngineError,
)
from app.engine.remote.http import Connection
from app.engine.remote.probe import probe
from app.engine.types import Message, Sampling
from tests.engine.conftest import loaded_engine
from tests.engine.remote.vllm_server import VLLMEmulator

DIALOG = [
    Message("system", "Answer briefly, as a llama expert would."),
    Message("user", "Hello there, friend."),
    Message("assistant", "Hi! How can I help?"),
    Message("user", "Tell me about llamas.  "),
    Message("assistant", "They are camelids."),
    Message("user", "And alpacas?"),
]
SAMPLING = Sampling(temperature=0.0, max_tokens=24, seed=7)
MODEL = "meta-llama/Llama-2-7b-chat-hf"


@pytest.fixture
def vllm(spm_llama: Any) -> Iterator[VLLMEmulator]:
    server = VLLMEmulator(spm_llama)
    yield server
    server.close()


@pytest.fixture(scope="module")
def local_engine(tiny_llama2: Path) -> Iterator[LlamaEngine]:
    yield from loaded_engine(tiny_llama2, 2048)


def load(url: str, kind: str = "auto") -> RemoteEngine:
    registry.add_engine("gpu", url, kind=kind)
    engine = RemoteEngine()
    engine.load(f"engine:gpu/{MODEL}")
    return engine


def test_auto_detects_vllm_and_sends_the_local_engines_token_ids(
        vllm: VLLMEmulator, local_engine: LlamaEngine) -> None:
    engine = load(vllm.url)
    assert engine.kind == "vllm"
    info = engine.info
    assert info is not None and (info.format_name, info.n_ctx) == ("llama-2", 2048)
    for turns in (DIALOG[:2], DIALOG[:4], DIALOG):  # a system prompt, then more turns
        expected = local_engine.prepare(turns, SAMPLING).tokens
        reply = engine.generate(turns, SAMPLING)
        text = reply.text()
        assert vllm.prompts[-1] == expected == reply.prompt.tokens
        assert expected[0] == 1 and expected.count(2) == (len(turns) - 2) // 2
        assert engine.count_tokens(turns) == len(expected)
        assert text and text == reply.result.text and not text.startswith(" ")
    sent = vllm.bodies("/v1/completions")[-1]
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}
    assert sent["model"] == MODEL and sent["max_tokens"] == 24 and sent["seed"] == 7
    assert "repetition_penalty" in sent and "messages" not in sent
    # Each text piece was tokenized without special tokens added, and only once.
    assert all(body["add_special_tokens"] is False for body in vllm.bodies("/tokenize")[2:])
    before = len(vllm.bodies("/tokenize"))
    engine.generate(DIALOG, SAMPLING).text()
    assert len(vllm.bodies("/tokenize")) == before
    engine.close()


def test_stats_come_from_usage(vllm: VLLMEmulator) -> None:
    engine = load(vllm.url, kind="vllm")
    reply = engine.generate(DIALOG, SAMPLING)
    reply.text()
    result = reply.result
    assert result.finish_reason == "length"
    assert result.prompt_tokens == len(reply.prompt.tokens)
    assert result.generated_tokens == 24 and result.reused_tokens == 16
    assert result.ttft_s > 0 and result.tokens_per_s > 0
    engine.close()


def test_stop_mid_stream_closes_the_request(vllm: VLLMEmulator) -> None:
    vllm.delay_s = 0.01
    engine = load(vllm.url)
    reply = engine.generate(DIALOG, Sampling(max_tokens=1500, temperature=1.0))
    chunks = []
    for chunk in reply:
        chunks.append(chunk)
        if len(chunks) == 3:
            threading.Thread(target=engine.cancel).start()  # Stop comes from another thread
    assert reply.result.finish_reason == "cancelled"
    assert reply.result.text == "".join(chunks) and len(chunks) < 100
    assert vllm.disconnected.wait(10) and not vllm.finished.is_set()  # the server saw it close
    vllm.delay_s = 0.0
    assert engine.generate(DIALOG, SAMPLING).text()  # and the engine goes on
    engine.close()


def test_a_text_completion_sends_the_local_engines_ids(vllm: VLLMEmulator,
                                                       local_engine: LlamaEngine) -> None:
    text = "Once upon a time, a llama"
    expected = local_engine.generate_text(text, SAMPLING).prompt.tokens
    engine = load(vllm.url)
    reply = engine.generate_text(text, SAMPLING)
    assert reply.text() and vllm.prompts[-1] == expected == reply.prompt.tokens
    engine.close()


def test_error_answers_are_reported_as_for_other_engines(vllm: VLLMEmulator) -> None:
    engine = load(vllm.url)
    vllm.fail = (500, {"object": "error", "message": "CUDA out of memory",
                       "type": "InternalServerError", "param": None, "code": 500})
    with pytest.raises(RemoteEngineError, match=r"answered HTTP 500 to POST /v1/completions: CUDA out of"):
        engine.generate(DIALOG, SAMPLING).text()
    vllm.enforce_len = 40  # the server's real limit is below what it reported
    with pytest.raises(EngineContextOverflowError, match="does not fit its context"):
        engine.generate(DIALOG, SAMPLING).text()
    vllm.enforce_len = 2048
    assert engine.generate(DIALOG, SAMPLING).text()
    with pytest.raises(Exception, match="must be below the server's context size"):
        engine.generate(DIALOG, Sampling(max_tokens=4096))
    engine.close()


def test_api_key(spm_llama: Any, memory_keyring: Any) -> None:
    server = VLLMEmulator(spm_llama, api_key="vllm-key-123")
    try:
        registry.add_engine("keyed", server.url)
        with pytest.raises(EngineAuthError, match="needs an API key"):
            RemoteEngine().load("engine:keyed")
        registry.add_engine("keyed", server.url, key="vllm-key-123")
        engine = RemoteEngine()
        engine.load("engine:keyed")
        assert engine.kind == "vllm" and engine.generate(DIALOG, SAMPLING).text()
        engine.close()
    finally:
        server.close()


def test_detection_needs_both_facts_and_kind_vllm_is_checked(spm_llama: Any) -> None:
    other = VLLMEmulator(spm_llama, owned_by="organization-owner")
    unversioned = VLLMEmulator(spm_llama, version=False, owned_by="someone")
    try:
        for server in (other, unversioned):
            conn = Connection(registry.parse_ref(str(registry.EngineRef(server.url))).config())
            try:
                assert probe(conn).kind == "openai"
            finally:
                conn.close()
        assert not any(p == "/version" for _, p, _ in other.requests)  # not asked of others
        registry.add_engine("odd", unversioned.url, kind="vllm")
        with pytest.raises(EngineProtocolError, match=r"not a vLLM server.*--kind openai"):
            RemoteEngine().load("engine:odd")
    finally:
        other.close()
        unversioned.close()


def test_a_model_without_llamas_vocabulary(vllm: VLLMEmulator,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """vLLM does not tell its chat template: such a model is chatted with as text (auto), and
    kind vllm says what to do."""
    monkeypatch.setattr(vllm, "detokenize", lambda body: {"prompt": "<|begin_of_text|>"})
    engine = load(vllm.url)
    assert engine.kind == "openai"
    engine.close()
    registry.add_engine("strict", vllm.url, kind="vllm")
    with pytest.raises(EngineProtocolError, match=r"Llama's vocabulary.*--kind openai"):
        RemoteEngine().load(f"engine:strict/{MODEL}")


def test_special_token_text_in_a_message_is_read_as_the_token_and_logged(
        vllm: VLLMEmulator, local_engine: LlamaEngine, caplog: pytest.LogCaptureFixture) -> None:
    """The documented limit: vLLM's /tokenize has no parse_special switch, so a literal ``<s>``
    in a message becomes BOS there (locally it stays text); it is logged as a warning."""
    engine = load(vllm.url)
    turns = [Message("user", "Hi <s> there")]
    sent = engine.prepare(turns, SAMPLING).tokens
    assert sent != local_engine.prepare(turns, SAMPLING).tokens and sent.count(1) == 2
    assert "reads the special-token text in a message as the token" in caplog.text
    engine.close()
