"""Per-conversation KV states around one engine: restore before a turn, keep after each reply."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from app.chat.kvcache import StateCache

if TYPE_CHECKING:
    from app.engine.protocol import Engine
    from app.engine.types import GenerationResult

log = logging.getLogger(__name__)

MIN_GAIN = 32  # restore only when a state saves reading at least this many more tokens


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """How many leading token ids ``a`` and ``b`` share."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


class ConversationStates:
    """Which conversation the engine's context holds, and the kept states of the others.

    After each reply of a stored conversation its state is saved (``StateCache``: RAM, then a
    file). Before a turn of conversation C whose context is not the live one, C's state is
    restored when it is for the loaded model and options and matches the turn's prompt for at
    least MIN_GAIN tokens more than the live context does; the engine then reads only the rest.
    A state is only ever used as far as it matches the prompt token for token, so a stale,
    foreign or edited-away state can cost time but never change a reply.
    """

    def __init__(self, engine: Engine, cache: StateCache | None, namespace: str) -> None:
        self.engine = engine
        self.cache = cache
        self._namespace = namespace
        self.live: int | None = None  # the conversation whose newest state is in the context
        self.live_tokens: list[int] = []  # what the context covers, as far as we know

    @staticmethod
    def namespace_for(db_path: Path | None) -> str:
        """A short name for the conversations database (file names must not collide)."""
        from app import paths

        path = (db_path or paths.database_path()).expanduser().resolve()
        return hashlib.sha256(str(path).encode()).hexdigest()[:12]

    def name(self, conversation_id: int) -> str:
        return f"{self._namespace}-c{conversation_id}"

    def reset(self) -> None:
        """The context was emptied (another model was loaded)."""
        self.live, self.live_tokens = None, []

    def before_turn(self, conversation_id: int | None, tokens: list[int]) -> int:
        """Restore the conversation's kept state when it helps; returns the tokens restored."""
        if conversation_id is None or conversation_id == self.live or self.cache is None:
            return 0
        info = self.engine.info
        if info is None or not info.state_key:
            return 0
        live_common = common_prefix(self.live_tokens, tokens)

        def wanted(kept: list[int]) -> bool:
            return common_prefix(kept, tokens) >= live_common + MIN_GAIN

        found = self.cache.get(self.name(conversation_id), info.state_key, wanted)
        if found is None:
            return 0
        state, usable = found
        restored = self.engine.restore_state(state, upto=usable)
        self.live, self.live_tokens = None, list(state.tokens[:restored])
        log.info("conversation %s: restored a kept state of %d tokens", conversation_id, restored)
        return restored

    def after_turn(self, conversation_id: int | None, result: GenerationResult) -> None:
        """Keep the context's state as the conversation's (a reply of no stored conversation,
        or one that failed, leaves the context unknown)."""
        if conversation_id is None or result.finish_reason == "error" or self.cache is None:
            self.reset()
            return
        try:
            state = self.engine.save_state()
        except (RuntimeError, MemoryError) as err:
            log.warning("could not save the KV state: %s", err)
            state = None
        if state is None:
            self.reset()
            return
        self.cache.put(self.name(conversation_id), state)
        self.live, self.live_tokens = conversation_id, list(state.tokens)

    def forget(self, conversation_id: int) -> None:
        if self.cache is not None:
            self.cache.forget(self.name(conversation_id))
        if self.live == conversation_id:
            self.live = None

    def close(self) -> None:
        if self.cache is not None:
            self.cache.close()
