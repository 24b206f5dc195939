"""What a stored reply remembers of its prompt: where the cut was, and the limit it stopped at."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app.chat.reply import limit_note
from app.chat.service import ChatService, branch_cut
from app.store import Store
from app.store.models import StoredMessage
from tests.ui.fakes import FakeEngine

Make = Callable[..., ChatService]


def msg(mid: int, role: str, content: str = "text", **kw: Any) -> StoredMessage:
    return StoredMessage(id=mid, conversation_id=1, parent_id=mid - 1 or None, role=role,
                         content=content, created_at=0.0, updated_at=0.0, **kw)


def test_branch_cut_reads_the_latest_reply() -> None:
    branch = [msg(1, "user"), msg(2, "assistant", stats={"dropped_messages": 0}),
              msg(3, "user"), msg(4, "assistant", stats={"dropped_messages": 2}),
              msg(5, "user"), msg(6, "assistant", "", state="partial")]
    assert branch_cut(branch) == (2, 2)
    assert branch_cut(branch[:2]) == (0, 0)
    assert branch_cut([msg(1, "user"), msg(2, "assistant", stats={})]) == (0, 0)
    # The count is of stored messages, an empty (failed) reply included, so it is the index.
    failed = [msg(1, "user"), msg(2, "assistant", ""), msg(3, "user"),
              msg(4, "assistant", stats={"dropped_messages": 2})]
    assert branch_cut(failed) == (2, 2)


def test_the_cut_and_the_limit_are_stored_with_the_reply(make_service: Make) -> None:
    engine = FakeEngine(["word "] * 8, n_ctx=700)
    engine.max_out = True
    service = make_service(engine)
    overrides = {"max_tokens": 8}
    conv = None
    for _ in range(6):
        reply = service.send(conv, "pad " * 150, overrides=overrides)
        reply.text()
        conv = reply.conversation_id
    assert reply.message is not None and conv is not None
    stats = reply.message.stats
    assert stats["dropped_messages"] == reply.prompt.dropped_messages > 0
    assert stats["max_tokens"] == 8
    with Store.open() as other:  # a restart: the cut comes from the store alone
        branch = other.current_branch(conv)
        index, dropped = branch_cut(branch)
        assert dropped == stats["dropped_messages"] and index == dropped
        exported = other.export_json([conv])
        assert other.import_json(exported)  # what the store keeps imports again


def test_limit_note_says_which_limit() -> None:
    assert limit_note({"finish_reason": "stop"}) == ""
    assert limit_note({"finish_reason": "length", "max_tokens": 512,
                       "generated_tokens": 512}) == "stopped at the 512-token limit"
    assert limit_note({"finish_reason": "length", "max_tokens": 512,
                       "generated_tokens": 40}) == "stopped: the context is full"
    assert limit_note({"finish_reason": "length"}) == "stopped at the token limit"
