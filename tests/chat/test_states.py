"""KV states kept per conversation, on the real starter model: the same reply as a cold read,
never a state for another model, context size, damaged file or edited history."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from app.chat.service import ChatService
from app.engine.engine import LlamaEngine
from app.settings import AppSettings
from app.store import Store
from tests.chat.long_chat import store_long_chat
from tests.commands.test_chat_cli import cli

pytestmark = pytest.mark.slow
SYSTEM = ("You are a careful assistant for a small museum of sailing ships. You answer questions "
          "from visitors about the ships, their crews, the routes they sailed and the cargo they "
          "carried, in plain words, in two or three sentences, and you say so when you do not "
          "know something instead of guessing.")
FIRST = "Tell me about the clipper ships that carried tea from China to London."
GREEDY = ["--temperature", "0", "--seed", "1", "--gpu-layers", "0", "--ctx", "2048"]
LOAD = {"n_ctx": 2048, "n_gpu_layers": 0}
TURN = {"temperature": 0.0, "seed": 1, "max_tokens": 24}


def last_reply(home: Path) -> tuple[str, dict[str, int], int]:
    """(text, stats, parent id) of the newest assistant message in ``home``'s database."""
    with Store.open(home / "data" / "conversations.sqlite3") as store:
        branch = store.current_branch(1)
    reply = branch[-1]
    assert reply.role == "assistant" and reply.parent_id is not None
    return reply.content, reply.stats, reply.parent_id


def service(cache_gb: float = 4.0) -> ChatService:
    settings = AppSettings(state_cache_gb=cache_gb)
    made = ChatService(LlamaEngine(), settings=lambda: settings)
    return made


def cold_regenerate(user_id: int, model: Path) -> str:
    """The answer to ``user_id`` from a fresh engine that keeps no states (reads everything)."""
    fresh = service(cache_gb=0)
    try:
        fresh.load_model(str(model), overrides=LOAD)
        reply = fresh.regenerate(user_id, overrides=TURN)
        text = reply.text()
        assert reply.result.restored_tokens == 0
        return text
    finally:
        fresh.close()


@pytest.fixture
def first_turn(llama_desk_home: Path) -> Path:
    """A stored conversation of about 1,000 tokens, continued by one reply in its own process:
    the conversation and its kept state on disk."""
    with Store.open() as store:
        assert store_long_chat(store, 40, SYSTEM) == 1
    proc = cli(llama_desk_home, "chat", "--continue", "1", "--max-tokens", "32", *GREEDY, FIRST)
    assert proc.returncode == 0, proc.stderr
    assert len(list((llama_desk_home / "cache" / "kv-states").glob("*.kvstate"))) == 1
    return llama_desk_home


def test_a_new_process_continues_from_the_kept_state(first_turn: Path, tmp_path: Path) -> None:
    cold_home = tmp_path / "cold"
    shutil.copytree(first_turn, cold_home)
    shutil.rmtree(cold_home / "cache")  # the same conversation with the cache folder removed
    for home in (first_turn, cold_home):
        proc = cli(home, "chat", "--continue", "1", "--max-tokens", "32", "--stats", *GREEDY,
                   "Which one was the fastest?")
        assert proc.returncode == 0, proc.stderr
    warm, warm_stats, _ = last_reply(first_turn)
    cold, cold_stats, _ = last_reply(cold_home)
    assert warm == cold and warm.strip()
    assert cold_stats["restored_tokens"] == 0 and cold_stats["reused_tokens"] == 0
    assert warm_stats["restored_tokens"] >= 0.9 * warm_stats["prompt_tokens"]
    assert warm_stats["reused_tokens"] == warm_stats["restored_tokens"]


def test_a_state_for_another_context_size_or_model_is_not_used(first_turn: Path,
                                                                tiny_llama2: Path) -> None:
    for flags in (["--ctx", "1024"], ["-m", str(tiny_llama2)]):
        proc = cli(first_turn, "chat", "--continue", "1", "--max-tokens", "4", "--temperature",
                   "0", "--gpu-layers", "0", *flags, "And the slowest?")
        assert proc.returncode == 0, proc.stderr
        _, stats, _ = last_reply(first_turn)
        assert stats["restored_tokens"] == 0 and stats["reused_tokens"] == 0


def test_a_damaged_state_file_is_ignored(first_turn: Path, starter_model: Path) -> None:
    [path] = (first_turn / "cache" / "kv-states").glob("*.kvstate")
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0x55
    path.write_bytes(bytes(raw))
    warm = service()
    try:
        warm.load_model(str(starter_model), overrides=LOAD)
        reply = warm.send(1, "Which one was the fastest?", overrides=TURN)
        text = reply.text()
        assert reply.result.restored_tokens == 0 and reply.result.reused_tokens == 0
        assert warm.states.cache is not None and warm.states.cache.stats.rejected == 1
        assert reply.user_message is not None
    finally:
        warm.close()
    assert text == cold_regenerate(reply.user_message.id, starter_model)


def test_an_edited_history_is_only_used_up_to_the_edit(first_turn: Path,
                                                       starter_model: Path) -> None:
    with Store.open() as store:
        first_user = store.current_branch(1)[0]
    kept = service()
    try:
        kept.load_model(str(starter_model), overrides=LOAD)
        reply = kept.edit(first_user.id, "Tell me about the Viking longships instead.",
                          overrides=TURN)
        text = reply.text()
        result = reply.result
        assert kept.states.cache is not None
        state = kept.states.cache.get(kept.states.name(1), kept.model.state_key,  # type: ignore[union-attr]
                                      lambda tokens: True)
        assert reply.user_message is not None
    finally:
        kept.close()
    # What was restored is the system prompt the edit did not touch, never the old answer.
    assert 0 < result.restored_tokens == result.reused_tokens < result.prompt_tokens - 10
    assert state is not None
    assert text == cold_regenerate(reply.user_message.id, starter_model)


def test_switching_back_restores_from_ram(llama_desk_home: Path, starter_model: Path) -> None:
    with Store.open() as store:
        conv, twin = store_long_chat(store, 40, SYSTEM), store_long_chat(store, 40, SYSTEM)
    warm = service()
    try:
        warm.load_model(str(starter_model), overrides=LOAD)
        warm.send(conv, FIRST, overrides=TURN).text()
        warm.send(None, "Name three famous lighthouses.", overrides=TURN).text()  # takes over
        again = warm.send(conv, "Which one was the fastest?", overrides=TURN)
        text = again.text()
        result = again.result
        assert warm.states.cache is not None and warm.states.cache.stats.ram_hits == 1
    finally:
        warm.close()
    assert result.restored_tokens == result.reused_tokens >= 0.9 * result.prompt_tokens
    # The same as if the conversation had never been switched away from: its twin, continued
    # twice in a row on a fresh engine.
    live = service(cache_gb=0)
    try:
        live.load_model(str(starter_model), overrides=LOAD)
        live.send(twin, FIRST, overrides=TURN).text()
        assert live.send(twin, "Which one was the fastest?", overrides=TURN).text() == text
    finally:
        live.close()
