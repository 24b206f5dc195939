"""IsolatedEngine: Engine's behaviour across a process boundary, crashes contained."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.engine.engine import LlamaEngine, LoadOptions
from app.engine.isolated import IsolatedEngine, engine_for
from app.engine.types import Message
from app.engine.types import Sampling as S
from app.errors import ContextOverflowError, ModelFileError

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
OPTIONS = LoadOptions(n_ctx=1024, n_gpu_layers=0)
CHAT = [Message("user", "Name three rivers of Europe.")]
GREEDY = S(temperature=0.0, max_tokens=24, seed=1)


@pytest.fixture(scope="module")
def expected(starter_model: Path) -> str:
    engine = LlamaEngine()
    engine.load(starter_model, OPTIONS)
    try:
        return engine.generate(CHAT, GREEDY).text()
    finally:
        engine.close()


@pytest.fixture
def isolated(starter_model: Path) -> Iterator[IsolatedEngine]:
    engine = IsolatedEngine()
    engine.load(starter_model, OPTIONS)
    yield engine
    engine.close()


def test_same_reply_stats_and_prompt_as_in_process(isolated: IsolatedEngine, expected: str) -> None:
    assert isolated.loaded and isolated.info is not None and isolated.info.n_ctx == 1024
    gen = isolated.generate(CHAT, GREEDY)
    chunks = list(gen)
    assert "".join(chunks) == expected == gen.result.text
    assert gen.result.finish_reason == "length" and gen.result.generated_tokens == 24
    assert gen.result.tokens_per_s > 0 and gen.result.prompt_tokens == len(gen.prompt.tokens)
    assert isolated.last_prompt == gen.prompt
    assert isolated.count_tokens(CHAT) == len(isolated.prepare(CHAT, GREEDY).tokens)
    again = isolated.generate(CHAT, GREEDY)
    assert again.text() == expected and again.result.reused_tokens > 0  # the child's KV cache


def test_errors_come_back_as_the_same_user_errors(isolated: IsolatedEngine, tmp_path: Path) -> None:
    with pytest.raises(ContextOverflowError):
        isolated.generate([Message("user", "word " * 3000)], GREEDY)
    bad = tmp_path / "bad.gguf"
    bad.write_text("not a model")
    with pytest.raises(ModelFileError, match="Not a GGUF"):
        isolated.load(bad)
    assert not isolated.loaded


def test_stop_and_abandon_keep_the_process_in_step(isolated: IsolatedEngine, expected: str) -> None:
    gen = isolated.generate(CHAT, GREEDY.replace(max_tokens=400))
    for i, _ in enumerate(gen):
        if i == 2:
            isolated.cancel()
    assert gen.result.finish_reason == "cancelled" and gen.result.generated_tokens < 400
    closed = isolated.generate(CHAT, GREEDY.replace(max_tokens=400))
    next(iter(closed))
    closed.close()
    assert closed.result.finish_reason == "cancelled"
    isolated.generate(CHAT, GREEDY.replace(max_tokens=400))  # never read: the next call drains it
    assert isolated.generate(CHAT, GREEDY).text() == expected


def test_a_crash_ends_the_reply_not_the_app_and_the_next_reply_reloads(
    isolated: IsolatedEngine, expected: str
) -> None:
    gen = isolated.generate(CHAT, GREEDY.replace(max_tokens=400))
    chunks = []
    for chunk in gen:
        chunks.append(chunk)
        if len(chunks) == 3:
            os.kill(isolated.pid or 0, signal.SIGKILL)
    result = gen.result
    assert result.finish_reason == "error" and result.text == "".join(chunks)
    assert result.error and "engine process ended unexpectedly" in result.error
    assert "regenerate" in result.error and not isolated.loaded
    assert isolated.generate(CHAT, GREEDY).text() == expected  # loaded again by itself
    assert isolated.loaded


def test_engine_for_picks_isolation_only_with_workers() -> None:
    assert isinstance(engine_for(LoadOptions()), LlamaEngine)
    assert isinstance(engine_for(LoadOptions(rpc_servers=("127.0.0.1:1",))), IsolatedEngine)


def test_text_completion_and_progress_cross_the_process_boundary(
        isolated: IsolatedEngine, starter_model: Path) -> None:
    local = LlamaEngine()
    local.load(starter_model, OPTIONS)
    try:
        want = local.generate_text("The capital of France is", GREEDY).text()
    finally:
        local.close()
    seen: list[tuple[int, int]] = []
    gen = isolated.generate_text("The capital of France is", GREEDY,
                                 on_progress=lambda done, total: seen.append((done, total)))
    assert gen.text() == want and want.startswith(" ")  # a continuation keeps its space
    assert seen and seen[0][0] == 0 and seen[-1][0] == seen[-1][1] > 0
