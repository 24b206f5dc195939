"""Which model a face loads: explicit > conversation's > last used > newest installed > starter."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.chat.models import choose_model, display_name
from app.errors import UserError
from app.hub import installed


def _install(tmp_path: Path, tiny: Path, name: str) -> Path:
    path = tmp_path / f"{name}.gguf"
    path.write_bytes(tiny.read_bytes())
    installed.import_model(path, name)
    return path


def test_the_rule(tmp_path: Path, starter_model: Path, tiny_llama2: Path) -> None:
    assert choose_model().path == str(starter_model)  # nothing else installed
    older = _install(tmp_path, tiny_llama2, "older")
    newer = _install(tmp_path, tiny_llama2, "newer")
    assert choose_model() == choose_model(last_used=str(tmp_path / "gone.gguf"))
    assert choose_model().path == str(newer)  # the newest installed
    assert choose_model(last_used=str(older)).name == "older"
    assert choose_model(conversation=str(starter_model), last_used=str(older)).path == str(starter_model)
    assert choose_model("older", conversation=str(newer)).path == str(older)


def test_names_are_the_same_everywhere(tmp_path: Path, tiny_llama2: Path) -> None:
    path = _install(tmp_path, tiny_llama2, "My Llama")
    assert choose_model(str(path)).name == display_name(path) == "My Llama"
    loose = tmp_path / "loose.tiny.gguf"
    loose.write_bytes(tiny_llama2.read_bytes())
    assert choose_model(str(loose)).name == display_name(loose) == "loose.tiny.gguf"


def test_an_explicit_choice_must_resolve(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="No installed model called 'llama-9000'"):
        choose_model("llama-9000")
    missing = str(tmp_path / "missing.gguf")
    assert choose_model(missing).path == missing  # the engine then names what is wrong


def test_remote_engine_references(starter_model: Path) -> None:
    import keyring

    from app.chat.models import remote_choice
    from app.engine.remote import registry
    from app.engine.remote.errors import EngineNotFoundError
    from tests.hub.memory_keyring import MemoryKeyring

    previous = keyring.get_keyring()
    keyring.set_keyring(MemoryKeyring())
    try:
        registry.add_engine("office", "http://192.168.1.9:8080")
        choice = choose_model("engine:office/llama-2-7b")
        assert (choice.path, choice.name) == ("engine:office/llama-2-7b", "llama-2-7b @ office")
        assert remote_choice("office", "m").path == "engine:office/m"
        assert remote_choice("http://127.0.0.1:8080").path == "engine:http%3A%2F%2F127.0.0.1%3A8080"
        # A conversation's engine is used again while configured...
        assert choose_model(conversation="engine:office/m").path == "engine:office/m"
        with pytest.raises(EngineNotFoundError):
            choose_model("engine:nowhere/m")
        # ...and once it is removed, the usual model is used, saying why.
        registry.remove_engine("office")
        fallback = choose_model(conversation="engine:office/m")
        assert fallback.path == str(starter_model) or Path(fallback.path).exists()
        assert "engine:office/m was not used" in fallback.note and "instead" in fallback.note
    finally:
        keyring.set_keyring(previous)
