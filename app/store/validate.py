"""Validation of a JSON export before import: types, sizes, references and cycles."""

from __future__ import annotations

import math
from typing import Any

from app.errors import SettingsError
from app.store.models import MESSAGE_STATES, StoreError

FORMAT = "llama-desk-conversations"
VERSION = 1

MAX_CONVERSATIONS = 100_000
MAX_MESSAGES = 1_000_000  # in one file
MAX_TEXT = 16_000_000  # characters in one message or system prompt (the store keeps to it too)
MAX_SHORT = 4_096  # title, model names, error text
MAX_STATS = 64
MAX_TIME = 1e11  # seconds since the epoch (year ~5138)
ROLES = ("system", "user", "assistant")

CONVERSATION_KEYS = {
    "id", "title", "created_at", "updated_at", "system_prompt", "sampling", "model", "pinned",
    "trashed_at", "current_leaf", "messages",
}
MESSAGE_KEYS = {
    "id", "parent", "role", "content", "created_at", "updated_at", "state", "error",
    "model_name", "model_file", "stats",
}


class Invalid(StoreError):
    pass


def _fail(where: str, problem: str) -> Invalid:
    return Invalid(f"Cannot import: {where}: {problem}; nothing was imported.")


def _string(value: Any, where: str, limit: int, *, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str):
        kind = "a string or null" if optional else "a string"
        raise _fail(where, f"must be {kind}, got {type(value).__name__}")
    if len(value) > limit:
        raise _fail(where, f"is {len(value):,} characters long (limit {limit:,})")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as err:
        raise _fail(where, "contains text that is not valid Unicode") from err
    return value


def _time(value: Any, where: str, *, optional: bool = False) -> float | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(where, f"must be a time in seconds, got {type(value).__name__}")
    if not math.isfinite(value) or not 0 <= value <= MAX_TIME:
        raise _fail(where, f"time {value!r} is out of range")
    return float(value)


def _id(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
        raise _fail(where, f"must be a non-negative whole number, got {value!r:.40}")
    return value


def _scalars(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(where, f"must be an object, got {type(value).__name__}")
    if len(value) > MAX_STATS:
        raise _fail(where, f"has {len(value)} entries (limit {MAX_STATS})")
    for key, item in value.items():
        _string(key, f"{where} key", 64)
        if isinstance(item, float) and not math.isfinite(item):
            raise _fail(f"{where}.{key}", "must be a finite number")
        if isinstance(item, int) and not isinstance(item, bool) and abs(item) >= 2**63:
            raise _fail(f"{where}.{key}", "is too large")
        if isinstance(item, str):
            _string(item, f"{where}.{key}", MAX_SHORT)
        elif item is not None and not isinstance(item, bool | int | float):
            raise _fail(f"{where}.{key}", "must be a number, string, true/false or null")
    return value


def sampling_problem(values: Any) -> str | None:
    """Why ``values`` are not valid conversation sampling settings (None when they are).

    The store refuses to keep what an import would refuse, so that every export imports again.
    """
    from app.engine.types import Sampling

    if not isinstance(values, dict):
        return f"must be an object, got {type(values).__name__}"
    try:
        Sampling.from_dict(values)
    except (SettingsError, TypeError) as err:
        return str(err).rstrip(".")
    return None


def _sampling(value: Any, where: str) -> dict[str, Any]:
    values = _scalars(value, where)
    problem = sampling_problem(values)
    if problem:
        raise _fail(where, problem)
    return values


def _keys(item: Any, allowed: set[str], required: set[str], where: str) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise _fail(where, f"must be an object, got {type(item).__name__}")
    unknown = sorted(set(item) - allowed)
    if unknown:
        raise _fail(where, f"unknown field(s) {', '.join(map(str, unknown))[:200]}")
    missing = sorted(required - set(item))
    if missing:
        raise _fail(where, f"missing field(s) {', '.join(missing)}")
    return item


def check_message(item: Any, where: str) -> dict[str, Any]:
    msg = _keys(item, MESSAGE_KEYS, {"id", "parent", "role", "content", "created_at"}, where)
    state = msg.get("state", "complete")
    if state not in MESSAGE_STATES:
        raise _fail(f"{where}.state", f"must be one of {', '.join(MESSAGE_STATES)}")
    if msg["role"] not in ROLES:
        raise _fail(f"{where}.role", f"must be one of {', '.join(ROLES)}")
    created = _time(msg["created_at"], f"{where}.created_at")
    return {
        "id": _id(msg["id"], f"{where}.id"),
        "parent": None if msg["parent"] is None else _id(msg["parent"], f"{where}.parent"),
        "role": msg["role"],
        "content": _string(msg["content"], f"{where}.content", MAX_TEXT),
        "created_at": created,
        "updated_at": _time(msg.get("updated_at", created), f"{where}.updated_at"),
        # Nothing writes an imported reply: a partial one is an interrupted one.
        "state": "interrupted" if state == "partial" else state,
        "error": _string(msg.get("error"), f"{where}.error", MAX_SHORT, optional=True),
        "model_name": _string(msg.get("model_name"), f"{where}.model_name", MAX_SHORT,
                              optional=True),
        "model_file": _string(msg.get("model_file"), f"{where}.model_file", MAX_SHORT,
                              optional=True),
        "stats": _scalars(msg.get("stats", {}), f"{where}.stats"),
    }


def topological(messages: list[dict[str, Any]], where: str) -> list[dict[str, Any]]:
    """Parents before children (file order kept where it already is); rejects cycles."""
    by_id: dict[int, dict[str, Any]] = {}
    for msg in messages:
        if msg["id"] in by_id:
            raise _fail(where, f"message id {msg['id']} appears twice")
        by_id[msg["id"]] = msg
    for msg in messages:
        if msg["parent"] is not None and msg["parent"] not in by_id:
            raise _fail(where, f"message {msg['id']} has unknown parent {msg['parent']}")
    placed: set[int] = set()
    order: list[dict[str, Any]] = []
    for msg in messages:
        chain: list[dict[str, Any]] = []
        seen: set[int] = set()
        node: dict[str, Any] | None = msg
        while node is not None and node["id"] not in placed:
            if node["id"] in seen:
                raise _fail(where, f"the parents of message {msg['id']} form a cycle")
            seen.add(node["id"])
            chain.append(node)
            node = None if node["parent"] is None else by_id[node["parent"]]
        for item in reversed(chain):
            placed.add(item["id"])
            order.append(item)
    return order


def check_conversation(item: Any, where: str) -> dict[str, Any]:
    conv = _keys(item, CONVERSATION_KEYS, {"created_at", "messages"}, where)
    raw_messages = conv["messages"]
    if not isinstance(raw_messages, list):
        raise _fail(f"{where}.messages", "must be a list")
    messages = [check_message(m, f"{where}.messages[{i}]") for i, m in enumerate(raw_messages)]
    leaf = conv.get("current_leaf")
    if leaf is not None:
        leaf = _id(leaf, f"{where}.current_leaf")
        if leaf not in {m["id"] for m in messages}:
            raise _fail(f"{where}.current_leaf", f"message {leaf} is not in this conversation")
    pinned = conv.get("pinned", False)
    if not isinstance(pinned, bool):
        raise _fail(f"{where}.pinned", "must be true or false")
    created = _time(conv["created_at"], f"{where}.created_at")
    return {
        "title": _string(conv.get("title", ""), f"{where}.title", MAX_SHORT),
        "created_at": created,
        "updated_at": _time(conv.get("updated_at", created), f"{where}.updated_at"),
        "system_prompt": _string(conv.get("system_prompt", ""), f"{where}.system_prompt",
                                 MAX_TEXT),
        "sampling": _sampling(conv.get("sampling", {}), f"{where}.sampling"),
        "model": _string(conv.get("model"), f"{where}.model", MAX_SHORT, optional=True),
        "pinned": pinned,
        "trashed_at": _time(conv.get("trashed_at"), f"{where}.trashed_at", optional=True),
        "current_leaf": leaf,
        "messages": topological(messages, where),
    }


def check_document(data: Any) -> list[dict[str, Any]]:
    """The validated conversations of an export document; Invalid (a StoreError) otherwise."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise Invalid(
            f"Cannot import: this is not a Llama Desk conversations export "
            f"(expected \"format\": \"{FORMAT}\"); nothing was imported."
        )
    version = data.get("version")
    if version != VERSION or isinstance(version, bool):
        raise Invalid(
            f"Cannot import: export format version {str(version)[:20]} is not supported "
            f"(this Llama Desk reads version {VERSION}); nothing was imported."
        )
    conversations = data.get("conversations")
    if not isinstance(conversations, list):
        raise _fail("conversations", "must be a list")
    if len(conversations) > MAX_CONVERSATIONS:
        raise _fail("conversations", f"more than {MAX_CONVERSATIONS:,} conversations")
    total = sum(len(c.get("messages", ())) for c in conversations if isinstance(c, dict)
                and isinstance(c.get("messages"), list))
    if total > MAX_MESSAGES:
        raise _fail("conversations", f"{total:,} messages (limit {MAX_MESSAGES:,})")
    return [check_conversation(c, f"conversations[{i}]") for i, c in enumerate(conversations)]
