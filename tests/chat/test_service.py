"""ChatService on the scripted engine: the turns every face runs, and what they store."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from app.chat.service import ChatService
from app.engine.engine import LlamaEngine
from app.engine.owner import Ticket
from app.engine.types import Message, Sampling
from app.errors import Cancelled, ContextOverflowError, UserError
from app.settings import AppSettings
from app.store import Store
from tests.ui.fakes import FakeEngine

Make = Callable[..., ChatService]


def test_send_stores_the_turn_as_it_streams(make_service: Make, settings: AppSettings) -> None:
    settings.default_system_prompt = "Be brief."
    engine = FakeEngine(["Hello", " there."])
    service = make_service(engine)
    reply = service.send(None, "Hi")
    assert reply.user_message is not None and reply.message is not None
    conv_id = reply.conversation_id
    assert conv_id is not None
    with Store.open() as other:  # committed before the reply streams: another reader sees it
        branch = other.current_branch(conv_id)
        assert [(m.role, m.state) for m in branch] == [("user", "complete"), ("assistant", "partial")]
    assert reply.text() == "Hello there."
    assert reply.message.state == "complete" and reply.message.content == "Hello there."
    assert reply.message.model_name == "Starter (SmolLM2 135M)"
    assert reply.message.stats["generated_tokens"] == 2
    conv = service.store.get_conversation(conv_id)
    assert conv.system_prompt == "Be brief." and conv.sampling == {} and conv.title == "Hi"
    assert engine.requests[-1] == [Message("system", "Be brief."), Message("user", "Hi")]


def test_overrides_apply_to_one_request_only(make_service: Make, settings: AppSettings) -> None:
    settings.sampling = {**settings.sampling, "temperature": 0.5}
    engine = FakeEngine()
    service = make_service(engine)
    first = service.send(None, "One", overrides={"temperature": 0.1, "top_k": 3})
    first.text()
    conv_id = first.conversation_id
    service.store.update_settings(conv_id, sampling={"top_k": 7})
    service.send(conv_id, "Two").text()
    assert (engine.samplings[0].temperature, engine.samplings[0].top_k) == (0.1, 3)
    assert (engine.samplings[1].temperature, engine.samplings[1].top_k) == (0.5, 7)


def test_a_message_too_long_is_refused_before_anything_is_stored(make_service: Make) -> None:
    service = make_service(FakeEngine(n_ctx=600))
    with pytest.raises(ContextOverflowError):
        service.send(None, "word " * 700)
    assert service.store.list_conversations() == []
    reply = service.send(None, "Short")
    reply.text()
    with pytest.raises(ContextOverflowError):
        service.send(reply.conversation_id, "word " * 700)
    assert len(service.store.current_branch(reply.conversation_id)) == 2


def test_regenerate_and_edit_build_the_tree(make_service: Make) -> None:
    engine = FakeEngine(["A1"])
    service = make_service(engine)
    first = service.send(None, "Q1")
    first.text()
    conv = first.conversation_id
    engine.script = ["A2"]
    service.send(conv, "Q2").text()
    engine.script = ["A2 again"]
    again = service.regenerate(service.store.current_branch(conv)[-1].id)
    again.text()
    assert again.user_message is None
    branch = service.store.current_branch(conv)
    assert [m.content for m in branch] == ["Q1", "A1", "Q2", "A2 again"]
    assert branch[-1].sibling_count == 2
    assert engine.requests[-1] == [Message("user", "Q1"), Message("assistant", "A1"),
                                   Message("user", "Q2")]
    engine.script = ["B1"]
    edited = service.edit(branch[0].id, "Q1, edited")
    edited.text()
    branch = service.store.current_branch(conv)
    assert [m.content for m in branch] == ["Q1, edited", "B1"]
    assert branch[0].sibling_count == 2 and engine.requests[-1] == [Message("user", "Q1, edited")]
    with pytest.raises(UserError, match="not a user message"):
        service.edit(branch[1].id, "nope")


def test_two_processes_continuing_one_conversation_branch(make_service: Make) -> None:
    service = make_service(FakeEngine(["first"]))
    start = service.send(None, "Hello")
    start.text()
    conv = start.conversation_id
    other = make_service(FakeEngine(["second"]))  # its own Store, like another process
    a = service.send(conv, "From A")  # A's reply is still being written...
    b = other.send(conv, "From B")  # ...when B continues the same conversation
    assert a.user_message is not None and b.user_message is not None
    assert a.user_message.parent_id == b.user_message.parent_id == start.message.id
    assert a.text() == "first" and b.text() == "second"
    alternates = service.store.siblings(a.user_message.id)
    assert [m.content for m in alternates] == ["From A", "From B"]


def test_a_ticket_stops_the_reply_before_or_while_it_runs(make_service: Make) -> None:
    engine = FakeEngine([f"w{i} " for i in range(50)])
    service = make_service(engine)
    early = Ticket()
    early.cancel()
    with pytest.raises(Cancelled):
        service.send(None, "Never", ticket=early)
    assert service.store.list_conversations() == []  # nothing stored
    ticket = Ticket()
    reply = service.send(None, "Stop me", ticket=ticket)
    chunks = []
    for chunk in reply:
        chunks.append(chunk)
        if len(chunks) == 3:
            ticket.cancel()
    assert reply.result.finish_reason == "cancelled" and len(chunks) == 3
    assert reply.message is not None and reply.message.state == "cancelled"
    assert reply.message.content == "w0 w1 w2 "


def test_a_conversation_deleted_mid_reply_ends_quietly(make_service: Make) -> None:
    service = make_service(FakeEngine(["a", "b", "c"]))
    reply = service.send(None, "Hi")
    with Store.open() as other:
        other.trash(reply.conversation_id)
        other.delete_forever(reply.conversation_id)
    assert reply.text() == "abc"
    assert reply.gone


def test_complete_stores_nothing(make_service: Make) -> None:
    service = make_service(FakeEngine(["ok"]), history=False)
    reply = service.complete([Message("user", "Hi")], overrides={"seed": 3})
    assert reply.text() == "ok" and reply.message is None
    with pytest.raises(UserError, match="not saved"):
        _ = service.store


def test_trashed_conversations_are_refused(make_service: Make) -> None:
    service = make_service(FakeEngine())
    reply = service.send(None, "Hi")
    reply.text()
    service.store.trash(reply.conversation_id)
    with pytest.raises(UserError, match="in the trash"):
        service.send(reply.conversation_id, "Again")


def test_invalid_text_is_scrubbed(make_service: Make) -> None:
    engine = FakeEngine()
    service = make_service(engine)
    service.send(None, "caf\udce9 \ud800!").text()
    assert engine.requests[-1][-1].content == "caf\ufffd \ufffd!"


def test_the_meter_counts_what_the_next_turn_sends(make_service: Make) -> None:
    engine = FakeEngine(n_ctx=2000)
    service = make_service(engine)
    first = service.send(None, "word " * 400)
    first.text()
    conv = first.conversation_id
    for _ in range(3):
        service.send(conv, "word " * 400).text()
    count = service.context_count(conv)
    messages = [Message(m.role, m.content) for m in service.store.current_branch(conv)]
    prompt = engine.prepare([*messages, Message("user", "")], Sampling())
    assert count.tokens == len(prompt.tokens) <= 2000 - Sampling().max_tokens
    assert count.dropped_messages == prompt.dropped_messages > 0
    assert service.context_count(None).tokens == 0


def test_the_meter_and_inspector_on_a_llama2_model(tiny_llama2: Path, settings: AppSettings
                                                   ) -> None:
    service = ChatService(LlamaEngine(), settings=lambda: settings)
    try:
        service.load_model(str(tiny_llama2), overrides={"n_ctx": 1024, "n_gpu_layers": 0})
        reply = service.send(None, "Hello", overrides={"max_tokens": 4, "seed": 1})
        reply.text()
        count = service.context_count(reply.conversation_id)
        assert count.tokens > len(reply.prompt.tokens) and not count.error
        assert reply.message is not None
        again = service.render_prompt(reply.message.id)
        assert again.tokens == reply.prompt.tokens and "[INST]" in again.text
    finally:
        service.close()


def test_progress_is_reported_while_the_prompt_is_read(make_service: Make) -> None:
    engine = FakeEngine(["ok"])
    engine.prefill_steps = 4
    service = make_service(engine)
    seen: list[tuple[int, int]] = []
    reply = service.send(None, "one two three four five six seven",
                         on_progress=lambda done, total: seen.append((done, total)))
    assert seen == []  # reading starts with the first iteration
    reply.text()
    total = len(reply.prompt.tokens)
    assert seen[0] == (0, total) and seen[-1] == (total, total) and len(seen) == 5


def test_the_local_engine_reports_progress(starter_model: Path, settings: AppSettings) -> None:
    service = ChatService(LlamaEngine(), settings=lambda: settings, history=False)
    try:
        service.load_model(str(starter_model), overrides={"n_ctx": 1024, "n_gpu_layers": 0})
        seen: list[tuple[int, int]] = []
        reply = service.complete([Message("user", "Hello there, how are you?")],
                                 overrides={"max_tokens": 2, "seed": 1},
                                 on_progress=lambda done, total: seen.append((done, total)))
        reply.text()
        assert seen[0][0] == 0 and seen[-1][0] == seen[-1][1] == seen[0][1] > 0
    finally:
        service.close()
