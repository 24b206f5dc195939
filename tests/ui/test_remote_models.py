"""The model picker lists each configured engine's models (a real llama-server) beside the local ones."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.engine.remote import registry
from app.ui.model_picker import GET_MODELS, ModelPicker
from tests.engine.remote.servers import LlamaServer, llama_server
from tests.hub.fixtures import memory_keyring
from tests.workers import free_port

__all__ = ["memory_keyring"]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tiny_llama2: Path) -> Iterator[LlamaServer]:
    with llama_server(tiny_llama2, "--alias", "llama-2-tiny") as running:
        yield running


def test_picker_lists_remote_models(qtbot: Any, server: LlamaServer, memory_keyring: Any,
                                    starter_model: Path) -> None:
    registry.add_engine("box", server.url)
    registry.add_engine("gone", f"http://127.0.0.1:{free_port()}")
    picker = ModelPicker()
    qtbot.add_widget(picker)
    picker.refresh()
    qtbot.waitUntil(lambda: picker.findData("engine:box/llama-2-tiny") >= 0, timeout=15_000)
    index = picker.findData("engine:box/llama-2-tiny")
    assert picker.itemText(index) == "llama-2-tiny @ box — remote"
    gone = picker.findText("gone — not available")
    assert gone > index and picker.model().item(gone).isEnabled() is False  # type: ignore[attr-defined]
    assert "Cannot reach" in picker.itemData(gone, 3)  # Qt.ToolTipRole
    assert picker.findData(GET_MODELS) > gone  # local models first, "Get models…" last
    assert picker.findData(str(starter_model)) < index
    assert picker.name_for("engine:box/llama-2-tiny") == "llama-2-tiny @ box"
    with qtbot.wait_signal(picker.model_chosen, timeout=2000) as chosen:
        picker.activated.emit(index)
    assert chosen.args == ["engine:box/llama-2-tiny"]


def test_no_engines_no_requests(qtbot: Any, memory_keyring: Any) -> None:
    picker = ModelPicker()
    qtbot.add_widget(picker)
    picker.refresh()
    assert picker.remote == []
