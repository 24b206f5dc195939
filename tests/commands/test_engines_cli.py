"""`llama-desk engines` and `chat --engine` in process, against a real llama-server on loopback."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app import cli
from app.engine.engine import LlamaEngine
from app.engine.remote import registry
from app.engine.types import LoadOptions, Message, Sampling
from app.store import Store
from tests.engine.remote.servers import LlamaServer, RecordingProxy, llama_server
from tests.hub.fixtures import memory_keyring

__all__ = ["memory_keyring"]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tiny_llama2: Path) -> Iterator[LlamaServer]:
    with llama_server(tiny_llama2, "--alias", "llama-2-tiny") as running:
        yield running


@pytest.fixture(autouse=True)
def _keyring(memory_keyring: Any) -> Any:
    return memory_keyring


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli.main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_add_list_check_remove(server: LlamaServer, capsys: pytest.CaptureFixture[str],
                               memory_keyring: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("not-a-real-key-1234\n"))
    code, out, err = run(capsys, "engines", "add", "box", server.url + "/v1/", "--key-stdin")
    assert code == 0, err
    assert f"Engine box added: {server.url} (auto, key in the OS keyring)" in out
    assert "kind llama-server" in out and "model: llama-2-tiny, 2,048-token context" in out
    assert "prompt format: llama-2" in out
    assert memory_keyring.store[("llama-desk", "engine-key:box")] == "not-a-real-key-1234"
    saved = registry.engines_path().read_text()
    assert "not-a-real-key" not in saved and json.loads(saved)["engines"][0]["has_key"] is True
    code, out, _ = run(capsys, "engines", "list")
    assert out.split() == ["box", server.url, "auto", "key", "this", "machine"]
    code, out, _ = run(capsys, "engines", "check", "box")
    assert code == 0 and "reachable in" in out and "llama-2-tiny" in out
    code, out, _ = run(capsys, "engines", "remove", "box")
    assert code == 0 and "removed" in out and "and its key" in out
    assert ("llama-desk", "engine-key:box") not in memory_keyring.store
    code, _, err = run(capsys, "engines", "check", "box")
    assert code == 1 and "No engine is called 'box'" in err


def test_public_hosts_warn_and_plain_http_needs_yes(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "engines", "add", "far", "http://8.8.8.8:8080", "--no-check")
    assert code == 1
    assert "leaves this machine" in err and "unencrypted" in err and "needs --yes" in err
    assert registry.list_engines() == []
    code, out, err = run(capsys, "engines", "add", "far", "http://8.8.8.8:8080", "--no-check",
                         "--yes")
    assert code == 0 and "unencrypted" in err
    assert registry.get_engine("far").public_http
    code, out, err = run(capsys, "engines", "add", "hosted", "https://8.8.4.4", "--no-check")
    assert code == 0 and "is a public host" in err and "unencrypted" not in err
    code, out, _ = run(capsys, "engines", "list")
    assert "leaves your network" in out
    # An unregistered plain-http public URL is refused before any connection.
    code, _, err = run(capsys, "chat", "--engine", "http://8.8.8.8:8080", "hi")
    assert code == 1 and "engines add NAME http://8.8.8.8:8080 --yes" in err


def test_unreachable_engine_is_added_with_a_warning(capsys: pytest.CaptureFixture[str]) -> None:
    from tests.workers import free_port

    code, _, err = run(capsys, "engines", "add", "later", f"http://127.0.0.1:{free_port()}")
    assert code == 0 and "added, but the check failed: Cannot reach" in err


def test_multi_turn_chat_through_engine_sends_metas_reference(
        server: LlamaServer, tiny_llama2: Path, capsys: pytest.CaptureFixture[str]) -> None:
    proxy = RecordingProxy(server.url)
    try:
        assert run(capsys, "engines", "add", "box", proxy.url, "--no-check")[0] == 0
        code, first, err = run(capsys, "chat", "--engine", "box", "--max-tokens", "12",
                               "--temperature", "0", "Hello <s>[INST] llama")
        assert code == 0, err
        store = Store.open()
        conv = store.list_conversations()[0]
        code, second, err = run(capsys, "chat", "--continue", str(conv.id), "--max-tokens", "12",
                                "--temperature", "0", "--stats", "And [/INST] alpacas?")
        assert code == 0, err
        assert "tokens" in err and "tok/s" in err
        branch = store.current_branch(conv.id)
        assert [m.role for m in branch] == ["user", "assistant", "user", "assistant"]
        for reply in branch[1::2]:  # each reply records engine and model
            assert reply.model_file == "engine:box/llama-2-tiny"
            assert reply.model_name == "llama-2-tiny @ box"
            assert reply.state == "complete"
        assert conv.model == "engine:box/llama-2-tiny"
        assert branch[1].content == first.strip() and branch[3].content == second.strip()
        store.close()
        local = LlamaEngine()
        local.load(tiny_llama2, LoadOptions(n_ctx=2048, n_gpu_layers=0))
        sampling = Sampling(max_tokens=12)
        expected = [
            local.prepare([Message("user", branch[0].content)], sampling).tokens,
            local.prepare([Message(m.role, m.content) for m in branch[:3]],  # type: ignore[arg-type]
                          sampling).tokens,
        ]
        local.close()
        sent = [body["prompt"] for body in proxy.bodies("/completion")]
        assert sent == expected
    finally:
        proxy.close()


def test_interactive_chat_and_model_choice(server: LlamaServer, capsys: pytest.CaptureFixture[str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("first\nsecond\n"))
    code, out, err = run(capsys, "chat", "--engine", server.url, "-m", "llama-2-tiny",
                         "--max-tokens", "6", "--no-save")
    assert code == 0, err
    assert "Chatting with llama-2-tiny @ 127.0.0.1" in err and "llama-2 format" in err
    assert len([line for line in out.splitlines() if line.strip()]) == 2
    code, _, err = run(capsys, "chat", "--engine", server.url, "-m", "gpt-9", "hi")
    assert code == 1 and "does not serve 'gpt-9'" in err and "llama-2-tiny" in err


def test_vllm_engine_added_checked_and_chatted_with(
        spm_llama: Any, tiny_llama2: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.engine.remote.vllm_server import VLLMEmulator

    vllm = VLLMEmulator(spm_llama, "meta-llama/Llama-2-7b-chat-hf", max_model_len=4096)
    try:
        code, out, err = run(capsys, "engines", "add", "gpu", vllm.url, "--kind", "vllm")
        assert code == 0, err
        assert f"Engine gpu added: {vllm.url} (vllm)" in out
        assert "kind vllm (prompts sent as token ids" in out and "vLLM 0.11.0" in out
        assert "model: meta-llama/Llama-2-7b-chat-hf, 4,096-token context" in out
        code, out, err = run(capsys, "engines", "add", "auto-gpu", vllm.url)
        assert code == 0 and "kind vllm" in out, err
        code, _, err = run(capsys, "chat", "--engine", "auto-gpu", "--max-tokens", "8",
                               "--system", "Be brief.", "--stats", "Hello, llama")
        assert code == 0, err
        assert "tok/s" in err
        store = Store.open()
        conv = store.list_conversations()[0]
        code, _, err = run(capsys, "chat", "--continue", str(conv.id), "--max-tokens", "8",
                           "And alpacas?")
        assert code == 0, err
        branch = store.current_branch(conv.id)
        store.close()
        assert branch[1].model_name == "meta-llama/Llama-2-7b-chat-hf @ auto-gpu"
        local = LlamaEngine()
        local.load(tiny_llama2, LoadOptions(n_ctx=2048, n_gpu_layers=0))
        sampling = Sampling(max_tokens=8)
        system = [Message("system", "Be brief.")]
        expected = [
            local.prepare([*system, Message("user", branch[0].content)], sampling).tokens,
            local.prepare([*system, *(Message(m.role, m.content) for m in branch[:3])],  # type: ignore[arg-type]
                          sampling).tokens,
        ]
        local.close()
        assert vllm.prompts == expected
    finally:
        vllm.close()
