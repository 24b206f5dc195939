"""The SentencePiece vocabulary as GGUF wants it: pieces, scores, token types, special ids."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.convert.errors import ConvertError

log = logging.getLogger(__name__)

# GGUF token types (llama.cpp's llama_token_type / gguf.TokenType).
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6


@dataclass(frozen=True)
class Vocab:
    """Everything the GGUF tokenizer keys hold."""

    tokens: list[bytes]
    scores: list[float]
    types: list[int]
    bos_id: int
    eos_id: int
    unk_id: int
    pad_id: int | None
    add_bos: bool
    add_eos: bool
    chat_template: str | None

    def __len__(self) -> int:
        return len(self.tokens)


def read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text("utf-8"))
    except OSError as err:
        raise ConvertError(f"Cannot read {path}: {err.strerror or err}") from err
    except ValueError as err:
        raise ConvertError(f"{path} is not valid JSON ({err}); it should be the {what}.") from None
    if not isinstance(data, dict):
        raise ConvertError(f"{path} is not a JSON object; it should be the {what}.")
    return data


def _processor(path: Path) -> Any:
    import sentencepiece

    sp = sentencepiece.SentencePieceProcessor()
    try:
        sp.LoadFromSerializedProto(path.read_bytes())
    except OSError as err:
        raise ConvertError(f"Cannot read {path}: {err.strerror or err}") from err
    except Exception:
        raise ConvertError(f"{path} is not a SentencePiece tokenizer.model; download it again.") from None
    return sp


def _template(config: dict[str, Any]) -> str | None:
    template = config.get("chat_template")
    if isinstance(template, list):  # [{"name": "default", "template": ...}, ...]
        named = {t.get("name"): t.get("template") for t in template if isinstance(t, dict)}
        template = named.get("default")
    return template if isinstance(template, str) and template.strip() else None


def load_vocab(tokenizer_model: Path, tokenizer_config: Path | None, n_vocab: int) -> Vocab:
    """Read ``tokenizer.model`` for a model whose embedding has ``n_vocab`` rows.

    Rows past the tokenizer's pieces (a padded embedding) become unused ``[PADn]`` tokens; a
    tokenizer with more pieces than rows does not belong to these weights and is refused.
    """
    sp = _processor(tokenizer_model)
    n_pieces = int(sp.vocab_size())
    if n_pieces > n_vocab:
        raise ConvertError(
            f"{tokenizer_model} has {n_pieces:,} pieces but the weights' embedding has only "
            f"{n_vocab:,} rows: the tokenizer belongs to another model."
        )
    tokens = [f"[PAD{i}]".encode() for i in range(n_vocab)]
    scores = [-10000.0] * n_vocab
    types = [UNUSED] * n_vocab
    for i in range(n_pieces):
        tokens[i] = sp.IdToPiece(i).encode("utf-8")
        scores[i] = float(sp.GetScore(i))
        if sp.IsUnknown(i):
            types[i] = UNKNOWN
        elif sp.IsControl(i):
            types[i] = CONTROL
        elif sp.IsUnused(i):
            types[i] = UNUSED
        elif sp.IsByte(i):
            types[i] = BYTE
        else:
            types[i] = NORMAL
    config = read_json(tokenizer_config, "tokenizer configuration") if tokenizer_config else {}
    bos, eos, unk, pad = (int(sp.bos_id()), int(sp.eos_id()), int(sp.unk_id()), int(sp.pad_id()))
    if min(bos, eos, unk) < 0:
        raise ConvertError(f"{tokenizer_model} defines no BOS, EOS or unknown token; it is not "
                           "a Llama tokenizer.")
    return Vocab(
        tokens, scores, types, bos, eos, unk, pad if pad >= 0 else None,
        add_bos=bool(config.get("add_bos_token", True)),
        add_eos=bool(config.get("add_eos_token", False)),
        chat_template=_template(config),
    )
