"""Bounded preparation: a turn in a 20,000-message conversation does the work of a short one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.chat.history import FIRST_TAIL
from app.chat.service import ChatService
from app.engine.budget import split_history
from app.engine.engine import LlamaEngine
from app.engine.types import Message, Sampling
from app.settings import AppSettings
from tests.chat.long_chat import store_long_chat
from tests.ui.fakes import FakeEngine

SYSTEM = "You are a patient assistant."


class Counting:
    """Counts the engine vocabulary's tokenize calls."""

    def __init__(self, engine: LlamaEngine) -> None:
        vocab = engine._vocab
        assert vocab is not None
        self.calls = 0
        original = vocab.encode

        def encode(text: str, *, special: bool) -> list[int]:
            self.calls += 1
            return original(text, special=special)

        vocab.encode = encode  # type: ignore[method-assign]


@pytest.fixture(scope="module")
def starter_service(starter_model: Path, tmp_path_factory: pytest.TempPathFactory
                    ) -> Iterator[ChatService]:
    settings = AppSettings(state_cache_gb=0)
    service = ChatService(LlamaEngine(), settings=lambda: settings,
                          db_path=tmp_path_factory.mktemp("db") / "c.sqlite3")
    service.load_model(str(starter_model), overrides={"n_ctx": 1024, "n_gpu_layers": 0})
    yield service
    service.close()


def by_hand(service: ChatService, conversation_id: int, new: str,
            max_tokens: int = Sampling().max_tokens) -> tuple[Any, int]:
    """The prompt of the newest exchanges that fit, rendered from the whole branch by hand."""
    branch = service.store.current_branch(conversation_id)
    msgs = [Message("system", SYSTEM), *(Message(m.role, m.content) for m in branch),  # type: ignore[arg-type]
            Message("user", new)]
    head, exchanges, newest = split_history(msgs)
    engine = service.engine
    budget = engine.info.n_ctx - max_tokens  # type: ignore[union-attr]
    best = None
    for keep in range(1, len(exchanges) + 1):
        kept = [m for ex in exchanges[len(exchanges) - keep:] for m in ex]
        prompt = engine.prepare([*head, *kept, newest], Sampling(max_tokens=1))
        if len(prompt.tokens) > budget:
            break
        best = (prompt, len(branch) - len(kept))
    assert best is not None
    return best


def test_a_turn_in_20000_messages_costs_what_one_in_20_does(starter_service: ChatService
                                                            ) -> None:
    service = starter_service
    engine = service.engine
    assert isinstance(engine, LlamaEngine)
    counting = Counting(engine)
    work: dict[int, tuple[int, int, int]] = {}
    for size in (20, 20_000):
        conv = store_long_chat(service.store, size, SYSTEM)
        prompt, dropped = by_hand(service, conv, "And one more question?")
        first = counting.calls
        meter = service.context_count(conv)  # the meter, through the same path
        after_meter = counting.calls
        reply = service.send(conv, "And one more question?")
        next(iter(reply), None)  # the prompt is read; one piece of the reply is enough
        reply.close()
        turn = service.last_turn
        assert turn is not None
        work[size] = (after_meter - first, counting.calls - after_meter, turn.read)
        # the prompt sent is the hand-rendered tail, token for token, and the cut is reported
        # as the number of stored messages before it (where the window draws its marker)
        assert reply.prompt.tokens == prompt.tokens and reply.prompt.text == prompt.text
        assert reply.prompt.dropped_messages == reply.result.dropped_messages == dropped
        if size == 20_000:
            assert dropped > 19_000 and meter.dropped_messages > 19_000
            assert 0 < meter.tokens <= 1024 - Sampling().max_tokens
    (meter20, send20, _), (meter20k, send20k, read20k) = work[20], work[20_000]
    # About the same work: tokenize calls and messages read from the store, not ~1000 times more.
    assert meter20k <= 2 * meter20 + 4 and send20k <= 2 * send20 + 4
    assert read20k <= 256


def test_later_turns_stay_bounded_too(starter_service: ChatService) -> None:
    """The next turn starts from what the last one kept, not from all it read."""
    service = starter_service
    conv = store_long_chat(service.store, 20_000, SYSTEM)
    reads = []
    for _ in range(4):
        count = service.context_count(conv)
        turn = service.last_turn
        assert turn is not None and count.dropped_messages > 19_000
        reads.append((turn.read, turn.kept))
    assert all(read <= max(FIRST_TAIL, 2 * kept) + 4 for read, kept in reads[1:]), reads
    assert max(read for read, _ in reads) <= 512, reads


def test_the_meter_after_a_cut_counts_what_is_sent(starter_service: ChatService) -> None:
    service = starter_service
    conv = store_long_chat(service.store, 400, SYSTEM)
    count = service.context_count(conv)
    prompt, dropped = by_hand(service, conv, "")
    assert count.tokens == len(prompt.tokens) and count.dropped_messages == dropped > 0
    assert count.n_ctx == 1024 and not count.error


def test_the_meter_on_a_llama2_model_after_a_cut(tiny_llama2: Path, tmp_path: Path) -> None:
    settings = AppSettings(state_cache_gb=0)
    service = ChatService(LlamaEngine(), settings=lambda: settings,
                          db_path=tmp_path / "c.sqlite3")
    try:
        service.load_model(str(tiny_llama2), overrides={"n_ctx": 1024, "n_gpu_layers": 0})
        conv = store_long_chat(service.store, 300, SYSTEM)
        count = service.context_count(conv)
        prompt, dropped = by_hand(service, conv, "")
        assert not count.error and count.tokens == len(prompt.tokens)
        assert count.dropped_messages == dropped > 0
        assert prompt.text.startswith("<s>[INST] <<SYS>>\n" + SYSTEM)
    finally:
        service.close()


def test_a_reply_being_written_elsewhere_is_not_built_on(tmp_path: Path,
                                                          settings: AppSettings) -> None:
    service = ChatService(FakeEngine(), settings=lambda: settings, db_path=tmp_path / "c.sqlite3")
    service.load_model()
    try:
        conv = store_long_chat(service.store, 200)
        leaf = service.store.get_conversation(conv).current_leaf_id
        assert leaf is not None
        question = service.store.add_user_message(conv, "elsewhere", leaf)
        service.store.start_assistant(conv, question.id, model_name="x", model_file="x")
        reply = service.send(conv, "here")
        reply.text()
        assert reply.user_message is not None and reply.user_message.parent_id == leaf
    finally:
        service.close()
