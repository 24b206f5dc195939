"""Fixtures for hub tests: in-memory keyring, the Hub emulator, tiny GGUF files, token scans."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from gguf import GGUFWriter

from app.hub.client import RetryPolicy
from tests.hub.hub_server import FakeHub, serve
from tests.hub.memory_keyring import MemoryKeyring

TOKEN = "hf_TESTtokenSECRETvalue0123456789abcd"
FAST_RETRY = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.02)


@pytest.fixture
def memory_keyring() -> Iterator[MemoryKeyring]:
    """Install an in-memory keyring; the session-only token store starts empty."""
    import keyring

    from app.hub import token_store

    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    token_store._session.clear()
    yield backend
    keyring.set_keyring(previous)
    token_store._session.clear()


@pytest.fixture
def fake_hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHub]:
    """The emulator on loopback ports, with HF_ENDPOINT pointing at it."""
    hub = FakeHub()
    hub_server, cdn_server = serve(hub)
    monkeypatch.setenv("HF_ENDPOINT", hub.hub_url)
    monkeypatch.setenv("LLAMA_DESK_HUB_RETRY_DELAY", "0.01")
    yield hub
    for server in (hub_server, cdn_server):
        server.shutdown()
        server.server_close()


def tiny_gguf(path: Path, *, payload_mib: float = 3.0, seed: int = 0) -> bytes:
    """Write a valid Llama-architecture GGUF of roughly ``payload_mib`` MiB; return its bytes."""
    n_embd = 64
    writer = GGUFWriter(str(path), "llama")
    writer.add_name("Tiny Llama")
    writer.add_context_length(4096)
    writer.add_embedding_length(n_embd)
    writer.add_block_count(2)
    writer.add_head_count(4)
    writer.add_head_count_kv(4)
    writer.add_file_type(15)  # Q4_K_M, as the catalogue's default files say
    writer.add_layer_norm_rms_eps(1e-5)
    rng = np.random.default_rng(seed)
    rows = max(3, int(payload_mib * 1024 * 1024 / (n_embd * 4)))
    # A vocabulary as long as the embedding (the model-file check compares them).
    writer.add_tokenizer_model("llama")
    writer.add_token_list([f"<t{i}>" for i in range(rows)])
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_tensor("token_embd.weight", rng.random((rows, n_embd), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path.read_bytes()


def files_containing(root: Path, secret: str) -> list[Path]:
    """Every file under ``root`` whose bytes contain ``secret`` (plain or UTF-16)."""
    needles = (secret.encode(), secret.encode("utf-16-le"))
    found = []
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            if any(n in data for n in needles):
                found.append(path)
    return found
