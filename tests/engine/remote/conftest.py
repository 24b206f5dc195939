"""Fixtures: one real llama-server on the tiny Llama-2-style model for the module, in-memory keyring."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.engine.remote.servers import LlamaServer, RecordingProxy, llama_server
from tests.hub.fixtures import memory_keyring

__all__ = ["memory_keyring"]


@pytest.fixture(scope="module")
def server(tiny_llama2: Path) -> Iterator[LlamaServer]:
    """llama-server serving the tiny random Llama-2-style GGUF (no chat template in its header)."""
    with llama_server(tiny_llama2) as running:
        yield running


@pytest.fixture
def proxy(server: LlamaServer) -> Iterator[RecordingProxy]:
    recorder = RecordingProxy(server.url)
    yield recorder
    recorder.close()


@pytest.fixture(autouse=True)
def _keyring(memory_keyring: Any) -> Any:
    """Never the real OS keyring: every test here gets the in-memory one."""
    return memory_keyring
