"""Tiny checkpoints in both layouts and their conversions, made once per session (import by name)."""

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


def serve_checkpoint(hub: Any, repo: str, folder: Path, *, gated: bool = True) -> None:
    """Put every file of ``folder`` (and a download.sh tokenizer one level up) into ``repo``."""
    files = {p.name: p for p in folder.iterdir() if p.is_file()}
    for extra in ("tokenizer.model", "tokenizer_checklist.chk"):
        if extra not in files and (folder.parent / extra).is_file():
            files[extra] = folder.parent / extra
    files["README.md"] = files.get("README.md") or _readme(folder)
    for name, path in sorted(files.items()):
        hub.add_path(repo, name, path)
    if gated:
        hub.gated.add(repo)


def _readme(folder: Path) -> Path:
    path = folder.parent / f"{folder.name}-README.md"
    path.write_text("# a model card the converter must not download\n")
    return path
