"""Conversation operations: create, list order, rename, pin, settings, trash, restore, delete."""

from __future__ import annotations

import pytest

from app.store import Store, StoreError


def test_create_and_get(store: Store) -> None:
    conv = store.create_conversation(
        system_prompt="Be kind.", sampling={"temperature": 0.2}, model="m.gguf", title="  Plan\n x "
    )
    again = store.get_conversation(conv.id)
    assert again == conv
    assert conv.title == "Plan x" and conv.system_prompt == "Be kind."
    assert conv.sampling == {"temperature": 0.2} and conv.model == "m.gguf"
    assert not conv.pinned and conv.trashed_at is None and conv.current_leaf_id is None
    assert conv.created_at == conv.updated_at


def test_untitled_conversation_shows_a_placeholder(store: Store) -> None:
    conv = store.create_conversation()
    assert conv.title == "" and conv.display_title == "New conversation"


def test_list_pinned_first_then_most_recently_updated(store: Store) -> None:
    a = store.create_conversation(title="a")
    b = store.create_conversation(title="b")
    c = store.create_conversation(title="c")
    store.add_user_message(a.id, "bump a")  # a is now the most recent
    store.set_pinned(b.id, True)
    assert [x.title for x in store.list_conversations()] == ["b", "a", "c"]
    store.set_pinned(b.id, False)
    assert [x.title for x in store.list_conversations()] == ["a", "c", "b"]
    counted = store.list_conversations(counts=True)
    assert [x.message_count for x in counted] == [1, 0, 0]
    assert c.id in {x.id for x in counted}


def test_rename(store: Store) -> None:
    conv = store.create_conversation()
    store.add_user_message(conv.id, "first question")
    renamed = store.rename(conv.id, " Better\tname ")
    assert renamed.title == "Better name"
    store.add_user_message(conv.id, "another question")  # a rename is kept
    assert store.get_conversation(conv.id).title == "Better name"
    other = store.create_conversation()
    store.add_user_message(other.id, "newer")
    store.rename(conv.id, "Renamed again")  # renaming does not move it up the list
    assert [c.id for c in store.list_conversations()] == [other.id, conv.id]
    with pytest.raises(StoreError, match="cannot be empty"):
        store.rename(conv.id, "   ")


def test_update_settings(store: Store) -> None:
    conv = store.create_conversation()
    store.update_settings(conv.id, sampling={"top_k": 5}, model="x.gguf")
    store.set_system_prompt(conv.id, "You are terse.")
    got = store.get_conversation(conv.id)
    assert (got.sampling, got.model, got.system_prompt) == ({"top_k": 5}, "x.gguf", "You are terse.")


def test_trash_restore_and_empty(store: Store) -> None:
    keep = store.create_conversation(title="keep")
    gone = store.create_conversation(title="gone")
    store.add_user_message(gone.id, "hello walrus")
    trashed = store.trash(gone.id)
    assert trashed.trashed_at is not None
    assert [c.title for c in store.list_conversations()] == ["keep"]
    assert [c.title for c in store.list_trash()] == ["gone"]
    assert {c.title for c in store.list_conversations(include_trashed=True)} == {"keep", "gone"}
    assert store.search("walrus") == []  # the trash is not searched by default
    assert len(store.search("walrus", include_trashed=True)) == 1
    with pytest.raises(StoreError, match="in the trash; restore it first"):
        store.add_user_message(gone.id, "more")
    restored = store.restore(gone.id)  # undo
    assert restored.trashed_at is None
    assert [m.content for m in store.current_branch(gone.id)] == ["hello walrus"]
    store.trash(gone.id)
    assert store.empty_trash() == 1
    assert store.list_trash() == []
    with pytest.raises(StoreError, match=f"No conversation with id {gone.id}"):
        store.get_conversation(gone.id)
    assert store.search("walrus", include_trashed=True) == []  # index follows deletes
    assert store._conn.execute("SELECT count(*) FROM messages").fetchone()[0] == 0
    assert store.get_conversation(keep.id).title == "keep"


def test_delete_forever(store: Store) -> None:
    conv = store.create_conversation()
    store.add_user_message(conv.id, "x")
    store.delete_forever(conv.id)
    assert store.list_conversations(include_trashed=True) == []


def test_ids_are_not_reused_after_delete(store: Store) -> None:
    first = store.create_conversation()
    store.delete_forever(first.id)
    assert store.create_conversation().id != first.id


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.get_conversation(999),
        lambda s: s.rename(999, "x"),
        lambda s: s.set_pinned(999),
        lambda s: s.trash(999),
        lambda s: s.restore(999),
        lambda s: s.delete_forever(999),
        lambda s: s.current_branch(999),
        lambda s: s.add_user_message(999, "hi"),
        lambda s: s.export_json([999]),
    ],
)
def test_unknown_conversation_is_a_clear_error(store: Store, call: object) -> None:
    with pytest.raises(StoreError, match="No conversation with id 999"):
        call(store)  # type: ignore[operator]


def test_previews_show_the_latest_message(store: Store) -> None:
    conv = store.create_conversation()
    user = store.add_user_message(conv.id, "What is\n a  llama?")
    assert store.previews() == {conv.id: "What is a llama?"}
    reply = store.start_assistant(conv.id, user.id)  # still empty: the question shows
    assert store.previews()[conv.id] == "What is a llama?"
    store.save_partial_text(reply.id, "A llama is a camelid. " * 20)
    assert store.previews(limit=30)[conv.id] == "A llama is a camelid. A llama"
    empty = store.create_conversation()
    store.trash(conv.id)
    assert store.previews() == {} and empty.id not in store.previews()
