"""Engine fixtures: the Llama SPM vocabulary as a tokenizer, a tiny Llama-2 model, the starter."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.engine.engine import Engine, LoadOptions, _Vocab
from tests.engine.tiny_llama import write_tiny_llama


@pytest.fixture(scope="session")
def spm_llama(llama_vocab: Path) -> Any:
    """``llama_cpp.Llama`` over the real Llama SPM vocabulary (vocab_only: no weights)."""
    import llama_cpp

    llm = llama_cpp.Llama(model_path=str(llama_vocab), vocab_only=True, verbose=False)
    yield llm
    llm.close()


@pytest.fixture(scope="session")
def spm_vocab(spm_llama: Any) -> _Vocab:
    """The engine's tokenizer adapter over the Llama SPM vocabulary."""
    return _Vocab(spm_llama)


@pytest.fixture(scope="session")
def tiny_llama2(llama_vocab: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-weight Llama GGUF whose header looks like a 2023 Llama-2-chat GGUF."""
    return write_tiny_llama(llama_vocab, tmp_path_factory.mktemp("tiny") / "llama-2-tiny.gguf")


@pytest.fixture(scope="module")
def starter_engine(starter_model: Path) -> Iterator[Engine]:
    """The real starter model loaded once per module (CPU, 4,096-token context)."""
    engine = Engine()
    engine.load(starter_model, LoadOptions(n_ctx=4096, n_gpu_layers=0))
    yield engine
    engine.close()
