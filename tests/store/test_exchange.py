"""Export to JSON and Markdown, and validated all-or-nothing import."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from app.engine.types import GenerationResult
from app.store import Store, StoreError
from app.store.exchange import load_json_file, parse_json


def sample(store: Store) -> int:
    conv = store.create_conversation(
        system_prompt="Be brief.", sampling={"temperature": 0.3, "seed": 7}, model="m.gguf"
    )
    user = store.add_user_message(conv.id, "Name a sea mammal")
    first = store.start_assistant(conv.id, user.id, "Tiny Model", "/models/tiny.gguf")
    store.reply_writer(first.id).finish(
        GenerationResult(text="The walrus.", generated_tokens=4, ttft_s=0.25, tokens_per_s=40.0)
    )
    second = store.start_assistant(conv.id, user.id, "Tiny Model", "/models/tiny.gguf")
    store.reply_writer(second.id).finish(
        GenerationResult(text="The seal", finish_reason="error", error="out of memory")
    )
    store.set_pinned(conv.id, True)
    return conv.id


def canonical(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The conversations with file-local ids replaced by positions."""
    out = []
    for conv in document["conversations"]:
        conv = copy.deepcopy(conv)
        conv.pop("id", None)
        index = {m["id"]: i for i, m in enumerate(conv["messages"])}
        for msg in conv["messages"]:
            msg["id"] = index[msg["id"]]
            msg["parent"] = None if msg["parent"] is None else index[msg["parent"]]
        if conv.get("current_leaf") is not None:
            conv["current_leaf"] = index[conv["current_leaf"]]
        out.append(conv)
    return out


def test_json_export_keeps_branches_and_round_trips(store: Store) -> None:
    conv_id = sample(store)
    doc = store.export_json([conv_id])
    assert doc["format"] == "llama-desk-conversations" and doc["version"] == 1
    (conv,) = doc["conversations"]
    assert len(conv["messages"]) == 3 and conv["pinned"] is True
    assert [m["state"] for m in conv["messages"]] == ["complete", "complete", "error"]
    assert conv["messages"][2]["error"] == "out of memory"
    assert conv["messages"][1]["stats"]["generated_tokens"] == 4
    text = json.dumps(doc)
    new_ids = store.import_json(text)
    assert len(new_ids) == 1 and new_ids[0] != conv_id
    again = store.export_json(new_ids)
    assert canonical(again) == canonical(doc)
    assert [m.content for m in store.current_branch(new_ids[0])] == [
        "Name a sea mammal", "The seal"
    ]


def test_export_all_skips_the_trash_unless_asked(store: Store) -> None:
    keep = sample(store)
    gone = store.create_conversation(title="gone")
    store.trash(gone.id)
    assert [c["id"] for c in store.export_json()["conversations"]] == [keep]
    everything = store.export_json(include_trashed=True)["conversations"]
    assert {c["id"] for c in everything} == {keep, gone.id}


def test_markdown_is_readable(store: Store) -> None:
    conv_id = sample(store)
    text = store.export_markdown([conv_id])
    assert text.startswith("# Name a sea mammal\n")
    assert "**System prompt**" in text and "> Be brief." in text
    assert "### User · " in text and "### Assistant · Tiny Model · " in text
    assert "*error*" in text and "> **Error:** out of memory" in text
    assert "alternate 2 of 2" in text and "The seal" in text
    assert "The walrus." not in text  # only the current branch
    # the model last used for a reply replaces the one the conversation was created with
    assert "model /models/tiny.gguf" in text and "model m.gguf" not in text
    assert store.export_markdown([]) == ""
    assert store.export_markdown().count("\n# ") + 1 == 1


def valid_doc() -> dict[str, Any]:
    return {
        "format": "llama-desk-conversations",
        "version": 1,
        "conversations": [
            {
                "title": "ok",
                "created_at": 1.0,
                "messages": [
                    {"id": 1, "parent": None, "role": "user", "content": "hi", "created_at": 1.0},
                    {"id": 2, "parent": 1, "role": "assistant", "content": "yo",
                     "created_at": 2.0},
                ],
                "current_leaf": 2,
            }
        ],
    }


def mutate(path: str, value: Any) -> dict[str, Any]:
    doc = valid_doc()
    target: Any = doc
    keys = path.split(".")
    for key in keys[:-1]:
        target = target[int(key)] if key.isdigit() else target[key]
    last = keys[-1]
    if value is DELETE:
        del target[last]
    elif last.isdigit():
        target[int(last)] = value
    else:
        target[last] = value
    return doc


DELETE = object()

HOSTILE = [
    ([1, 2, 3], "not a Llama Desk conversations export"),
    (mutate("format", "something-else"), "not a Llama Desk conversations export"),
    (mutate("version", 2), "version 2 is not supported"),
    (mutate("version", "1"), "version 1 is not supported"),
    (mutate("version", True), "version True is not supported"),
    (mutate("conversations", {"a": 1}), "conversations: must be a list"),
    (mutate("conversations.0", "text"), "must be an object"),
    (mutate("conversations.0.messages", "x"), "messages: must be a list"),
    (mutate("conversations.0.messages.0.content", 5), "content: must be a string, got int"),
    (mutate("conversations.0.messages.0.content", "x" * 16_000_001), "limit 16,000,000"),
    (mutate("conversations.0.messages.0.content", "bad \ud800 text"), "not valid Unicode"),
    (mutate("conversations.0.messages.0.role", "root"), "role: must be one of"),
    (mutate("conversations.0.messages.0.state", "done"), "state: must be one of"),
    (mutate("conversations.0.messages.0.id", True), "must be a non-negative whole number"),
    (mutate("conversations.0.messages.0.id", -4), "must be a non-negative whole number"),
    (mutate("conversations.0.messages.0.id", 2), "message id 2 appears twice"),
    (mutate("conversations.0.messages.0.parent", 2), "form a cycle"),
    (mutate("conversations.0.messages.0.parent", 1), "form a cycle"),
    (mutate("conversations.0.messages.1.parent", 99), "unknown parent 99"),
    (mutate("conversations.0.messages.0.created_at", "yesterday"), "must be a time"),
    (mutate("conversations.0.messages.0.created_at", 1e300), "out of range"),
    (mutate("conversations.0.messages.0.stats", {"a": {"b": 1}}), "stats.a: must be a number"),
    (mutate("conversations.0.messages.0.stats", [1]), "stats: must be an object"),
    (mutate("conversations.0.messages.0.extra", 1), "unknown field(s) extra"),
    (mutate("conversations.0.messages.0.content", DELETE), "missing field(s) content"),
    (mutate("conversations.0.current_leaf", 7), "message 7 is not in this conversation"),
    (mutate("conversations.0.pinned", "yes"), "pinned: must be true or false"),
    (mutate("conversations.0.sampling", {"temperatur": 1}), "Unknown sampling setting"),
    (mutate("conversations.0.sampling", {"top_p": 7}), "out of range"),
    (mutate("conversations.0.title", ["t"]), "title: must be a string"),
]


@pytest.mark.parametrize(("doc", "message"), HOSTILE)
def test_hostile_documents_import_nothing(store: Store, doc: Any, message: str) -> None:
    sample(store)
    before = store.export_json(include_trashed=True)["conversations"]
    # A valid conversation first: validation happens before anything is written.
    if isinstance(doc, dict) and isinstance(doc.get("conversations"), list):
        doc["conversations"].insert(0, valid_doc()["conversations"][0])
    with pytest.raises(StoreError, match="nothing was imported") as info:
        store.import_json(doc)
    assert message in str(info.value)
    assert "\n" not in str(info.value) and len(str(info.value)) < 400
    assert store.export_json(include_trashed=True)["conversations"] == before


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "not valid JSON"),
        ('{"x": NaN}', "not valid JSON"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        (b"\xff\xfe\x00garbage", "not valid JSON"),
    ],
)
def test_malformed_json_is_a_clear_error(store: Store, text: str | bytes, message: str) -> None:
    with pytest.raises(StoreError, match=message):
        parse_json(text)
    with pytest.raises(StoreError, match=message):
        store.import_json(text)


def test_load_json_file_errors(tmp_path: Any) -> None:
    with pytest.raises(StoreError, match="Cannot read"):
        load_json_file(tmp_path / "missing.json")
    good = tmp_path / "good.json"
    good.write_text(json.dumps(valid_doc()), encoding="utf-8")
    assert load_json_file(good)["version"] == 1


def test_partial_replies_import_as_interrupted(store: Store) -> None:
    doc = mutate("conversations.0.messages.1.state", "partial")
    (new_id,) = store.import_json(doc)
    assert store.current_branch(new_id)[1].state == "interrupted"


def test_parents_listed_after_children_are_ordered(store: Store) -> None:
    doc = valid_doc()
    doc["conversations"][0]["messages"].reverse()
    (new_id,) = store.import_json(doc)
    assert [m.content for m in store.current_branch(new_id)] == ["hi", "yo"]
