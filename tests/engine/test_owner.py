"""EngineOwner: every engine call on one thread; Ctrl+C in the caller becomes cancel()."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import pytest

from app.engine.engine import LoadOptions
from app.engine.owner import EngineOwner
from app.engine.types import Message, Sampling

pytestmark = pytest.mark.slow
LONG = [Message("user", "Write a very long essay about the sea.")]


@pytest.fixture(scope="module")
def owner(starter_model: Path) -> EngineOwner:
    owner = EngineOwner()
    owner.call(owner.engine.load, starter_model, LoadOptions(n_ctx=1024, n_gpu_layers=0))
    yield owner
    owner.close()


def test_engine_runs_on_one_thread(owner: EngineOwner) -> None:
    seen: set[int] = set()
    owner.call(lambda: seen.add(threading.get_ident()))
    gen = owner.start([Message("user", "Hi")], Sampling(max_tokens=4, seed=1))
    chunks = list(owner.stream(gen))
    owner.call(lambda: seen.add(threading.get_ident()))
    assert len(seen) == 1 and threading.get_ident() not in seen
    assert "".join(chunks) == gen.result.text


def test_sigint_while_streaming_cancels_the_reply_only(owner: EngineOwner) -> None:
    # Python's own Ctrl+C handler, as in a terminal (a runner started in the background may
    # have left SIGINT ignored).
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        _stream_and_interrupt(owner)
    finally:
        signal.signal(signal.SIGINT, previous)


def _stream_and_interrupt(owner: EngineOwner) -> None:
    gen = owner.start(LONG, Sampling(max_tokens=900, seed=1, temperature=1.0))
    chunks = []
    for i, chunk in enumerate(owner.stream(gen)):
        chunks.append(chunk)
        if i == 3:
            # Delivered to this (main) thread while it waits for the next chunk.
            threading.Timer(0.05, signal.raise_signal, (signal.SIGINT,)).start()
    assert gen.result.finish_reason == "cancelled"
    assert 4 <= gen.result.generated_tokens < 900
    assert owner.interrupted.is_set()
    after = owner.start([Message("user", "Hi")], Sampling(max_tokens=4, seed=1))
    assert list(owner.stream(after)) and after.result.finish_reason in ("stop", "length")


def test_ctrl_c_during_prepare_is_not_lost(owner: EngineOwner) -> None:
    gen = owner.start(LONG, Sampling(max_tokens=900, seed=1))
    owner.interrupted.set()  # what _wait records when Ctrl+C lands while start() is waiting
    text = "".join(owner.stream(gen))
    assert gen.result.finish_reason == "cancelled"
    assert gen.result.generated_tokens <= 1 and len(text) < 20
