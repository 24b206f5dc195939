"""The CLI and the window's model thread run the same scripted turns into identical conversations."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from app.chat.service import ChatService
from app.cli import build_parser
from app.commands.chat import run_chat
from app.engine.types import Sampling
from app.settings import AppSettings
from app.store import Store
from tests.ui.fakes import FakeEngine

SCRIPT = ["Sure", ", here", " it is."]
OVERRIDES = {"temperature": 0.2, "max_tokens": 32}


def normalised(db: Path) -> list[dict[str, Any]]:
    """A conversation export without what differs between two runs (ids, times, speeds)."""
    with Store.open(db) as store:
        doc = store.export_json()
    out = []
    for conv in doc["conversations"]:
        ids = {m["id"]: i for i, m in enumerate(conv["messages"])}
        out.append({
            "title": conv["title"], "system": conv["system_prompt"], "sampling": conv["sampling"],
            "model": conv["model"], "leaf": ids[conv["current_leaf"]],
            "messages": [(ids[m["id"]], ids.get(m["parent"]), m["role"], m["content"], m["state"],
                          m["model_name"], m["model_file"], m["stats"].get("generated_tokens"),
                          m["stats"].get("finish_reason")) for m in conv["messages"]],
        })
    return out


def through_cli(engines: list[FakeEngine]) -> None:
    def factory() -> FakeEngine:
        engines.append(FakeEngine(list(SCRIPT)))
        return engines[-1]

    def chat(*argv: str) -> None:
        assert run_chat(build_parser().parse_args(["chat", *argv]), factory) == 0

    chat("--system", "Be kind.", "Hello")
    chat("--continue", "1", "--temperature", "0.2", "--max-tokens", "32", "And more?")
    chat("--continue", "1", "--regenerate")
    with Store.open() as store:
        first_user = store.current_branch(1)[0].id
    chat("--continue", "1", "--edit", str(first_user), "Hello again")
    chat("--continue", "1", "--top-k", "5", "Thanks!")


def through_window_host(qtbot: Any, db: Path, settings: AppSettings,
                        engines: list[FakeEngine]) -> None:
    from app.ui.worker import EngineHost

    def make_service() -> ChatService:
        engines.append(FakeEngine(list(SCRIPT)))
        return ChatService(engines[-1], settings=lambda: settings, db_path=db)

    host = EngineHost(make_service)
    try:
        with qtbot.waitSignal(host.loaded, timeout=10_000):
            host.load(None)

        def turn(start: Callable[[], int]) -> Any:
            with qtbot.waitSignal(host.reply_finished, timeout=10_000) as blocker:
                start()
            return blocker.args[0]

        settings.default_system_prompt = "Be kind."
        first = turn(lambda: host.send(None, "Hello"))
        settings.default_system_prompt = ""
        conv = first.message.conversation_id
        second = turn(lambda: host.send(conv, "And more?", OVERRIDES))
        turn(lambda: host.regenerate(second.message.id))
        with Store.open(db) as store:
            first_user = store.current_branch(conv)[0].id
        turn(lambda: host.edit(first_user, "Hello again"))
        turn(lambda: host.send(conv, "Thanks!", {"top_k": 5}))
    finally:
        assert host.close(10_000)


@pytest.mark.slow
def test_cli_and_window_store_identical_conversations(qtbot: Any, tmp_path: Path,
                                                      llama_desk_home: Path) -> None:
    cli_engines: list[FakeEngine] = []
    through_cli(cli_engines)
    cli_db = llama_desk_home / "data" / "conversations.sqlite3"
    window_engines: list[FakeEngine] = []
    through_window_host(qtbot, tmp_path / "window.sqlite3", AppSettings(), window_engines)
    cli_view, window_view = normalised(cli_db), normalised(tmp_path / "window.sqlite3")
    assert cli_view == window_view
    [conv] = cli_view
    assert conv["system"] == "Be kind." and conv["sampling"] == {}
    assert [m[3] for m in conv["messages"]] == [
        "Hello", "Sure, here it is.", "And more?", "Sure, here it is.", "Sure, here it is.",
        "Hello again", "Sure, here it is.", "Thanks!", "Sure, here it is."]
    cli_sampling = [s for e in cli_engines for s in e.samplings]
    window_sampling = [s for e in window_engines for s in e.samplings]
    assert cli_sampling == window_sampling
    assert cli_sampling[1] == Sampling(**{**Sampling().to_dict(), **OVERRIDES})
    assert cli_sampling[4].top_k == 5 and cli_sampling[4].temperature == Sampling().temperature
