"""The engine's Tokenizer protocol over a server's /tokenize and /detokenize (llama-server, vLLM), cached."""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Any

from app.engine.remote.errors import EngineProtocolError
from app.engine.remote.http import Connection

log = logging.getLogger(__name__)
CACHE_SIZE = 4096


class CachedTokenizer:
    """Tokenizes through the server, so the ids are the served model's own; every answer is
    cached (a conversation re-tokenizes only its new turns). Subclasses say how the server is
    asked (``_body``, ``_detokenize_body``, ``DETOKENIZED``) and learn BOS/EOS."""

    bos_id = eos_id = -1
    bos_text = eos_text = ""
    add_bos = False
    SERVER = "a server"  # how an error names it
    DETOKENIZED = "content"  # the key of /detokenize's text

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._cache: OrderedDict[tuple[str, bool, bool], list[int]] = OrderedDict()

    def _body(self, text: str, add_special: bool, special: bool) -> dict[str, Any]:
        raise NotImplementedError

    def _detokenize_body(self, tokens: list[int]) -> dict[str, Any]:
        return {"tokens": tokens}

    def _tokenize(self, text: str, add_special: bool, special: bool) -> list[int]:
        key = (text, add_special, special)
        found = self._cache.get(key)
        if found is not None:
            self._cache.move_to_end(key)
            return list(found)
        answer: Any = self._conn.call("POST", "/tokenize", self._body(text, add_special, special))
        tokens = answer.get("tokens") if isinstance(answer, dict) else None
        if not isinstance(tokens, list) or not all(isinstance(t, int) for t in tokens):
            raise EngineProtocolError(f"Engine {self._conn.name} gave no token ids for /tokenize; "
                                      f"is it {self.SERVER}?")
        self._cache[key] = list(tokens)
        if len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        return list(tokens)

    def encode(self, text: str, *, special: bool) -> list[int]:
        """Tokens of ``text`` without BOS/EOS; ``special`` parses special-token text."""
        return self._tokenize(text, False, special)

    def detokenize(self, tokens: list[int]) -> str:
        answer: Any = self._conn.call("POST", "/detokenize", self._detokenize_body(tokens))
        return str(answer.get(self.DETOKENIZED, "")) if isinstance(answer, dict) else ""


class ServerTokenizer(CachedTokenizer):
    """llama-server's tokenizer.

    ``encode(text, special=False)`` asks for ``parse_special: false``: text that looks like a
    special token (``<s>``, ``[INST]``) stays plain text, exactly as llama.cpp does locally. BOS and
    EOS are the model's special ids, learnt once at load.
    """

    SERVER = "a llama.cpp llama-server"

    def __init__(self, conn: Connection, bos_text: str, eos_text: str) -> None:
        super().__init__(conn)
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

    def _body(self, text: str, add_special: bool, special: bool) -> dict[str, Any]:
        return {"content": text, "add_special": add_special, "parse_special": special}

    def _single(self, text: str, what: str) -> int:
        ids = self._tokenize(text, False, True)
        if len(ids) != 1:
            raise EngineProtocolError(f"Engine {self._conn.name} does not know its {what} token "
                                      f"({text!r} gives {len(ids)} tokens).")
        return ids[0]


class NotLlamaVocabError(EngineProtocolError):
    """The served model's vocabulary is not Llama's (so its prompt format is not known here)."""


class VLLMTokenizer(CachedTokenizer):
    """vLLM's tokenizer (``/tokenize`` with ``add_special_tokens: false`` per text piece).

    vLLM has no ``parse_special`` switch: its Hugging Face tokenizer reads text that spells a
    special token (a literal ``<s>`` in a message) as that token unless the server runs with
    ``split_special_tokens``; ``reads_special`` says which, and such a text is logged. BOS is the
    id vLLM adds in front with ``add_special_tokens``; EOS is ``</s>``'s id. Only a Llama-style
    vocabulary (``<s>``/``</s>``) is accepted: vLLM does not tell its chat template, so the
    prompt format is the Llama-2 one (or ``--format``), and another model raises
    ``NotLlamaVocabError``.
    """

    SERVER = "a vLLM server"
    DETOKENIZED = "prompt"
    reads_special = False

    def __init__(self, conn: Connection, model: str) -> None:
        super().__init__(conn)
        self.model = model
        plain, added = self._tokenize("a", False, False), self._tokenize("a", True, False)
        self.add_bos = len(added) == len(plain) + 1 and added[1:] == plain
        bos = added[0] if self.add_bos else -1
        if bos < 0 or self.detokenize([bos]).strip() != "<s>":
            raise NotLlamaVocabError(
                f"Engine {conn.name}'s model {model} does not have Llama's vocabulary (no <s> "
                "added in front), and vLLM does not say its chat template: add the engine "
                "with --kind openai (the server then formats the prompt).")
        reads_special = self._tokenize("<s>", False, False) == [bos]
        eos = self._tokenize("</s>", False, False)
        if len(eos) != 1 or eos[0] == bos:  # split_special_tokens: Llama's EOS follows BOS
            eos = [bos + 1] if self.detokenize([bos + 1]).strip() == "</s>" else []
        if not eos:
            raise NotLlamaVocabError(f"Engine {conn.name}'s model {model} has no </s> token; "
                                     "add the engine with --kind openai.")
        # Set last: the probes above spell special tokens on purpose (no warning for them).
        self.bos_id, self.bos_text, self.eos_id, self.eos_text = bos, "<s>", eos[0], "</s>"
        self.reads_special = reads_special

    def _body(self, text: str, add_special: bool, special: bool) -> dict[str, Any]:
        if self.bos_id >= 0 and self.reads_special and not special and (
                self.bos_text in text or self.eos_text in text):
            log.warning("engine %s: vLLM reads the special-token text in a message as the token",
                        self._conn.name)
        return {"model": self.model, "prompt": text, "add_special_tokens": add_special}

    def _detokenize_body(self, tokens: list[int]) -> dict[str, Any]:
        return {"model": self.model, "tokens": tokens}
