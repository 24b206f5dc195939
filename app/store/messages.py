"""Message-tree operations: add, branch, regenerate, switch alternates, stream and finish replies."""

from __future__ import annotations

import os
from typing import Any

from app.store.base import StoreBase
from app.store.models import (
    AUTO,
    MESSAGE_COLUMNS,
    StoredMessage,
    StoreError,
    derive_title,
    dumps,
    message_from_row,
)
from app.store.recovery import process_started
from app.store.validate import MAX_SHORT, MAX_TEXT
from app.store.writer import ReplyEnding, ReplyWriter

ROLES = ("system", "user", "assistant")

# sibling position and count among messages that share the parent (alternates)
_SIBLINGS = (
    "(SELECT count(*) FROM messages s WHERE s.conversation_id = m.conversation_id"
    " AND s.parent_id IS m.parent_id AND s.id < m.id),"
    " (SELECT count(*) FROM messages s WHERE s.conversation_id = m.conversation_id"
    " AND s.parent_id IS m.parent_id)"
)


# The newest message without children in conversation c (by time, then id).
NEWEST_LEAF = (
    "SELECT l.id FROM messages l WHERE l.conversation_id = c.id AND NOT EXISTS"
    " (SELECT 1 FROM messages k WHERE k.parent_id = l.id) ORDER BY l.created_at DESC, l.id DESC"
    " LIMIT 1"
)


class MessagesMixin(StoreBase):
    """Message-level operations of the Store."""

    def get_message(self, message_id: int) -> StoredMessage:
        row = self._conn.execute(
            f"SELECT {MESSAGE_COLUMNS}, {_SIBLINGS} FROM messages m WHERE m.id = ?", (message_id,)
        ).fetchone()
        if row is None:
            raise StoreError(f"No message with id {message_id}.")
        return message_from_row(row, row[12], row[13])

    def messages(self, conversation_id: int) -> list[StoredMessage]:
        """Every message of a conversation (all branches), oldest first."""
        rows = self._conn.execute(
            f"SELECT {MESSAGE_COLUMNS}, {_SIBLINGS} FROM messages m"
            " WHERE m.conversation_id = ? ORDER BY m.id",
            (conversation_id,),
        ).fetchall()
        return [message_from_row(row, row[12], row[13]) for row in rows]

    def _leaf(self, conversation_id: int) -> int | None:
        """The remembered leaf; without one (an old import, a repair), the newest leaf."""
        row = self._conn.execute(
            f"SELECT coalesce((SELECT m.id FROM messages m WHERE m.id = c.current_leaf_id"
            f" AND m.conversation_id = c.id), ({NEWEST_LEAF})) FROM conversations c WHERE c.id = ?",
            (conversation_id,),
        ).fetchone()
        return None if row is None else row[0]

    def current_branch(self, conversation_id: int) -> list[StoredMessage]:
        """The messages shown: root to leaf along the conversation's remembered branch (or, when
        none is remembered or it is gone, the branch to the newest leaf)."""
        with self._read() as conn:
            self._require_conversation(conversation_id)
            return self._path(conn, self._leaf(conversation_id))

    def path_to(self, message_id: int) -> list[StoredMessage]:
        """The messages from the root down to ``message_id`` (included): what it answers."""
        with self._read() as conn:
            found = self._path(conn, message_id)
        if not found:
            raise StoreError(f"No message with id {message_id}.")
        return found

    def branch_tail(self, leaf_id: int, limit: int) -> tuple[list[StoredMessage], bool]:
        """The last ``limit`` messages of the path from the root to ``leaf_id`` (oldest first),
        and whether older ones exist: reads only those rows, however long the branch."""
        with self._read() as conn:
            rows = conn.execute(
                f"""WITH RECURSIVE branch(id, depth) AS (
                    SELECT ?, 0
                    UNION ALL
                    SELECT m.parent_id, b.depth + 1 FROM messages m JOIN branch b ON m.id = b.id
                    WHERE m.parent_id IS NOT NULL LIMIT ?
                )
                SELECT {MESSAGE_COLUMNS}, {_SIBLINGS}
                FROM branch b JOIN messages m ON m.id = b.id ORDER BY b.depth DESC""",
                (leaf_id, max(1, limit) + 1),
            ).fetchall()
        if not rows:
            raise StoreError(f"No message with id {leaf_id}.")
        more = len(rows) > limit
        rows = rows[1:] if more else rows
        return [message_from_row(row, row[12], row[13]) for row in rows], more

    def branch_length(self, leaf_id: int) -> int:
        """How many messages the path from the root to ``leaf_id`` holds (ids only: fast)."""
        with self._read() as conn:
            row = conn.execute(
                """WITH RECURSIVE branch(id) AS (
                    SELECT ?
                    UNION ALL
                    SELECT m.parent_id FROM messages m JOIN branch b ON m.id = b.id
                    WHERE m.parent_id IS NOT NULL
                )
                SELECT count(*) FROM branch b JOIN messages m ON m.id = b.id""",
                (leaf_id,),
            ).fetchone()
        return int(row[0])

    @staticmethod
    def _path(conn: Any, leaf_id: int | None) -> list[StoredMessage]:
        rows = conn.execute(
            f"""WITH RECURSIVE branch(id, depth) AS (
                SELECT ?, 0
                UNION ALL
                SELECT m.parent_id, b.depth + 1 FROM messages m JOIN branch b ON m.id = b.id
                WHERE m.parent_id IS NOT NULL
            )
            SELECT {MESSAGE_COLUMNS}, {_SIBLINGS}
            FROM branch b JOIN messages m ON m.id = b.id ORDER BY b.depth DESC""",
            (leaf_id,),
        ).fetchall()
        return [message_from_row(row, row[12], row[13]) for row in rows]

    def siblings(self, message_id: int) -> list[StoredMessage]:
        """The alternates of a message (itself included), oldest first."""
        msg = self.get_message(message_id)
        rows = self._conn.execute(
            f"SELECT {MESSAGE_COLUMNS}, {_SIBLINGS} FROM messages m"
            " WHERE m.conversation_id = ? AND m.parent_id IS ? ORDER BY m.id",
            (msg.conversation_id, msg.parent_id),
        ).fetchall()
        return [message_from_row(row, row[12], row[13]) for row in rows]

    def _resolve_parent(self, conversation_id: int, parent_id: int | str | None) -> int | None:
        if parent_id == AUTO:
            return self._leaf(conversation_id)
        if parent_id is None:
            return None
        if not isinstance(parent_id, int):
            raise StoreError(f"Invalid parent message id {parent_id!r}.")
        row = self._conn.execute(
            "SELECT conversation_id FROM messages WHERE id = ?", (parent_id,)
        ).fetchone()
        if row is None or row[0] != conversation_id:
            raise StoreError(
                f"Message {parent_id} is not part of conversation {conversation_id}."
            )
        return parent_id

    def add_message(
        self,
        conversation_id: int,
        role: str,
        content: str,
        parent_id: int | str | None = AUTO,
        *,
        state: str = "complete",
        model_name: str | None = None,
        model_file: str | None = None,
        stats: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> StoredMessage:
        """Append a message under ``parent_id`` (AUTO: the current leaf; None: a new root).

        The new message becomes the current leaf. Committed before returning. AUTO suits one
        writer; a face that continues a conversation passes the id of the last message it
        showed, so that two processes continuing the same conversation end on two branches
        instead of interleaving into one (the parent is checked inside the write lock).
        Content over ``MAX_TEXT`` characters is refused; long error and model names are cut.
        """
        if role not in ROLES:
            raise StoreError(f"Unknown message role {role!r}; use one of {', '.join(ROLES)}.")
        if len(content) > MAX_TEXT:
            raise StoreError(f"The message is {len(content):,} characters long; the limit is "
                             f"{MAX_TEXT:,}.")
        error, model_name, model_file = (None if v is None else v[:MAX_SHORT]
                                         for v in (error, model_name, model_file))
        now = self._now()
        live = state == "partial"
        with self._write() as conn:
            self._require_conversation(conversation_id, active=True)
            parent = self._resolve_parent(conversation_id, parent_id)
            cur = conn.execute(
                "INSERT INTO messages(conversation_id, parent_id, role, content, created_at,"
                " updated_at, state, error, model_name, model_file, stats, writer_pid,"
                " writer_started) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    conversation_id, parent, role, content, now, now, state, error,
                    model_name, model_file, dumps(stats or {}),
                    os.getpid() if live else None, process_started() if live else None,
                ),
            )
            message_id = int(cur.lastrowid or 0)
            conn.execute(
                "UPDATE conversations SET current_leaf_id = ?, updated_at = ? WHERE id = ?",
                (message_id, now, conversation_id),
            )
            if role == "assistant" and (model_file or model_name):
                conn.execute(
                    "UPDATE conversations SET model = ? WHERE id = ?",
                    (model_file or model_name, conversation_id),
                )
            if role == "user":
                conn.execute(
                    "UPDATE conversations SET title = ? WHERE id = ? AND title = ''",
                    (derive_title(content), conversation_id),
                )
        if live:
            self._live.add(message_id)
        return self.get_message(message_id)

    def add_user_message(
        self, conversation_id: int, content: str, parent_id: int | str | None = AUTO
    ) -> StoredMessage:
        """Commit the user's message (before generation starts). Names an untitled conversation.

        To edit a user message, add the new text with the edited message's ``parent_id``:
        that starts a new branch and keeps the old one as an alternate.
        """
        return self.add_message(conversation_id, "user", content, parent_id)

    def start_assistant(
        self,
        conversation_id: int,
        parent_id: int | str | None = AUTO,
        model_name: str | None = None,
        model_file: str | None = None,
    ) -> StoredMessage:
        """An empty assistant message in state ``partial``, committed at once.

        Regenerate: pass the parent of an existing answer; the old answer stays as an alternate.
        """
        return self.add_message(
            conversation_id, "assistant", "", parent_id,
            state="partial", model_name=model_name, model_file=model_file,
        )

    def reply_writer(self, message_id: int, flush_interval: float = 0.5) -> ReplyWriter:
        """A writer that streams text into a partial assistant message and finishes it."""
        msg = self.get_message(message_id)
        if msg.state != "partial":
            raise StoreError(f"Message {message_id} is not being written (state {msg.state}).")
        self._live.add(message_id)
        return ReplyWriter(self, msg, flush_interval=flush_interval)

    def save_partial_text(self, message_id: int, text: str) -> None:
        """Replace the text of a message that is still partial (ReplySink; committed)."""
        with self._write() as conn:
            conn.execute(
                "UPDATE messages SET content = ?, updated_at = ? WHERE id = ? AND state = 'partial'",
                (text[:MAX_TEXT], self._now(), message_id),
            )

    def finish_reply(self, message_id: int, ending: ReplyEnding) -> StoredMessage:
        """Write a reply's final text, state and stats (ReplySink; committed)."""
        now = self._now()
        stats = None if ending.stats is None else dumps(ending.stats)
        with self._write() as conn:
            conn.execute(
                "UPDATE messages SET content = ?, state = ?, error = ?, updated_at = ?,"
                " stats = coalesce(?, stats), model_name = coalesce(?, model_name),"
                " model_file = coalesce(?, model_file), writer_pid = NULL, writer_started = NULL"
                " WHERE id = ?",
                (
                    ending.text[:MAX_TEXT], ending.state,
                    None if ending.error is None else ending.error[:MAX_SHORT], now, stats,
                    (ending.model_name or None) and ending.model_name[:MAX_SHORT],
                    (ending.model_file or None) and ending.model_file[:MAX_SHORT], message_id,
                ),
            )
            conn.execute(
                "UPDATE conversations SET updated_at = ? WHERE id ="
                " (SELECT conversation_id FROM messages WHERE id = ?)",
                (now, message_id),
            )
        self._live.discard(message_id)
        return self.get_message(message_id)

    def select_alternate(self, message_id: int) -> list[StoredMessage]:
        """Show the branch through ``message_id`` (following the newest replies below it)."""
        msg = self.get_message(message_id)
        with self._write() as conn:
            leaf = msg.id
            while True:
                row = conn.execute(
                    "SELECT max(id) FROM messages WHERE parent_id = ?", (leaf,)
                ).fetchone()
                if row[0] is None:
                    break
                leaf = row[0]
            conn.execute(
                "UPDATE conversations SET current_leaf_id = ? WHERE id = ?",
                (leaf, msg.conversation_id),
            )
        return self.current_branch(msg.conversation_id)

    def switch_alternate(self, message_id: int, step: int) -> list[StoredMessage]:
        """Move to the previous (-1) or next (+1) alternate of a message; returns the branch."""
        siblings = self.siblings(message_id)
        index = next(i for i, s in enumerate(siblings) if s.id == message_id)
        target = siblings[max(0, min(len(siblings) - 1, index + step))]
        return self.select_alternate(target.id)

    def edit_user_message(self, message_id: int, content: str) -> StoredMessage:
        """A new branch: ``content`` as an alternate of user message ``message_id``."""
        msg = self.get_message(message_id)
        if msg.role != "user":
            raise StoreError(f"Message {message_id} is not a user message.")
        return self.add_user_message(msg.conversation_id, content, msg.parent_id)
