"""Full-text search over every message (SQLite FTS5), ranked, with highlighted snippets."""

from __future__ import annotations

import re

from app.store.base import StoreBase
from app.store.models import SearchHit

# Ranking every match of a word found in most messages would take seconds on a large history;
# such queries are ranked among the RANK_WINDOW most recent matching messages.
RANK_WINDOW = 10_000

_PHRASE_OR_WORD = re.compile(r'"([^"]*)"?|(\S+)')
_WORD = re.compile(r"\w+")


def fts_query(text: str, prefix_last: bool = False) -> str | None:
    """A safe FTS5 MATCH expression for what the user typed, or None when it has no words.

    Every word is quoted, so FTS5 syntax in user input (``AND``, ``"``, ``*``, ``NEAR``,
    ``col:``) is searched as plain text. ``"two words"`` in double quotes is a phrase; all terms
    must match. With ``prefix_last`` the last bare word also matches longer words (search as you
    type).
    """
    terms: list[str] = []
    last_bare = False
    for match in _PHRASE_OR_WORD.finditer(text):
        phrase, bare = match.group(1), match.group(2)
        words = _WORD.findall(phrase if phrase is not None else bare)
        if words:
            terms.append('"' + " ".join(words) + '"')
            last_bare = bare is not None and len(words) == 1
    if not terms:
        return None
    if prefix_last and last_bare:
        terms[-1] += "*"
    return " ".join(terms)


class SearchMixin(StoreBase):
    """Search operations of the Store."""

    def search(
        self,
        query: str,
        limit: int = 50,
        *,
        conversation_id: int | None = None,
        include_trashed: bool = False,
        prefix: bool = False,
        marks: tuple[str, str] = ("[", "]"),
        snippet_tokens: int = 12,
    ) -> list[SearchHit]:
        """Best matches first (bm25). Snippets wrap matched words in ``marks``.

        With ``prefix`` the last word also matches longer words (search as you type; slower
        for short, common beginnings). A query matching more than RANK_WINDOW messages is
        ranked among the most recent RANK_WINDOW of them, which keeps every query fast.
        """
        expression = fts_query(query, prefix_last=prefix)
        if expression is None or limit <= 0:
            return []
        where = ["messages_fts MATCH ?"]
        params: list[object] = [marks[0], marks[1], max(1, min(64, snippet_tokens)), expression]
        if not include_trashed:
            where.append("c.trashed_at IS NULL")
        if conversation_id is not None:
            where.append("m.conversation_id = ?")
            params.append(conversation_id)
            low, high = self._conn.execute(
                "SELECT min(id), max(id) FROM messages WHERE conversation_id = ?",
                (conversation_id,),
            ).fetchone()
            if low is None:
                return []
            where.append("messages_fts.rowid BETWEEN ? AND ?")
            params += [low, high]
        else:
            cutoff = self._conn.execute(
                "SELECT rowid FROM messages_fts WHERE messages_fts MATCH ?"
                " ORDER BY rowid DESC LIMIT 1 OFFSET ?",
                (expression, RANK_WINDOW - 1),
            ).fetchone()
            if cutoff is not None:
                where.append("messages_fts.rowid >= ?")
                params.append(cutoff[0])
        params.append(limit)
        rows = self._conn.execute(
            "SELECT m.conversation_id, c.title, m.id, m.role,"
            " snippet(messages_fts, 0, ?, ?, '…', ?), messages_fts.rank, m.created_at"
            " FROM messages_fts"
            " JOIN messages m ON m.id = messages_fts.rowid"
            " JOIN conversations c ON c.id = m.conversation_id"
            f" WHERE {' AND '.join(where)} ORDER BY messages_fts.rank LIMIT ?",
            params,
        ).fetchall()
        return [
            SearchHit(
                conversation_id=row[0], conversation_title=row[1], message_id=row[2],
                role=row[3], snippet=row[4], rank=row[5], created_at=row[6],
            )
            for row in rows
        ]
