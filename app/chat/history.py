"""Bounded prompt preparation: read a branch back from its newest message only as far as the context needs."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from app.engine.types import Message, PreparedPrompt, Sampling

if TYPE_CHECKING:
    from app.engine.protocol import Engine
    from app.store import Store, StoredMessage

FIRST_TAIL = 64  # messages read at first; the tail grows 4× while all of it fits


@dataclass
class Turn:
    """What one turn sends: the engine's messages (system, the kept tail, any new message), the
    prompt they render to, and the last history message (the new user message's parent).

    ``prompt.dropped_messages`` counts stored messages of the whole branch left out before the
    first kept one (the window marks the cut there), not only those that were read.
    """

    messages: list[Message]
    prompt: PreparedPrompt
    parent: StoredMessage | None
    read: int  # stored messages read from the store for this turn
    restore_s: float = 0.0  # time spent restoring a kept state before the prompt was read
    kept: int = 0  # stored messages the prompt kept (the next turn reads about twice as many)


def engine_messages(system_prompt: str, history: Sequence[StoredMessage]) -> list[Message]:
    """What the engine is sent for ``history``: the system prompt, then the user/assistant turns."""
    return _engine_messages(system_prompt, history)[0]


def _engine_messages(system_prompt: str, history: Sequence[StoredMessage]
                     ) -> tuple[list[Message], list[int]]:
    """The messages, and for each one after the system prompt its index in ``history``."""
    out = [Message("system", system_prompt)] if system_prompt.strip() else []
    where: list[int] = []
    for index, m in enumerate(history):
        if m.role in ("user", "assistant") and (m.content or m.role == "user"):
            out.append(Message(m.role, m.content))  # type: ignore[arg-type]
            where.append(index)
    return out, where


def settled(branch: list[StoredMessage]) -> list[StoredMessage]:
    """``branch`` without a turn still being written at its end (its reply is ``partial``)."""
    if len(branch) >= 2 and branch[-1].role == "assistant" and branch[-1].state == "partial":
        return branch[:-2]
    return branch


def branch_cut(branch: Sequence[StoredMessage]) -> tuple[int, int]:
    """Where the prompt of the branch's latest reply began, from the cut stored with it:
    (index in ``branch`` of its first message sent, messages left out); (0, 0) for none.

    A stored reply's ``dropped_messages`` counts the stored messages of its branch before the
    first one its prompt kept (see ``prepare_turn``), so it is that index too.
    """
    for index in range(len(branch) - 1, -1, -1):
        msg = branch[index]
        if msg.role == "assistant" and "dropped_messages" in (msg.stats or {}):
            dropped = int(msg.stats["dropped_messages"] or 0)
            return (min(dropped, index), dropped) if dropped > 0 else (0, 0)
    return 0, 0


def prepare_turn(store: Store, engine: Engine, *, system_prompt: str, leaf_id: int | None,
                 extra: Sequence[Message], sampling: Sampling, settle: bool = False,
                 first_tail: int = FIRST_TAIL, length: Callable[[int], int] | None = None
                 ) -> Turn:
    """Prepare a turn on the branch that ends at ``leaf_id`` (None: a new conversation) with
    ``extra`` messages after it.

    Reads the branch backwards, ``first_tail`` messages first and 4× more while the engine keeps
    all of them, so a turn in a 20,000-message conversation reads and tokenizes about what a
    short one does. Keeping whole exchanges from the newest back gives the same cut as
    preparing the whole branch: messages before the cut never change what is kept after it.
    ``settle`` leaves out a turn another process is still writing at the end (see
    ``settled``). ``length(leaf_id)`` gives the branch's length when a cut must be reported
    (``store.branch_length`` by default; the service caches it).
    """
    limit = max(4, first_tail)
    while True:
        tail: list[StoredMessage] = []
        more = False
        if leaf_id is not None:
            tail, more = store.branch_tail(leaf_id, limit)
        read = len(tail)
        if settle:
            tail = settled(tail)
        parent = tail[-1] if tail else None
        skipped = 0
        if more:  # start at a user message: a reply without its question cannot be sent
            while skipped < len(tail) and tail[skipped].role != "user":
                skipped += 1
            tail = tail[skipped:]
        messages, where = _engine_messages(system_prompt, tail)
        messages += list(extra)
        prompt = engine.prepare(messages, sampling)
        if prompt.dropped_messages or not more:
            break
        limit *= 4
    dropped = prompt.dropped_messages
    kept = len(tail)
    if dropped or more:
        first_kept = where[dropped] if dropped < len(where) else len(tail)
        before = 0
        if more:
            assert leaf_id is not None
            total = (length or store.branch_length)(leaf_id)
            before = total - read + skipped
        prompt = dataclasses.replace(prompt, dropped_messages=before + first_kept)
        kept = len(tail) - first_kept
    return Turn(messages, prompt, parent, read, kept=kept)
