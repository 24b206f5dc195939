"""Export to JSON and Markdown, and validated, all-or-nothing import of JSON exports."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from app import __version__, fileio
from app.store.conversations import ConversationsMixin
from app.store.markdown import render_conversation
from app.store.messages import MessagesMixin
from app.store.models import (
    CONVERSATION_COLUMNS,
    MESSAGE_COLUMNS,
    StoreError,
    conversation_from_row,
    dumps,
    message_from_row,
)
from app.store.validate import FORMAT, VERSION, check_document

MAX_FILE_BYTES = 1 << 30


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a valid number")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"the key {key[:80]!r} appears twice in one object")
        out[key] = value
    return out


def parse_json(text: str | bytes) -> Any:
    """Parse an export; malformed JSON becomes a StoreError (NaN/Infinity and an object with the
    same key twice are refused: which of the two values was meant cannot be known)."""
    try:
        return json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_no_duplicates)
    except RecursionError as err:
        raise StoreError("Cannot import: the JSON is nested too deeply; nothing was imported.") \
            from err
    except (ValueError, UnicodeDecodeError) as err:
        raise StoreError(f"Cannot import: the file is not valid JSON ({err}); "
                         "nothing was imported.") from err


def load_json_file(path: Path) -> Any:
    """Read and parse an export file with a size limit.

    The bytes are counted while reading (a device such as /dev/zero or a pipe has no honest
    size), so nothing beyond the limit is ever held in memory.
    """
    too_big = StoreError(f"Cannot import {path}: it is larger than the limit of 1 GiB; "
                         "nothing was imported.")
    try:
        if path.is_dir():
            raise StoreError(f"Cannot import {path}: it is a folder, not an export file.")
        if path.stat().st_size > MAX_FILE_BYTES:
            raise too_big
        chunks: list[bytes] = []
        total = 0
        with path.open("rb") as fh:
            while chunk := fh.read(1 << 20):
                total += len(chunk)
                if total > MAX_FILE_BYTES:
                    raise too_big
                if not chunks:
                    start = chunk.lstrip(b" \t\r\n").removeprefix(b"\xef\xbb\xbf")
                    if not start:
                        continue  # leading blank lines
                    if not start.startswith(b"{"):  # /dev/zero, a binary file: stop at once
                        raise StoreError(f"Cannot import {path}: it is not a JSON export (it "
                                         "does not start with '{'); nothing was imported.")
                chunks.append(chunk)
    except OSError as err:
        raise StoreError(f"Cannot read {path}: {fileio.reason(err)}.") from err
    return parse_json(b"".join(chunks))


def write_text_file(path: Path, text: str) -> None:
    """Write an export by ``app.fileio``'s policy: atomic and private (0600) for a new or regular
    file, through a symbolic link to its target, in place into a FIFO or a character device;
    a failure is one line naming the path and the cause."""
    fileio.write_text(path, text)


class ExchangeMixin(ConversationsMixin, MessagesMixin):
    """Export and import operations of the Store."""

    def _export_ids(self, conversation_ids: Iterable[int] | None, include_trashed: bool) -> list[int]:
        if conversation_ids is None:
            where = "" if include_trashed else " WHERE trashed_at IS NULL"
            rows = self._conn.execute(
                f"SELECT id FROM conversations{where} ORDER BY pinned DESC, updated_at DESC, id DESC"
            )
            return [row[0] for row in rows]
        ids = list(conversation_ids)
        for conversation_id in ids:
            self._require_conversation(conversation_id)
        return ids

    def export_json(
        self, conversation_ids: Iterable[int] | None = None, include_trashed: bool = False
    ) -> dict[str, Any]:
        """A versioned export document (every branch kept); None exports all conversations."""
        out: list[dict[str, Any]] = []
        with self._read() as conn:
            for conversation_id in self._export_ids(conversation_ids, include_trashed):
                row = conn.execute(
                    f"SELECT {CONVERSATION_COLUMNS} FROM conversations c WHERE c.id = ?",
                    (conversation_id,),
                ).fetchone()
                conv = conversation_from_row(row)
                rows = conn.execute(
                    f"SELECT {MESSAGE_COLUMNS} FROM messages m WHERE m.conversation_id = ?"
                    " ORDER BY m.id",
                    (conversation_id,),
                ).fetchall()
                messages = [message_from_row(r) for r in rows]
                out.append({
                    "id": conv.id,
                    "title": conv.title,
                    "created_at": conv.created_at,
                    "updated_at": conv.updated_at,
                    "system_prompt": conv.system_prompt,
                    "sampling": conv.sampling,
                    "model": conv.model,
                    "pinned": conv.pinned,
                    "trashed_at": conv.trashed_at,
                    "current_leaf": conv.current_leaf_id,
                    "messages": [
                        {
                            "id": m.id,
                            "parent": m.parent_id,
                            "role": m.role,
                            "content": m.content,
                            "created_at": m.created_at,
                            "updated_at": m.updated_at,
                            "state": m.state,
                            "error": m.error,
                            "model_name": m.model_name,
                            "model_file": m.model_file,
                            "stats": m.stats,
                        }
                        for m in messages
                    ],
                })
        return {
            "format": FORMAT,
            "version": VERSION,
            "app_version": __version__,
            "exported_at": time.time(),
            "conversations": out,
        }

    def export_json_text(
        self, conversation_ids: Iterable[int] | None = None, include_trashed: bool = False
    ) -> str:
        document = self.export_json(conversation_ids, include_trashed)
        return json.dumps(document, ensure_ascii=False, indent=1) + "\n"

    def import_json(self, data: Any) -> list[int]:
        """Import an export document (parsed JSON, or its text) as new conversations.

        Everything is validated first and inserted in one transaction: bad input raises
        StoreError and imports nothing. Returns the new conversation ids, in file order.
        """
        if isinstance(data, str | bytes):
            data = parse_json(data)
        conversations = check_document(data)
        new_ids: list[int] = []
        with self._write() as conn:
            for conv in conversations:
                cur = conn.execute(
                    "INSERT INTO conversations(title, created_at, updated_at, system_prompt,"
                    " sampling, model, pinned, trashed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        conv["title"], conv["created_at"], conv["updated_at"],
                        conv["system_prompt"], dumps(conv["sampling"]), conv["model"],
                        int(conv["pinned"]), conv["trashed_at"],
                    ),
                )
                conversation_id = int(cur.lastrowid or 0)
                mapping: dict[int, int] = {}
                for msg in conv["messages"]:
                    parent = None if msg["parent"] is None else mapping[msg["parent"]]
                    cur = conn.execute(
                        "INSERT INTO messages(conversation_id, parent_id, role, content,"
                        " created_at, updated_at, state, error, model_name, model_file, stats)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            conversation_id, parent, msg["role"], msg["content"],
                            msg["created_at"], msg["updated_at"], msg["state"], msg["error"],
                            msg["model_name"], msg["model_file"], dumps(msg["stats"]),
                        ),
                    )
                    mapping[msg["id"]] = int(cur.lastrowid or 0)
                leaf = conv["current_leaf"]
                conn.execute(
                    "UPDATE conversations SET current_leaf_id = ? WHERE id = ?",
                    (None if leaf is None else mapping[leaf], conversation_id),
                )
                new_ids.append(conversation_id)
        return new_ids

    def export_markdown(
        self, conversation_ids: Iterable[int] | None = None, include_trashed: bool = False
    ) -> str:
        """Readable Markdown of each conversation's current branch, with roles, models, times."""
        parts: list[str] = []
        with self._read():
            for conversation_id in self._export_ids(conversation_ids, include_trashed):
                conv = self.get_conversation(conversation_id)
                parts.append(render_conversation(conv, self.current_branch(conversation_id)))
        return "\n\n---\n\n".join(parts) + ("\n" if parts else "")
