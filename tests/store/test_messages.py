"""The message tree: branches from edits, alternates from regenerate, switching, titles."""

from __future__ import annotations

import pytest

from app.engine.types import GenerationResult
from app.store import Store, StoreError
from app.store.models import derive_title


def reply(store: Store, conv_id: int, parent: int | None, text: str) -> int:
    msg = store.start_assistant(conv_id, parent, "Model", "/models/m.gguf")
    writer = store.reply_writer(msg.id)
    writer.append(text)
    writer.finish(GenerationResult(text=text, generated_tokens=3))
    return msg.id


def contents(store: Store, conv_id: int) -> list[str]:
    return [m.content for m in store.current_branch(conv_id)]


def test_title_from_first_user_message(store: Store) -> None:
    conv = store.create_conversation()
    store.add_user_message(conv.id, "\n   How do   walruses\tsleep?  \nMore detail here.")
    assert store.get_conversation(conv.id).title == "How do walruses sleep?"
    store.add_user_message(conv.id, "Second question")
    assert store.get_conversation(conv.id).title == "How do walruses sleep?"


def test_derive_title_shortens_long_lines() -> None:
    title = derive_title("word " * 100)
    assert len(title) <= 80 and title.endswith("…")
    assert derive_title("   \n  ") == ""


def test_linear_conversation_and_auto_parent(store: Store) -> None:
    conv = store.create_conversation()
    u1 = store.add_user_message(conv.id, "q1")
    a1 = reply(store, conv.id, u1.id, "a1")
    u2 = store.add_user_message(conv.id, "q2")  # AUTO: after the current leaf
    assert u2.parent_id == a1
    reply(store, conv.id, u2.id, "a2")
    assert contents(store, conv.id) == ["q1", "a1", "q2", "a2"]
    branch = store.current_branch(conv.id)
    assert [m.role for m in branch] == ["user", "assistant"] * 2
    assert all(m.sibling_count == 1 and m.sibling_index == 0 for m in branch)
    assert branch[1].model_name == "Model" and branch[1].model_file == "/models/m.gguf"
    assert store.get_conversation(conv.id).model == "/models/m.gguf"


def test_regenerate_keeps_the_earlier_answer_as_an_alternate(store: Store) -> None:
    conv = store.create_conversation()
    u1 = store.add_user_message(conv.id, "q1")
    first = reply(store, conv.id, u1.id, "first answer")
    second = reply(store, conv.id, u1.id, "second answer")
    branch = store.current_branch(conv.id)
    assert contents(store, conv.id) == ["q1", "second answer"]
    assert (branch[1].sibling_index, branch[1].sibling_count) == (1, 2)
    assert [m.id for m in store.siblings(first)] == [first, second]
    store.select_alternate(first)
    assert contents(store, conv.id) == ["q1", "first answer"]
    assert store.current_branch(conv.id)[1].sibling_index == 0
    store.switch_alternate(first, +1)
    assert contents(store, conv.id) == ["q1", "second answer"]
    store.switch_alternate(second, +5)  # clamps at the last one
    assert contents(store, conv.id) == ["q1", "second answer"]


def test_editing_a_user_message_starts_a_branch(store: Store) -> None:
    conv = store.create_conversation()
    u1 = store.add_user_message(conv.id, "q1")
    reply(store, conv.id, u1.id, "a1")
    u2 = store.add_user_message(conv.id, "q2 original")
    reply(store, conv.id, u2.id, "a2 original")
    edited = store.edit_user_message(u2.id, "q2 edited")
    reply(store, conv.id, edited.id, "a2 edited")
    assert contents(store, conv.id) == ["q1", "a1", "q2 edited", "a2 edited"]
    # Switching back to the original question restores its whole sub-branch.
    store.select_alternate(u2.id)
    assert contents(store, conv.id) == ["q1", "a1", "q2 original", "a2 original"]
    # Editing the very first message makes a second root.
    root2 = store.edit_user_message(u1.id, "q1 again")
    assert root2.parent_id is None
    assert contents(store, conv.id) == ["q1 again"]
    assert store.current_branch(conv.id)[0].sibling_count == 2
    assert len(store.messages(conv.id)) == 7


def test_parent_must_belong_to_the_conversation(store: Store) -> None:
    a = store.create_conversation()
    b = store.create_conversation()
    ua = store.add_user_message(a.id, "in a")
    with pytest.raises(StoreError, match=f"Message {ua.id} is not part of conversation {b.id}"):
        store.add_user_message(b.id, "x", parent_id=ua.id)
    with pytest.raises(StoreError, match="No message with id 12345"):
        store.select_alternate(12345)
    with pytest.raises(StoreError, match="Unknown message role"):
        store.add_message(a.id, "robot", "x")
    with pytest.raises(StoreError, match="not a user message"):
        store.edit_user_message(reply(store, a.id, ua.id, "r"), "x")


def test_system_messages_can_be_stored(store: Store) -> None:
    conv = store.create_conversation()
    store.add_message(conv.id, "system", "Act as a pirate.")
    store.add_user_message(conv.id, "hi")
    assert [m.role for m in store.current_branch(conv.id)] == ["system", "user"]
    assert store.get_conversation(conv.id).title == "hi"


def test_user_message_is_committed_before_generation(store: Store, db_path: object) -> None:
    conv = store.create_conversation()
    user = store.add_user_message(conv.id, "saved at once")
    partial = store.start_assistant(conv.id, user.id, "M", "m.gguf")
    with Store.open(store.path) as other:  # another connection sees both right away
        branch = other.current_branch(conv.id)
        assert [(m.role, m.state) for m in branch] == [("user", "complete"), ("assistant", "partial")]
        assert branch[1].id == partial.id
        assert other.recovered == 0  # our live reply is not taken for a crashed one
