"""The SentencePiece vocabulary in the GGUF: types, special ids, and llama.cpp tokenizing alike."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from app.convert import vocab as vocab_mod
from app.convert.errors import ConvertError
from app.convert.vocab import load_vocab

TEXTS = [
    "Hello world",
    "The quick brown fox jumps over the lazy dog.",
    "café naïve résumé über straße",
    "日本語のテキストと中文",  # not in the training corpus: byte fallback
    "emoji 🦙🔥 and ✓ marks",
    "digits 1234567890 and 3.14159, -42",
    "   leading spaces",
    "trailing spaces   ",
    "runs    of     spaces\tand\ttabs\n\nnew\nlines",
    "\n\nstarts with newlines",
    "MiXeD CaSe WoRdS llama LLAMA Llama",
    "punctuation!!! ??? ... (brackets) [square] {curly}",
    "<s> and </s> typed as text",
    "a",
    " ",
]


@pytest.fixture(scope="module")
def vocab_only(converted: Callable[..., Path]) -> Any:
    import llama_cpp

    llm = llama_cpp.Llama(model_path=str(converted("meta")), vocab_only=True, verbose=False)
    yield llm
    llm.close()


def test_token_types_and_special_ids_come_from_sentencepiece(sp: Any, tokenizer_model: Path) -> None:
    v = load_vocab(tokenizer_model, None, sp.vocab_size())
    assert (v.unk_id, v.bos_id, v.eos_id, v.pad_id) == (0, 1, 2, None)
    assert v.types[0] == vocab_mod.UNKNOWN
    assert v.types[1] == v.types[2] == vocab_mod.CONTROL
    byte_ids = [i for i in range(sp.vocab_size()) if sp.IsByte(i)]
    assert len(byte_ids) == 256 and all(v.types[i] == vocab_mod.BYTE for i in byte_ids)
    assert v.tokens[byte_ids[0]] == b"<0x00>"
    normal = [i for i, t in enumerate(v.types) if t == vocab_mod.NORMAL]
    assert len(normal) == sp.vocab_size() - 3 - 256
    assert all(v.scores[i] == pytest.approx(sp.GetScore(i)) for i in range(sp.vocab_size()))
    assert v.add_bos and not v.add_eos and v.chat_template is None


def test_padded_embedding_gets_unused_pad_tokens_and_a_bigger_tokenizer_is_refused(
        sp: Any, tokenizer_model: Path) -> None:
    n = sp.vocab_size()
    v = load_vocab(tokenizer_model, None, n + 3)
    assert v.tokens[n:] == [f"[PAD{i}]".encode() for i in range(n, n + 3)]
    assert v.types[n:] == [vocab_mod.UNUSED] * 3
    with pytest.raises(ConvertError, match="belongs to another model"):
        load_vocab(tokenizer_model, None, n - 1)


def test_tokenizer_config_sets_add_bos_and_the_chat_template(sp: Any, tokenizer_model: Path,
                                                             tmp_path: Path) -> None:
    config = tmp_path / "tokenizer_config.json"
    config.write_text(json.dumps({"add_bos_token": False, "add_eos_token": True,
                                  "chat_template": "{{ messages }}"}))
    v = load_vocab(tokenizer_model, config, sp.vocab_size())
    assert (v.add_bos, v.add_eos, v.chat_template) == (False, True, "{{ messages }}")


def test_not_a_sentencepiece_model_is_one_clear_line(tmp_path: Path) -> None:
    bad = tmp_path / "tokenizer.model"
    bad.write_text("this is tiktoken, not sentencepiece")
    with pytest.raises(ConvertError, match=r"not a SentencePiece tokenizer\.model") as err:
        load_vocab(bad, None, 100)
    assert "\n" not in str(err.value)


def test_gguf_carries_the_llama_tokenizer_keys(converted: Callable[..., Path]) -> None:
    from gguf import GGUFReader

    fields = GGUFReader(converted("hf")).fields
    assert fields["tokenizer.ggml.model"].contents() == "llama"
    assert fields["tokenizer.ggml.add_bos_token"].contents() is True
    assert "[INST]" in fields["tokenizer.chat_template"].contents()
    assert fields["llama.context_length"].contents() == 4096
    assert fields["llama.attention.head_count_kv"].contents() == 2


@pytest.mark.parametrize("text", TEXTS)
def test_llama_cpp_tokenizes_like_sentencepiece(text: str, sp: Any, vocab_only: Any) -> None:
    ours = vocab_only.tokenize(text.encode("utf-8"), add_bos=False, special=False)
    assert ours == sp.encode(text), [sp.IdToPiece(i) for i in sp.encode(text)]
    with_bos = vocab_only.tokenize(text.encode("utf-8"), add_bos=True, special=False)
    assert with_bos == [sp.bos_id(), *sp.encode(text)]


def test_byte_fallback_is_exercised(sp: Any) -> None:
    """The unicode texts really go through byte pieces (the test above would be weaker if not)."""
    ids = sp.encode("日本語のテキストと中文 🦙")
    assert any(sp.IsByte(i) for i in ids)
