"""Session-wide tiny checkpoints (both layouts) and their F16 conversions, made once per run."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.convert import checkpoints as ck


@pytest.fixture(scope="session")
def ckpt_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("checkpoints")


@pytest.fixture(scope="session")
def tokenizer_model(ckpt_root: Path) -> Path:
    return ck.train_tokenizer(ckpt_root / "trained-tokenizer.model")


@pytest.fixture(scope="session")
def sp(tokenizer_model: Path) -> Any:
    import sentencepiece

    return sentencepiece.SentencePieceProcessor(model_file=str(tokenizer_model))


@pytest.fixture(scope="session")
def tiny_model(sp: Any) -> ck.TinyLlama:
    return ck.random_llama(sp.vocab_size())


@pytest.fixture(scope="session")
def meta_folder(ckpt_root: Path, tiny_model: ck.TinyLlama, tokenizer_model: Path) -> Path:
    """Meta's download.sh tree; the model folder (tokenizer.model is one level up)."""
    return ck.write_meta(ckpt_root / "meta", tiny_model, tokenizer_model)


@pytest.fixture(scope="session")
def hf_folder(ckpt_root: Path, tiny_model: ck.TinyLlama, tokenizer_model: Path) -> Path:
    return ck.write_hf(ckpt_root / "Llama-2-tiny-chat-hf", tiny_model, tokenizer_model)


@pytest.fixture(scope="session")
def converted(ckpt_root: Path, meta_folder: Path, hf_folder: Path) -> Callable[..., Path]:
    """converted(layout, quant="F16", unpermute=True): the GGUF, converted once per session."""
    from app.convert.layout import find_checkpoint
    from app.convert.pipeline import convert
    from app.convert.progress import Reporter

    cache: dict[tuple[str, str, bool], Path] = {}
    out_dir = ckpt_root / "gguf"
    out_dir.mkdir()

    def get(layout: str, quant: str = "F16", unpermute: bool = True) -> Path:
        key = (layout, quant, unpermute)
        if key not in cache:
            folder = meta_folder if layout == "meta" else hf_folder
            out = out_dir / f"{layout}-{quant}-{'ok' if unpermute else 'nopermute'}.gguf"
            convert(find_checkpoint(folder), out, quant, name=f"Tiny {layout}", reporter=Reporter(),
                    unpermute=unpermute)
            cache[key] = out
        return cache[key]

    return get
