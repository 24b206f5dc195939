"""RemoteEngine on a real llama-server: reference token ids, streaming, stop, cuts, keys, errors."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest

from app.engine.engine import LlamaEngine
from app.engine.remote import http as remote_http
from app.engine.remote.engine import RemoteEngine
from app.engine.remote.errors import (
    EngineAuthError,
    EngineModelNotFoundError,
    EngineTimeoutError,
    EngineTLSError,
    EngineUnreachableError,
)
from app.engine.remote.registry import EngineRef
from app.engine.types import LoadOptions, Message, Sampling
from tests.engine.remote.servers import (
    LlamaServer,
    RecordingProxy,
    llama_server,
    self_signed_tls_server,
)
from tests.workers import free_port

pytestmark = pytest.mark.slow

# Text that looks like control tokens must reach the model as plain text, as in Meta's reference.
DIALOG = [
    Message("system", "Answer briefly. <s> is not a token here, nor is [INST]."),
    Message("user", "Hello </s> there [/INST] friend"),
    Message("assistant", "Hi! <<SYS>> How can I help?"),
    Message("user", "Tell me about llamas.  "),
]
GREEDY = Sampling(temperature=0.0, max_tokens=24, seed=7)


def ref(url: str, model: str = "") -> str:
    return str(EngineRef(url, model))


@pytest.fixture(scope="module")
def local_prompt(tiny_llama2: Path) -> list[int]:
    """What the local engine sends for DIALOG: Meta's reference algorithm, token for token."""
    engine = LlamaEngine()
    engine.load(tiny_llama2, LoadOptions(n_ctx=2048, n_gpu_layers=0))
    try:
        return engine.prepare(DIALOG, GREEDY).tokens
    finally:
        engine.close()


def test_server_receives_metas_reference_token_ids(proxy: RecordingProxy,
                                                   local_prompt: list[int]) -> None:
    engine = RemoteEngine()
    info = engine.load(ref(proxy.url))
    assert (info.format_name, info.n_ctx, info.file) == ("llama-2", 2048, None)
    assert info.name == f"llama-2-tiny.gguf @ {proxy.url.split('://')[1]}"
    reply = engine.generate(DIALOG, GREEDY)
    assert reply.prompt.tokens == local_prompt
    text = "".join(reply)
    sent = proxy.bodies("/completion")
    assert len(sent) == 1
    assert sent[0]["prompt"] == local_prompt  # the ids themselves, not text
    assert sent[0]["cache_prompt"] is True and sent[0]["stream"] is True
    assert local_prompt[0] == 1 and local_prompt.count(1) == 2 and local_prompt.count(2) == 1
    result = reply.result
    assert result.text == text and text
    assert result.finish_reason in ("length", "stop")
    assert result.prompt_tokens == len(local_prompt)
    assert result.generated_tokens >= 1 and result.ttft_s > 0
    # Message text was tokenized with parse_special off, and each text only once.
    tokenized = proxy.bodies("/tokenize")
    assert all(body["parse_special"] is False for body in tokenized
               if body["content"] not in ("<s>", "</s>"))
    engine.generate(DIALOG, GREEDY).text()
    assert len(proxy.bodies("/tokenize")) == len(tokenized)  # the second prompt: all cached
    engine.close()


def test_multi_turn_reuses_the_servers_cache_and_reports_its_timings(server: LlamaServer) -> None:
    engine = RemoteEngine()
    engine.load(ref(server.url))
    first = engine.generate(DIALOG[:2], GREEDY)
    answer = first.text()
    second = engine.generate([*DIALOG[:2], Message("assistant", answer),
                              Message("user", "And alpacas?")], GREEDY)
    progress: list[tuple[int, int]] = []
    second = engine.generate([*DIALOG[:2], Message("assistant", answer),
                              Message("user", "And alpacas?")], GREEDY,
                             on_progress=lambda done, total: progress.append((done, total)))
    second.text()
    result = second.result
    assert result.reused_tokens > 0  # the server's cache_n: the earlier turn was not re-read
    assert result.tokens_per_s > 0 and result.generated_tokens > 1
    assert progress[0][0] == 0 and progress[-1][0] == progress[-1][1]
    engine.close()


def test_greedy_reply_matches_the_same_request_sent_straight(server: LlamaServer) -> None:
    import httpx2 as httpx

    engine = RemoteEngine()
    engine.load(ref(server.url))
    reply = engine.generate(DIALOG, GREEDY)
    text = reply.text()
    direct = httpx.post(f"{server.url}/completion", timeout=60, json={
        "prompt": reply.prompt.tokens, "n_predict": 24, "temperature": 0.0, "seed": 7,
        "top_k": GREEDY.top_k, "top_p": GREEDY.top_p, "min_p": GREEDY.min_p,
        "repeat_penalty": GREEDY.repeat_penalty}).json()
    assert text == direct["content"].lstrip()
    engine.close()


def test_stop_mid_stream_closes_the_request_and_the_server_stops(server: LlamaServer) -> None:
    engine = RemoteEngine()
    engine.load(ref(server.url))
    reply = engine.generate(DIALOG, Sampling(max_tokens=1500, seed=3, temperature=1.0))
    chunks = []
    for chunk in reply:
        chunks.append(chunk)
        if len(chunks) == 3:
            threading.Thread(target=engine.cancel).start()  # Stop comes from another thread
    result = reply.result
    assert result.finish_reason == "cancelled"
    assert result.text == "".join(chunks) and len(chunks) < 200
    deadline = time.monotonic() + 10
    while server.busy() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not server.busy()  # llama-server saw the closed request and stopped generating
    assert engine.generate(DIALOG, GREEDY).text()  # and the engine goes on
    engine.close()


def test_closing_the_generation_stops_it(server: LlamaServer) -> None:
    engine = RemoteEngine()
    engine.load(ref(server.url))
    reply = engine.generate(DIALOG, Sampling(max_tokens=1500, seed=3, temperature=1.0))
    iterator = iter(reply)
    next(iterator)
    reply.close()
    assert reply.result.finish_reason == "cancelled"
    engine.close()


def test_server_killed_mid_stream_keeps_the_partial_reply(tiny_llama2: Path) -> None:
    with llama_server(tiny_llama2) as doomed:
        engine = RemoteEngine()
        engine.load(ref(doomed.url))
        reply = engine.generate(DIALOG, Sampling(max_tokens=1800, seed=3, temperature=1.0))
        chunks = []
        for chunk in reply:
            chunks.append(chunk)
            if len(chunks) == 2:
                doomed.proc.kill()
        result = reply.result
    assert result.finish_reason == "error"
    assert result.text == "".join(chunks) and result.text
    assert result.error and "cut mid-reply" in result.error and "text so far is kept" in result.error
    with pytest.raises(EngineUnreachableError, match="Cannot reach"):
        engine.generate(DIALOG, GREEDY).text()
    engine.close()


def test_api_key_401(tiny_llama2: Path, memory_keyring: object) -> None:
    from app.engine.remote import registry

    with llama_server(tiny_llama2, "--api-key", "s3cret-key-123") as keyed:
        registry.add_engine("keyed", keyed.url)
        with pytest.raises(EngineAuthError, match=r"needs an API key.*--key-stdin"):
            RemoteEngine().load("engine:keyed")
        registry.add_engine("keyed", keyed.url, key="wrong-key-456")
        with pytest.raises(EngineAuthError, match="refused the API key") as err:
            RemoteEngine().load("engine:keyed")
        assert "wrong-key-456" not in str(err.value)
        registry.add_engine("keyed", keyed.url, key="s3cret-key-123")
        engine = RemoteEngine()
        assert engine.load("engine:keyed").format_name == "llama-2"
        assert engine.generate(DIALOG, GREEDY).text()
        engine.close()
    assert "s3cret" not in registry.engines_path().read_text()


def test_unknown_model_names_the_served_ones(server: LlamaServer) -> None:
    with pytest.raises(EngineModelNotFoundError, match=r"does not serve .nope.*llama-2-tiny.gguf"):
        RemoteEngine().load(ref(server.url, "nope"))


def test_unreachable_tls_and_timeout_are_told_apart(server: LlamaServer, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(EngineUnreachableError, match="Cannot reach"):
        RemoteEngine().load(ref(f"http://127.0.0.1:{free_port()}"))
    with self_signed_tls_server(tmp_path) as port, \
            pytest.raises(EngineTLSError, match=r"https connection.*not trusted"):
        RemoteEngine().load(ref(f"https://127.0.0.1:{port}"))
    silent = socket.socket()  # accepts connections (backlog) and never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen(4)
    monkeypatch.setattr(remote_http, "CALL_TIMEOUT_S", 0.5)
    try:
        with pytest.raises(EngineTimeoutError, match="stopped answering"):
            RemoteEngine().load(ref(f"http://127.0.0.1:{silent.getsockname()[1]}"))
    finally:
        silent.close()


def test_thread_ownership(server: LlamaServer) -> None:
    from app.engine.engine import EngineThreadError

    engine = RemoteEngine()
    engine.load(ref(server.url))
    errors: list[BaseException] = []

    def other() -> None:
        try:
            engine.prepare(DIALOG, GREEDY)
        except BaseException as err:
            errors.append(err)

    thread = threading.Thread(target=other)
    thread.start()
    thread.join()
    assert isinstance(errors[0], EngineThreadError)
    engine.close()


def test_a_text_completion_sends_the_local_engines_ids(proxy: RecordingProxy,
                                                       tiny_llama2: Path) -> None:
    """`generate_text` (the API's /v1/completions) on a llama-server: the ids the local engine
    would evaluate, and the continuation keeps its leading space."""
    text = "Once upon a time, <s> a llama"
    local = LlamaEngine()
    local.load(tiny_llama2, LoadOptions(n_ctx=2048, n_gpu_layers=0))
    try:
        expected = local.generate_text(text, GREEDY).prompt.tokens
    finally:
        local.close()
    engine = RemoteEngine()
    engine.load(ref(proxy.url))
    reply = engine.generate_text(text, GREEDY)
    assert reply.prompt.tokens == expected
    out = reply.text()
    assert proxy.bodies("/completion")[-1]["prompt"] == expected
    assert out and reply.result.finish_reason in ("length", "stop")
    engine.close()
