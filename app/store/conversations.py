"""Conversation operations: create, read, list, rename, pin, settings, trash and restore."""

from __future__ import annotations

from typing import Any

from app.store.base import StoreBase
from app.store.models import (
    CONVERSATION_COLUMNS,
    Conversation,
    StoreError,
    conversation_from_row,
    dumps,
)
from app.store.validate import MAX_SHORT, MAX_TEXT, sampling_problem

TITLE_LIMIT = 200

_COUNT = "(SELECT count(*) FROM messages m WHERE m.conversation_id = c.id)"


def clean_title(title: str) -> str:
    """One trimmed line, at most TITLE_LIMIT characters."""
    return " ".join(str(title).split())[:TITLE_LIMIT]


def _check_settings(system_prompt: str | None, sampling: dict[str, Any] | None) -> None:
    """Refuse what an import of the export would refuse (an export must always import again)."""
    if system_prompt is not None and len(system_prompt) > MAX_TEXT:
        raise StoreError(f"The system prompt is {len(system_prompt):,} characters long; the "
                         f"limit is {MAX_TEXT:,}.")
    if sampling is not None:
        problem = sampling_problem(sampling)
        if problem:
            raise StoreError(f"Invalid sampling settings: {problem}.")


class ConversationsMixin(StoreBase):
    """Conversation-level operations of the Store."""

    def create_conversation(
        self,
        system_prompt: str = "",
        sampling: dict[str, Any] | None = None,
        model: str | None = None,
        title: str | None = None,
    ) -> Conversation:
        """A new, empty conversation (committed). Sampling settings must be valid (no NaN)."""
        _check_settings(system_prompt, sampling)
        now = self._now()
        with self._write() as conn:
            cur = conn.execute(
                "INSERT INTO conversations(title, created_at, updated_at, system_prompt, sampling,"
                " model) VALUES (?, ?, ?, ?, ?, ?)",
                (clean_title(title or ""), now, now, system_prompt, dumps(sampling or {}),
                 None if model is None else model[:MAX_SHORT]),
            )
            conversation_id = int(cur.lastrowid or 0)
        return self.get_conversation(conversation_id)

    def get_conversation(self, conversation_id: int) -> Conversation:
        """One conversation (trashed ones too); StoreError when there is no such id."""
        row = self._conn.execute(
            f"SELECT {CONVERSATION_COLUMNS}, {_COUNT} FROM conversations c WHERE c.id = ?",
            (conversation_id,),
        ).fetchone()
        if row is None:
            raise StoreError(f"No conversation with id {conversation_id}.")
        return conversation_from_row(row, row[10])

    def list_conversations(
        self, include_trashed: bool = False, *, counts: bool = False
    ) -> list[Conversation]:
        """Pinned first, then most recently updated. ``counts`` fills ``message_count``."""
        count = _COUNT if counts else "0"
        where = "" if include_trashed else "WHERE c.trashed_at IS NULL"
        rows = self._conn.execute(
            f"SELECT {CONVERSATION_COLUMNS}, {count} FROM conversations c {where} "
            "ORDER BY c.pinned DESC, c.updated_at DESC, c.id DESC"
        ).fetchall()
        return [conversation_from_row(row, row[10]) for row in rows]

    def list_trash(self, *, counts: bool = False) -> list[Conversation]:
        """Trashed conversations, most recently trashed first."""
        count = _COUNT if counts else "0"
        rows = self._conn.execute(
            f"SELECT {CONVERSATION_COLUMNS}, {count} FROM conversations c "
            "WHERE c.trashed_at IS NOT NULL ORDER BY c.trashed_at DESC, c.id DESC"
        ).fetchall()
        return [conversation_from_row(row, row[10]) for row in rows]

    def previews(self, limit: int = 120) -> dict[int, str]:
        """One line of each listed conversation's latest message (its first ``limit``
        characters; the message it answers while a reply is still empty), by conversation id."""
        rows = self._conn.execute(
            "SELECT c.id, substr(coalesce(nullif(m.content, ''), p.content, ''), 1, ?) "
            "FROM conversations c JOIN messages m ON m.id = c.current_leaf_id "
            "LEFT JOIN messages p ON p.id = m.parent_id WHERE c.trashed_at IS NULL",
            (limit,),
        ).fetchall()
        return {int(row[0]): " ".join(str(row[1]).split()) for row in rows}

    def _update(self, conversation_id: int, sql: str, params: tuple[Any, ...]) -> Conversation:
        with self._write() as conn:
            self._require_conversation(conversation_id)
            conn.execute(f"UPDATE conversations SET {sql} WHERE id = ?", (*params, conversation_id))
        return self.get_conversation(conversation_id)

    def rename(self, conversation_id: int, title: str) -> Conversation:
        title = clean_title(title)
        if not title:
            raise StoreError("A conversation title cannot be empty.")
        # The title only: a rename does not move the conversation up the most-recent list.
        return self._update(conversation_id, "title = ?", (title,))

    def set_pinned(self, conversation_id: int, pinned: bool = True) -> Conversation:
        return self._update(conversation_id, "pinned = ?", (int(bool(pinned)),))

    def update_settings(
        self,
        conversation_id: int,
        *,
        system_prompt: str | None = None,
        sampling: dict[str, Any] | None = None,
        model: str | None = None,
    ) -> Conversation:
        """Change any of the system prompt, sampling settings and last-used model."""
        _check_settings(system_prompt, sampling)
        sets: list[str] = []
        params: list[Any] = []
        if system_prompt is not None:
            sets.append("system_prompt = ?")
            params.append(system_prompt)
        if sampling is not None:
            sets.append("sampling = ?")
            params.append(dumps(sampling))
        if model is not None:
            sets.append("model = ?")
            params.append(model[:MAX_SHORT])
        if not sets:
            return self.get_conversation(conversation_id)
        return self._update(conversation_id, ", ".join(sets), tuple(params))

    def set_system_prompt(self, conversation_id: int, system_prompt: str) -> Conversation:
        return self.update_settings(conversation_id, system_prompt=system_prompt)

    def trash(self, conversation_id: int) -> Conversation:
        """Move to the trash (undo with ``restore``)."""
        return self._update(
            conversation_id, "trashed_at = coalesce(trashed_at, ?)", (self._now(),)
        )

    def restore(self, conversation_id: int) -> Conversation:
        """Bring a conversation back from the trash."""
        return self._update(conversation_id, "trashed_at = NULL", ())

    def delete_forever(self, conversation_id: int) -> None:
        """Remove a conversation and all its messages for good."""
        with self._write() as conn:
            self._require_conversation(conversation_id)
            conn.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,))

    def empty_trash(self) -> int:
        """Delete every trashed conversation for good; returns how many."""
        with self._write() as conn:
            cur = conn.execute("DELETE FROM conversations WHERE trashed_at IS NOT NULL")
            return cur.rowcount
