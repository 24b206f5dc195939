"""Plain data the store hands out: conversations, stored messages, search hits, and StoreError."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from app.errors import UserError

MESSAGE_STATES: tuple[str, ...] = ("complete", "partial", "interrupted", "cancelled", "error")

# add_user_message(parent_id=AUTO) appends after the conversation's current leaf.
AUTO: Final = "auto"

# How a message state is shown to people (history CLI, Markdown export, the window).
STATE_LABELS: Final = {
    "partial": "being written",
    "interrupted": "interrupted",
    "cancelled": "stopped",
    "error": "error",
}
ROLE_LABELS: Final = {"system": "System", "user": "User", "assistant": "Assistant"}
TITLE_MAX = 80  # characters kept when a title is derived from the first user message


class StoreError(UserError):
    """The conversations database or an import/export file cannot be used as asked."""


@dataclass
class Conversation:
    """One conversation's settings; its messages are read separately."""

    id: int
    title: str
    created_at: float  # seconds since the Unix epoch (UTC)
    updated_at: float
    system_prompt: str = ""
    sampling: dict[str, Any] = field(default_factory=dict)
    model: str | None = None
    pinned: bool = False
    trashed_at: float | None = None
    current_leaf_id: int | None = None
    message_count: int = 0

    @property
    def display_title(self) -> str:
        return self.title or "New conversation"


@dataclass
class StoredMessage:
    """One node of a conversation's message tree.

    ``sibling_index`` (0-based) and ``sibling_count`` describe the alternates that share this
    message's parent: regenerated answers, or edited user messages.
    """

    id: int
    conversation_id: int
    parent_id: int | None
    role: str
    content: str
    created_at: float
    updated_at: float
    state: str = "complete"
    error: str | None = None
    model_name: str | None = None
    model_file: str | None = None
    stats: dict[str, Any] = field(default_factory=dict)
    sibling_index: int = 0
    sibling_count: int = 1


@dataclass
class SearchHit:
    """One full-text search match: the message, its conversation and a highlighted snippet."""

    conversation_id: int
    conversation_title: str
    message_id: int
    role: str
    snippet: str
    rank: float  # bm25: lower is better
    created_at: float


_NOT_FINITE = object()


def _finite_only(value: Any) -> Any:
    """``value`` without non-finite numbers: dropped from objects, null in lists."""
    if isinstance(value, dict):
        return {k: _finite_only(v) for k, v in value.items()
                if not (isinstance(v, float) and not math.isfinite(v))}
    if isinstance(value, list):
        return [None if isinstance(v, float) and not math.isfinite(v) else _finite_only(v)
                for v in value]
    return value


def dumps(value: Any) -> str:
    """Compact JSON for TEXT columns. NaN and infinities are left out: they are not JSON, and a
    stored value must always export to a file that imports again."""
    return json.dumps(_finite_only(value), ensure_ascii=False, separators=(",", ":"),
                      sort_keys=True, allow_nan=False)


def _drop_constants(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_constants(v) for k, v in value.items() if v is not _NOT_FINITE}
    if isinstance(value, list):
        return [None if v is _NOT_FINITE else _drop_constants(v) for v in value]
    return value


def loads_dict(text: str | None) -> dict[str, Any]:
    """A JSON object from a TEXT column; anything else reads as empty. A NaN or an infinity
    written by an earlier version is left out (read as not set)."""
    if not text:
        return {}
    try:
        value = json.loads(text, parse_constant=lambda _name: _NOT_FINITE)
    except ValueError:
        return {}
    return _drop_constants(value) if isinstance(value, dict) else {}


def derive_title(text: str) -> str:
    """A conversation title from a user message: its first non-empty line, trimmed, shortened."""
    for line in text.splitlines():
        words = line.split()
        if words:
            title = " ".join(words)
            if len(title) > TITLE_MAX:
                title = title[: TITLE_MAX - 1].rstrip() + "…"
            return title
    return ""


# Column names are the dataclass field names; a row's first columns come in this order.
CONVERSATION_FIELDS = ("id", "title", "created_at", "updated_at", "system_prompt", "sampling",
                        "model", "pinned", "trashed_at", "current_leaf_id")
MESSAGE_FIELDS = ("id", "conversation_id", "parent_id", "role", "content", "created_at",
                   "updated_at", "state", "error", "model_name", "model_file", "stats")
CONVERSATION_COLUMNS = ", ".join(f"c.{name}" for name in CONVERSATION_FIELDS)
MESSAGE_COLUMNS = ", ".join(f"m.{name}" for name in MESSAGE_FIELDS)


def conversation_from_row(row: Any, message_count: int = 0) -> Conversation:
    values = dict(zip(CONVERSATION_FIELDS, row, strict=False))
    values.update(sampling=loads_dict(values["sampling"]), pinned=bool(values["pinned"]))
    return Conversation(**values, message_count=message_count)


def message_from_row(row: Any, sibling_index: int = 0, sibling_count: int = 1) -> StoredMessage:
    values = dict(zip(MESSAGE_FIELDS, row, strict=False))
    values["stats"] = loads_dict(values["stats"])
    return StoredMessage(**values, sibling_index=sibling_index, sibling_count=sibling_count)


def heading_parts(
    msg: StoredMessage, when: Callable[[float], str], state: str = "{}"
) -> list[str]:
    """What is said above a message, in order: role, model, time, an unfinished state (as the
    ``state`` pattern shows it) and which alternate it is. Faces join and decorate them."""
    parts = [ROLE_LABELS.get(msg.role, msg.role)]
    if msg.model_name:
        parts.append(msg.model_name)
    parts.append(when(msg.created_at))
    if msg.state in STATE_LABELS:
        parts.append(state.format(STATE_LABELS[msg.state]))
    if msg.sibling_count > 1:
        parts.append(f"alternate {msg.sibling_index + 1} of {msg.sibling_count}")
    return parts
