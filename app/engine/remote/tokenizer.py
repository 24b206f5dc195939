"""The engine's Tokenizer protocol over llama-server's /tokenize and /detokenize, cached."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from app.engine.remote.errors import EngineProtocolError
from app.engine.remote.http import Connection

CACHE_SIZE = 4096


class ServerTokenizer:
    """Tokenizes through the server, so the ids are the served model's own.

    ``encode(text, special=False)`` asks for ``parse_special: false``: text that looks like a
    special token (``<s>``, ``[INST]``) stays plain text, exactly as llama.cpp does locally. BOS and
    EOS are the model's special ids, learnt once at load. Every answer is cached (a conversation
    re-tokenizes only its new turns).
    """

    def __init__(self, conn: Connection, bos_text: str, eos_text: str) -> None:
        self._conn = conn
        self._cache: OrderedDict[tuple[str, bool, bool], list[int]] = OrderedDict()
        self.bos_id = self._single(bos_text, "BOS") if bos_text else -1
        self.eos_id = self._single(eos_text, "EOS") if eos_text else -1
        self.bos_text = bos_text or self.detokenize([self.bos_id])
        self.eos_text = eos_text or self.detokenize([self.eos_id])
        plain, added = self._tokenize("a", False, False), self._tokenize("a", True, False)
        self.add_bos = len(added) == len(plain) + 1 and added[0] == self.bos_id
        if bos_text and self._tokenize(bos_text, False, False) == [self.bos_id]:
            raise EngineProtocolError(
                f"Engine {conn.name}'s llama-server reads special tokens inside message text "
                "(it predates parse_special), so prompts would not match the model's reference "
                "format: update llama.cpp on the server, or add the engine with --kind openai.")

    def _single(self, text: str, what: str) -> int:
        ids = self._tokenize(text, False, True)
        if len(ids) != 1:
            raise EngineProtocolError(f"Engine {self._conn.name} does not know its {what} token "
                                      f"({text!r} gives {len(ids)} tokens).")
        return ids[0]

    def _tokenize(self, text: str, add_special: bool, special: bool) -> list[int]:
        key = (text, add_special, special)
        found = self._cache.get(key)
        if found is not None:
            self._cache.move_to_end(key)
            return list(found)
        answer: Any = self._conn.call("POST", "/tokenize", {
            "content": text, "add_special": add_special, "parse_special": special})
        tokens = answer.get("tokens") if isinstance(answer, dict) else None
        if not isinstance(tokens, list) or not all(isinstance(t, int) for t in tokens):
            raise EngineProtocolError(f"Engine {self._conn.name} gave no token ids for /tokenize; "
                                      "is it a llama.cpp llama-server?")
        self._cache[key] = list(tokens)
        if len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        return list(tokens)

    def encode(self, text: str, *, special: bool) -> list[int]:
        """Tokens of ``text`` without BOS/EOS; ``special`` parses special-token text."""
        return self._tokenize(text, False, special)

    def detokenize(self, tokens: list[int]) -> str:
        answer: Any = self._conn.call("POST", "/detokenize", {"tokens": tokens})
        return str(answer.get("content", "")) if isinstance(answer, dict) else ""
