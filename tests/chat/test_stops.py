"""Stop strings: the matcher against a plain cut, and stop/save/plain text through the service."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.chat.service import ChatService
from app.chat.stops import StopMatcher
from app.engine.engine import LlamaEngine
from app.engine.types import Message
from app.errors import ContextOverflowError
from tests.ui.fakes import FakeEngine

Make = Callable[..., ChatService]
ALPHABET = "ab\n<>é🦙"


def reference_cut(text: str, stops: list[str]) -> tuple[str, bool]:
    found = [i for i in (text.find(s) for s in stops if s) if i >= 0]
    return (text[:min(found)], True) if found else (text, False)


@given(pieces=st.lists(st.text(ALPHABET, max_size=6), max_size=12),
       stops=st.lists(st.text(ALPHABET, min_size=1, max_size=4), min_size=1, max_size=4))
def test_matcher_equals_cutting_the_whole_text(pieces: list[str], stops: list[str]) -> None:
    matcher = StopMatcher(stops)
    shown = ""
    for piece in pieces:
        out = matcher.feed(piece)
        shown += out
        # Never shows text that the final answer leaves out.
        assert reference_cut("".join(pieces), stops)[0].startswith(shown)
    shown += matcher.flush()
    assert (shown, matcher.hit) == reference_cut("".join(pieces), stops)


def test_a_stop_string_across_chunks_stops_and_is_not_stored(make_service: Make) -> None:
    engine = FakeEngine(["Hello", " wor", "ld! More", " text"])
    service = make_service(engine)
    reply = service.complete([Message("user", "Hi")], stop=["world", "zzz"], save=True)
    assert reply.text() == "Hello "
    assert reply.result.finish_reason == "stop" and reply.result.text == "Hello "
    assert reply.result.generated_tokens == 3  # stopped at the chunk that completed the stop
    assert reply.message is not None
    assert (reply.message.content, reply.message.state) == ("Hello ", "complete")


def test_without_a_stop_hit_the_held_text_comes_out(make_service: Make) -> None:
    service = make_service(FakeEngine(["ab", "c"]))
    reply = service.complete([Message("user", "Hi")], stop=["cd"])
    assert list(reply) == ["ab", "c"] and reply.result.finish_reason == "stop"
    assert reply.message is None  # not stored unless asked


def test_saving_stores_every_message_of_the_request(make_service: Make) -> None:
    service = make_service(FakeEngine(["Yes."]))
    messages = [Message("system", "Be kind."), Message("user", "One"),
                Message("assistant", "Two"), Message("user", "Three")]
    reply = service.complete(messages, overrides={"seed": 3}, save=True)
    reply.text()
    assert reply.conversation_id is not None
    conv = service.store.get_conversation(reply.conversation_id)
    assert conv.system_prompt == "Be kind." and conv.sampling == {"seed": 3}
    assert conv.title == "One"
    branch = service.store.current_branch(conv.id)
    assert [(m.role, m.content) for m in branch] == [
        ("user", "One"), ("assistant", "Two"), ("user", "Three"), ("assistant", "Yes.")]


def test_a_refused_request_saves_nothing(make_service: Make) -> None:
    service = make_service(FakeEngine(n_ctx=64))
    with pytest.raises(ContextOverflowError):
        service.complete([Message("user", "word " * 200)], overrides={"max_tokens": 8},
                         save=True)
    assert service.store.list_conversations() == []


def test_plain_text_completion_on_the_real_engine(tiny_llama2: Path, spm_llama: object) -> None:
    from app.settings import AppSettings

    settings = AppSettings()
    service = ChatService(LlamaEngine(), settings=lambda: settings, history=False)
    try:
        service.load_model(str(tiny_llama2), overrides={"n_ctx": 512, "n_gpu_layers": 0})
        reply = service.complete_text("<s>[INST] Hi [/INST]", overrides={"max_tokens": 4,
                                                                         "seed": 1})
        reply.text()
        engine = service.engine
        assert isinstance(engine, LlamaEngine) and engine.last_prompt is not None
        bos = spm_llama.token_bos()  # type: ignore[attr-defined]
        tokens = engine.last_prompt.tokens
        assert tokens[0] == bos and tokens.count(bos) == 1  # "<s>" typed is the one BOS
        assert tokens[1:] == spm_llama.tokenize(  # type: ignore[attr-defined]
            b"[INST] Hi [/INST]", add_bos=False, special=True)
        assert reply.result.prompt_tokens == len(tokens)
        with pytest.raises(ContextOverflowError, match=r"needs [\d,]+ tokens but only [\d,]+ fit"):
            service.complete_text("word " * 600, overrides={"max_tokens": 8})
    finally:
        service.close()
