"""Engine URLs, privacy of hosts, the engines file, keys only in the keyring, and engine: references."""

from __future__ import annotations

from pathlib import Path, PureWindowsPath
from typing import Any

import keyring
import pytest
from keyring.backends import fail

from app.engine.remote import registry
from app.engine.remote.address import normalize_url, privacy_warning
from app.engine.remote.errors import EngineNotFoundError, RemoteEngineError
from app.engine.remote.registry import EngineRef, parse_ref
from app.netaddr import is_private_host


@pytest.mark.parametrize(("given", "expected"), [
    ("http://127.0.0.1:8080/", "http://127.0.0.1:8080"),
    ("localhost:1234/v1", "http://localhost:1234"),
    ("192.168.1.20:11434", "http://192.168.1.20:11434"),
    ("api.example.com/openai/v1/", "https://api.example.com/openai"),
    ("HTTPS://[::1]:8443/v1", "https://[::1]:8443"),
])
def test_normalize_url(given: str, expected: str) -> None:
    assert normalize_url(given) == expected


@pytest.mark.parametrize("bad", ["", "ftp://x", "http://", "http://user:pw@host:1", "http://h:99999"])
def test_bad_urls_are_refused(bad: str) -> None:
    with pytest.raises(RemoteEngineError):
        normalize_url(bad)


@pytest.mark.parametrize(("host", "private"), [
    ("127.0.0.1", True), ("localhost", True), ("::1", True), ("10.1.2.3", True),
    ("172.16.0.9", True), ("192.168.0.1", True), ("169.254.1.1", True), ("fd00::1", True),
    ("100.101.102.103", True), ("8.8.8.8", False), ("2001:4860::8888", False),
])
def test_private_hosts(host: str, private: bool) -> None:
    assert is_private_host(host, resolve=False) is private


def test_privacy_warning() -> None:
    assert privacy_warning("http://192.168.1.5:8080") is None
    http = privacy_warning("http://8.8.8.8:80")
    assert http and "unencrypted" in http and "leaves this machine" in http
    https = privacy_warning("https://8.8.8.8")
    assert https and "leaves this machine" in https and "unencrypted" not in https


def test_engines_file_and_keys(memory_keyring: Any) -> None:
    registry.add_engine("a", "http://127.0.0.1:1", key="k-123456789")
    registry.add_engine("b", "https://8.8.8.8", kind="openai")
    assert [(e.name, e.kind, e.has_key) for e in registry.list_engines()] == [
        ("a", "auto", True), ("b", "openai", False)]
    assert registry.get_engine("a").key() == "k-123456789"
    assert "k-123456789" not in registry.engines_path().read_text()
    assert registry.engines_path().stat().st_mode & 0o077 == 0
    registry.add_engine("a", "http://127.0.0.1:2")  # replaced without a key: the old key goes
    assert memory_keyring.store == {}
    registry.remove_engine("b")
    assert [e.name for e in registry.list_engines()] == ["a"]
    with pytest.raises(EngineNotFoundError, match="configured: a"):
        registry.get_engine("zzz")
    with pytest.raises(RemoteEngineError, match="not allowed"):
        registry.add_engine("bad/name", "http://127.0.0.1:1")


def test_no_keyring_refuses_to_keep_a_key() -> None:
    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    try:
        with pytest.raises(RemoteEngineError, match="never writes API keys to files"):
            registry.add_engine("a", "http://127.0.0.1:1", key="k-123456789")
        assert registry.list_engines() == []
    finally:
        keyring.set_keyring(previous)


def test_a_damaged_engines_file_reads_as_none(memory_keyring: Any) -> None:
    registry.add_engine("a", "http://127.0.0.1:1")
    registry.engines_path().write_text("{not json")
    assert registry.list_engines() == []


@pytest.mark.parametrize("ref", [
    EngineRef("office", "llama-2-7b-chat.Q4_K_M.gguf"),
    EngineRef("office", "meta-llama/Llama-2-7b-chat-hf"),
    EngineRef("office"),
    EngineRef("http://127.0.0.1:8080", "m 1%"),
    EngineRef("https://api.example.com/openai", "gpt-x"),
])
def test_references_survive_paths(ref: EngineRef) -> None:
    assert parse_ref(str(ref)) == ref
    assert parse_ref(str(Path(str(ref)))) == ref
    assert parse_ref(str(PureWindowsPath(str(ref)))) == ref
    assert "//" not in str(ref)


def test_reference_labels() -> None:
    assert EngineRef("office", "m").label == "m @ office"
    assert EngineRef("http://127.0.0.1:8080", "/models/x.gguf").label == "x.gguf @ 127.0.0.1:8080"
    with pytest.raises(RemoteEngineError):
        parse_ref("engine:")
