"""EngineOwner and Ticket: every engine call on one thread; Ctrl+C in the caller stops the reply."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.engine.engine import EngineThreadError, LlamaEngine, LoadOptions
from app.engine.owner import EngineOwner, Ticket
from app.engine.types import Message, Sampling

pytestmark = pytest.mark.slow
LONG = [Message("user", "Write a very long essay about the sea.")]


@pytest.fixture(scope="module")
def owner(starter_model: Path) -> Iterator[EngineOwner[LlamaEngine]]:
    owner = EngineOwner(LlamaEngine)
    owner.call(owner.resource.load, starter_model, LoadOptions(n_ctx=1024, n_gpu_layers=0))
    yield owner
    owner.close()


def _reply(owner: EngineOwner[LlamaEngine], messages: list[Message], sampling: Sampling,
           ticket: Ticket) -> Any:
    def start() -> Any:
        gen = owner.resource.generate(messages, sampling)
        ticket.attach(owner.resource.cancel)  # as the chat service's Reply does
        return gen
    return owner.call(start, on_interrupt=ticket.cancel)


def test_engine_runs_on_one_thread(owner: EngineOwner[LlamaEngine]) -> None:
    seen: set[int] = set()
    owner.call(lambda: seen.add(threading.get_ident()))
    gen = owner.call(owner.resource.generate, [Message("user", "Hi")], Sampling(max_tokens=4, seed=1))
    chunks = list(owner.stream(gen))
    owner.call(lambda: seen.add(threading.get_ident()))
    assert len(seen) == 1 and threading.get_ident() not in seen
    assert "".join(chunks) == gen.result.text


def test_the_engine_refuses_calls_from_another_thread(owner: EngineOwner[LlamaEngine]) -> None:
    with pytest.raises(EngineThreadError, match="belongs to thread"):
        owner.resource.prepare([Message("user", "Hi")], Sampling())
    with pytest.raises(EngineThreadError):
        _ = owner.resource.info
    owner.resource.cancel()  # the one call any thread may make
    assert owner.call(lambda: owner.resource.info) is not None


def test_sigint_while_streaming_cancels_the_reply_only(owner: EngineOwner[LlamaEngine]) -> None:
    # Python's own Ctrl+C handler, as in a terminal (a runner started in the background may
    # have left SIGINT ignored).
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        ticket = Ticket()
        gen = _reply(owner, LONG, Sampling(max_tokens=900, seed=1, temperature=1.0), ticket)
        chunks = []
        for i, chunk in enumerate(owner.stream(gen, on_interrupt=ticket.cancel)):
            chunks.append(chunk)
            if i == 3:  # delivered to this (main) thread while it waits for the next chunk
                threading.Timer(0.05, signal.raise_signal, (signal.SIGINT,)).start()
    finally:
        signal.signal(signal.SIGINT, previous)
    assert gen.result.finish_reason == "cancelled"
    assert 4 <= gen.result.generated_tokens < 900
    assert owner.interrupted.is_set() and ticket.cancelled
    after = owner.call(owner.resource.generate, [Message("user", "Hi")],
                       Sampling(max_tokens=4, seed=1))
    assert list(owner.stream(after)) and after.result.finish_reason in ("stop", "length")


def test_a_cancel_before_the_reply_starts_is_not_lost(owner: EngineOwner[LlamaEngine]) -> None:
    ticket = Ticket()
    ticket.cancel()  # what a Ctrl+C while the request was being prepared leaves behind
    gen = _reply(owner, LONG, Sampling(max_tokens=900, seed=1), ticket)
    text = "".join(owner.stream(gen))
    assert gen.result.finish_reason == "cancelled"
    assert gen.result.generated_tokens <= 1 and len(text) < 20


def test_a_detached_ticket_cannot_stop_a_later_reply(owner: EngineOwner[LlamaEngine]) -> None:
    first = Ticket()
    gen = _reply(owner, [Message("user", "Hi")], Sampling(max_tokens=4, seed=1), first)
    list(owner.stream(gen))
    first.detach()
    second = Ticket()
    gen2 = _reply(owner, [Message("user", "Hi again")], Sampling(max_tokens=8, seed=1), second)
    first.cancel()  # a late Stop for the finished request
    list(owner.stream(gen2))
    assert gen2.result.finish_reason in ("stop", "length")


def test_close_with_a_timeout_reports_a_busy_thread() -> None:
    gate = threading.Event()

    class Slow:
        def close(self) -> None:
            gate.wait(5)

    owner = EngineOwner(Slow)
    assert owner.close(timeout=0.05) is False
    assert owner.closed is not None and not owner.closed.done()
    gate.set()
    assert owner.close(timeout=5) is True
