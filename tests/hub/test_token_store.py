"""The token store: keyring service "llama-desk", session fallback, never echoed."""

from __future__ import annotations

import keyring
import pytest
from keyring.backends import chainer, fail, null

from app.hub import token_store
from app.hub.errors import TokenRejectedError
from tests.hub.fixtures import TOKEN
from tests.hub.hub_server import FakeHub
from tests.hub.memory_keyring import MemoryKeyring


def test_set_checks_with_whoami_and_stores_in_keyring(fake_hub: FakeHub,
                                                      memory_keyring: MemoryKeyring) -> None:
    fake_hub.users[TOKEN] = "alice"
    saved = token_store.set_token(TOKEN)
    assert saved.persisted and saved.account == "alice" and TOKEN not in saved.message
    assert memory_keyring.store[("llama-desk", "huggingface-token")] == TOKEN
    assert token_store.get_token() == TOKEN and token_store.account_name() == "alice"
    whoami = [r for r in fake_hub.requests if r.path == "/api/whoami-v2"]
    assert whoami[0].headers["Authorization"] == f"Bearer {TOKEN}"
    assert token_store.clear_token() is True
    assert token_store.get_token() is None and token_store.clear_token() is False


def test_malformed_tokens_are_refused_without_echo(memory_keyring: MemoryKeyring) -> None:
    for bad in ("", "   ", "hf abc def", "short"):
        with pytest.raises(TokenRejectedError) as info:
            token_store.set_token(bad, check=False)
        assert bad.strip() == "" or bad not in str(info.value)
    assert memory_keyring.store == {}


def test_no_backend_detection() -> None:
    keyring.set_keyring(fail.Keyring())
    assert not token_store.keyring_available()

    class EmptyChainer(chainer.ChainerBackend):
        backends = ()

    keyring.set_keyring(EmptyChainer())
    assert not token_store.keyring_available()
    keyring.set_keyring(null.Keyring())
    assert not token_store.keyring_available()
    saved = token_store.set_token(TOKEN, check=False)
    assert not saved.persisted and "this session only" in saved.message
    assert token_store.get_token() == TOKEN
