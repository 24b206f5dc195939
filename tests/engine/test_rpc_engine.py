"""Models on two `llama-desk worker` processes (127.0.0.1): same greedy replies as locally, lost workers.

A greedy generation with every layer on the workers must give exactly the tokens of the same
generation run on this machine alone; a worker killed mid-reply ends the reply with an error that
names it, the conversation keeps the partial reply, and the next reply works once it is back.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.engine import rpc, tools
from app.engine.engine import LlamaEngine, LoadOptions
from app.engine.isolated import IsolatedEngine
from app.engine.types import Message, Sampling
from app.store import Store
from tests.workers import Worker, cli, require_tool

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]
GREEDY = Sampling(temperature=0.0, max_tokens=40, seed=1)
CHAT = [Message("system", "You are terse."), Message("user", "Name three rivers of Europe.")]


@pytest.fixture(scope="module")
def workers() -> Iterator[tuple[Worker, Worker]]:
    require_tool(tools.RPC_SERVER)
    with Worker(None, "--threads", "1") as a, Worker(None, "--threads", "1") as b:
        yield a, b


def local_reply(model: Path, messages: list[Message], sampling: Sampling = GREEDY) -> tuple[str, int]:
    engine = LlamaEngine()
    try:
        engine.load(model, LoadOptions(n_ctx=1024, n_gpu_layers=0))
        gen = engine.generate(messages, sampling)
        return gen.text(), gen.result.generated_tokens
    finally:
        engine.close()


def on_workers(workers: tuple[Worker, Worker]) -> LoadOptions:
    return LoadOptions(n_ctx=1024, n_gpu_layers=-1, rpc_servers=tuple(w.endpoint for w in workers))


@pytest.mark.parametrize("model_name", ["tiny_llama2", "starter_model"])
def test_greedy_reply_on_two_workers_equals_the_local_one(
    model_name: str, request: pytest.FixtureRequest, workers: tuple[Worker, Worker]
) -> None:
    model = request.getfixturevalue(model_name)
    expected, n_tokens = local_reply(model, CHAT)
    assert n_tokens > 5
    before = [w.connections() for w in workers]
    engine = LlamaEngine()
    try:
        engine.load(model, on_workers(workers))
        assert rpc.active_workers() == tuple(w.endpoint for w in workers)
        gen = engine.generate(CHAT, GREEDY)
        assert gen.text() == expected
        assert gen.result.generated_tokens == n_tokens
    finally:
        engine.close()
    for worker, count in zip(workers, before, strict=True):
        assert worker.connections() > count, f"{worker.endpoint} saw no client: {worker.lines}"
    # The next load without workers stays on this machine.
    assert local_reply(model, CHAT) == (expected, n_tokens)
    assert rpc.active_workers() == ()


def test_isolated_engine_reply_equals_the_local_one(
    tiny_llama2: Path, workers: tuple[Worker, Worker]
) -> None:
    expected, _ = local_reply(tiny_llama2, CHAT)
    engine = IsolatedEngine()
    try:
        info = engine.load(tiny_llama2, on_workers(workers))
        assert info.n_gpu_layers == -1 and engine.loaded and engine.pid
        assert engine.count_tokens(CHAT) == len(engine.prepare(CHAT, GREEDY).tokens)
        gen = engine.generate(CHAT, GREEDY)
        assert gen.text() == expected and gen.result.finish_reason in ("stop", "length")
        assert engine.last_prompt == gen.prompt
        # Stop mid-reply, as the window's Stop button does; the engine stays usable.
        long = engine.generate(CHAT, GREEDY.replace(max_tokens=900))
        for i, _chunk in enumerate(long):
            if i == 3:
                engine.cancel()
        assert long.result.finish_reason == "cancelled" and long.result.generated_tokens < 900
        assert engine.generate(CHAT, GREEDY).text() == expected
    finally:
        engine.close()
    assert engine.pid is None


def test_worker_killed_mid_reply_keeps_the_conversation(tiny_llama2: Path, tmp_path: Path) -> None:
    require_tool(tools.RPC_SERVER)
    expected, _ = local_reply(tiny_llama2, CHAT)
    store = Store.open(tmp_path / "db.sqlite3")
    a, b = Worker(), Worker()
    engine = IsolatedEngine()
    try:
        for w in (a, b):
            w.wait_for("listening on")
        engine.load(tiny_llama2, on_workers((a, b)))
        conv = store.create_conversation(system_prompt="You are terse.", model="tiny")
        store.add_user_message(conv.id, CHAT[-1].content)
        reply = store.start_assistant(conv.id, model_name="tiny")
        gen = engine.generate(CHAT, GREEDY.replace(max_tokens=900))
        chunks = []
        with store.reply_writer(reply.id) as writer:
            for chunk in gen:
                chunks.append(chunk)
                writer.append(chunk)
                if len(chunks) == 5:
                    b.kill()  # the machine behind worker b is gone
            result = gen.result
            writer.finish(result)
        assert result.finish_reason == "error"
        assert result.text == "".join(chunks) and len(chunks) >= 5
        assert result.error is not None
        assert f"RPC worker {b.endpoint} stopped answering" in result.error
        assert a.endpoint not in result.error
        assert "llama-desk worker" in result.error and "regenerate" in result.error
        kept = store.current_branch(conv.id)
        assert [m.role for m in kept] == ["user", "assistant"]
        assert kept[1].state == "error" and kept[1].content == "".join(chunks)
        assert kept[1].error == result.error
        assert not engine.loaded and engine.pid is None  # the engine process ended, the app did not
        # While b is down, the next reply says so at once.
        with pytest.raises(rpc.WorkerError, match=f"RPC worker {b.endpoint} is not reachable"):
            engine.generate(CHAT, GREEDY)
        # Worker back on the same port: the model is loaded again and replies as before.
        b = Worker(b.port)
        b.wait_for("listening on")
        assert engine.generate(CHAT, GREEDY).text() == expected
        assert engine.loaded
    finally:
        engine.close()
        store.close()
        for w in (a, b):
            w.kill()


def test_cli_chat_uses_the_workers_from_settings(
    tiny_llama2: Path, workers: tuple[Worker, Worker], llama_desk_home: Path
) -> None:
    """`llama-desk chat` through settings.workers: the same greedy reply as without them."""
    args = ["chat", "Name three rivers of Europe.", "--model", str(tiny_llama2), "--temperature", "0",
            "--seed", "1", "--max-tokens", "40", "--ctx", "1024", "--no-save"]
    env = dict(os.environ)
    local = subprocess.run(cli(*args, "--gpu-layers", "0"), capture_output=True, text=True,
                           timeout=120, env=env, check=False)
    assert local.returncode == 0, local.stderr
    config = llama_desk_home / "config"
    config.mkdir(parents=True, exist_ok=True)
    (config / "settings.json").write_text(json.dumps({"workers": [w.endpoint for w in workers]}))
    before = [w.connections() for w in workers]
    remote = subprocess.run(cli(*args, "--gpu-layers", "-1"), capture_output=True, text=True,
                            timeout=120, env=env, check=False)
    assert remote.returncode == 0, remote.stderr
    assert remote.stdout == local.stdout and remote.stdout.strip()
    assert all(w.connections() > n for w, n in zip(workers, before, strict=True))


def test_cli_chat_rpc_flag_uses_the_given_workers(
    tiny_llama2: Path, workers: tuple[Worker, Worker], llama_desk_home: Path
) -> None:
    """`chat --rpc A,B` (no Workers setting): same greedy reply as this machine alone."""
    args = ["chat", "Name three rivers of Europe.", "--model", str(tiny_llama2), "--temperature", "0",
            "--seed", "1", "--max-tokens", "40", "--ctx", "1024", "--no-save"]
    local = subprocess.run(cli(*args, "--gpu-layers", "0"), capture_output=True, text=True,
                           timeout=120, check=False)
    before = [w.connections() for w in workers]
    rpc_arg = ",".join(w.endpoint for w in workers)
    remote = subprocess.run(cli(*args, "--gpu-layers", "-1", "--rpc", rpc_arg),
                            capture_output=True, text=True, timeout=120, check=False)
    assert remote.returncode == 0, remote.stderr
    assert remote.stdout == local.stdout and remote.stdout.strip()
    assert all(w.connections() > n for w, n in zip(workers, before, strict=True))
    bad = subprocess.run(cli(*args, "--rpc", "nohost:99999"), capture_output=True, text=True,
                         timeout=60, check=False)
    assert bad.returncode == 1 and len(bad.stderr.strip().splitlines()) == 1


def test_chat_service_keeps_the_conversation_when_a_worker_dies(
    tiny_llama2: Path, tmp_path: Path
) -> None:
    """Through the chat service on LocalEngine (what every face uses): the reply is stored as an
    error naming the worker, and this process goes on."""
    from app.chat.service import ChatService
    from app.engine.local import LocalEngine
    from app.settings import AppSettings

    require_tool(tools.RPC_SERVER)
    settings = AppSettings()
    a, b = Worker(), Worker()
    service = ChatService(LocalEngine(), settings=lambda: settings, db_path=tmp_path / "db")
    try:
        for w in (a, b):
            w.wait_for("listening on")
        service.load_model(str(tiny_llama2), overrides={
            "n_ctx": 1024, "n_gpu_layers": -1, "rpc_servers": (a.endpoint, b.endpoint)})
        assert isinstance(service.engine, LocalEngine) and service.engine.isolated
        reply = service.send(None, "Name three rivers of Europe.",
                             overrides={"max_tokens": 900, "temperature": 0.0, "seed": 1})
        chunks = []
        for chunk in reply:
            chunks.append(chunk)
            if len(chunks) == 5:
                b.kill()
        assert reply.result.finish_reason == "error"
        assert reply.message is not None and reply.message.state == "error"
        assert f"RPC worker {b.endpoint}" in (reply.message.error or "")
        assert reply.message.content == "".join(chunks)
        # The same service loads locally again afterwards (the child is gone, this process is not).
        service.load_model(str(tiny_llama2), overrides={"n_ctx": 1024, "n_gpu_layers": 0})
        assert not service.engine.isolated
        again = service.send(reply.conversation_id, "Thanks.", overrides={"max_tokens": 4})
        assert again.text() is not None and again.message is not None
    finally:
        service.close()
        for w in (a, b):
            w.kill()
