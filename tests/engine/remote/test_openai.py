"""Kind openai against real OpenAI-compatible servers: llama-cpp-python's llama_cpp.server and
llama-server's /v1/chat/completions. Text chat messages; the prompt format is the server's."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.engine.remote import registry
from app.engine.remote.backends import SERVER_FORMAT
from app.engine.remote.engine import RemoteEngine
from app.engine.remote.errors import EngineContextOverflowError
from app.engine.types import Message, Sampling
from tests.engine.remote.servers import LlamaCppPythonServer, LlamaServer, RecordingProxy

pytestmark = pytest.mark.slow
DIALOG = [Message("system", "Be brief."), Message("user", "Hi <s> there"),
          Message("assistant", "Hello!"), Message("user", "What are llamas?")]
SAMPLING = Sampling(temperature=0.0, max_tokens=16, seed=5)


@pytest.fixture(scope="module")
def lcp_server(tiny_llama2: Path) -> Iterator[LlamaCppPythonServer]:
    server = LlamaCppPythonServer(tiny_llama2, "--chat_format", "llama-2")
    yield server
    server.stop()


def test_llama_cpp_python_server_is_detected_as_openai(lcp_server: LlamaCppPythonServer) -> None:
    proxy = RecordingProxy(lcp_server.url)
    try:
        engine = RemoteEngine()
        info = engine.load(str(registry.EngineRef(proxy.url)))
        assert engine.kind == "openai"
        assert info.format_name == SERVER_FORMAT
        prompt = engine.prepare(DIALOG, SAMPLING)
        assert prompt.tokens == [] and prompt.format_name == SERVER_FORMAT
        assert "its own chat template" in prompt.text and "[user]\nWhat are llamas?" in prompt.text
        assert engine.count_tokens(DIALOG) == -1
        reply = engine.generate(DIALOG, SAMPLING)
        text = reply.text()
        sent = proxy.bodies("/v1/chat/completions")[-1]
        assert sent["messages"] == [{"role": m.role, "content": m.content} for m in DIALOG]
        assert sent["stream"] is True and sent["max_tokens"] == 16
        assert text and reply.result.finish_reason in ("length", "stop")
        assert reply.result.generated_tokens >= 1
        # A second turn on the same engine.
        more = engine.generate([*DIALOG, Message("assistant", text), Message("user", "More?")],
                               SAMPLING)
        assert more.text()
        engine.close()
    finally:
        proxy.close()


def test_stop_mid_stream_on_an_openai_server(lcp_server: LlamaCppPythonServer) -> None:
    engine = RemoteEngine()
    engine.load(str(registry.EngineRef(lcp_server.url)))
    reply = engine.generate(DIALOG, Sampling(max_tokens=1500, temperature=1.0, seed=2))
    chunks = []
    for chunk in reply:
        chunks.append(chunk)
        if len(chunks) == 2:
            engine.cancel()
    assert reply.result.finish_reason == "cancelled" and len(chunks) < 100
    assert engine.generate(DIALOG, SAMPLING).text()
    engine.close()


def test_llama_server_as_kind_openai(server: LlamaServer, memory_keyring: Any) -> None:
    registry.add_engine("chat-api", server.url, kind="openai")
    engine = RemoteEngine()
    info = engine.load("engine:chat-api")
    assert engine.kind == "openai" and info.format_name == SERVER_FORMAT
    assert info.n_ctx == 2048  # from llama-server's /v1/models meta
    reply = engine.generate(DIALOG, SAMPLING)
    assert reply.text()
    result = reply.result
    assert result.prompt_tokens > 0 and result.generated_tokens >= 1  # from usage
    engine.close()


def test_context_overflow_reported_by_the_server(server: LlamaServer) -> None:
    registry.add_engine("api", server.url, kind="openai")
    engine = RemoteEngine()
    engine.load("engine:api")
    long = [Message("user", "llama " * 3000)]
    with pytest.raises(EngineContextOverflowError, match="does not fit its context"):
        engine.generate(long, SAMPLING).text()
    engine.close()
