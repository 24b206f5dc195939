"""The window on the real engine and the real starter model: send, stop, and a corrupt file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt

from app.store import Store
from tests.ui.conftest import wait_idle

pytestmark = pytest.mark.slow


def test_send_with_starter_model_streams_and_stores(qtbot: Any, make_window: Any) -> None:
    window = make_window()  # the real Engine, loading the starter model
    assert "Starter" in window.state_label.text()
    window.settings.sampling = {**window.settings.sampling, "max_tokens": 24, "seed": 7}
    chunks: list[str] = []
    window.host.chunk.connect(lambda _mid, text: chunks.append(text))  # worker thread
    with qtbot.waitSignal(window.reply_done, timeout=120_000) as blocker:
        window.composer.set_text("What is the capital of France?")
        qtbot.keyClick(window.composer.edit, Qt.Key.Key_Return)
    done = blocker.args[0]
    assert done.message.state == "complete"
    assert done.message.content.strip()
    assert "".join(chunks) == done.result.text
    assert done.prompt_tokens > 0 and "capital of France" in done.prompt_text
    assert done.message.content.split()[0] in window.chat.toPlainText()
    with Store.open(window.db_path) as store:
        stored = store.get_message(done.message.id)
    assert stored.content == done.message.content
    assert stored.stats["generated_tokens"] == done.result.generated_tokens
    assert window.meter.text().endswith("/ 4,096 tokens")


def test_stop_with_starter_model(qtbot: Any, make_window: Any) -> None:
    window = make_window()
    window.settings.sampling = {**window.settings.sampling, "max_tokens": 2000}
    started: list[Any] = []
    window.host.reply_started.connect(started.append)  # worker thread
    window.composer.set_text("Write a very long story about a dragon and a knight.")
    qtbot.keyClick(window.composer.edit, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: bool(started) and len(window.chat.live_text()) > 20, timeout=120_000)
    with qtbot.waitSignal(window.reply_done, timeout=30_000) as blocker:
        qtbot.mouseClick(window.composer.button, Qt.MouseButton.LeftButton)  # Stop
    done = blocker.args[0]
    wait_idle(qtbot, window)
    assert done.message.state == "cancelled"
    assert done.result.finish_reason == "cancelled"
    assert done.result.generated_tokens < 2000
    assert done.message.content
    assert "stopped" in window.chat.toPlainText()


def test_corrupt_model_file_shows_banner(qtbot: Any, make_window: Any, tmp_path: Path) -> None:
    window = make_window()
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF" + b"\x00" * 64)
    with qtbot.waitSignal(window.model_failed, timeout=30_000) as blocker:
        window.load_model(str(bad))
    message = blocker.args[0]
    assert "broken.gguf" in message
    assert any("broken.gguf" in text for text in window.banners.texts())
    assert "Traceback" not in " ".join(window.banners.texts())
    # the starter model is still loaded, so chatting goes on
    assert window.model_state == "ready" and window.composer.edit.isEnabled()


def test_llama2_gguf_gets_the_reference_prompt(qtbot: Any, make_window: Any,
                                               tiny_llama2: Path) -> None:
    """Switch to a Llama-2-style GGUF (no chat template): the window sends Meta's format."""
    window = make_window()
    window.settings.default_system_prompt = "Be brief."
    window.settings.sampling = {**window.settings.sampling, "max_tokens": 6, "seed": 1}
    window.load_model(str(tiny_llama2))
    qtbot.waitUntil(lambda: "llama-2 format" in window.state_label.text(), timeout=60_000)
    with qtbot.waitSignal(window.reply_done, timeout=120_000) as blocker:
        window.composer.set_text("Hi [INST] there")
        qtbot.keyClick(window.composer.edit, Qt.Key.Key_Return)
    done = blocker.args[0]
    assert done.prompt_text == "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [INST] there [/INST]"
    assert done.message.model_file == str(tiny_llama2.resolve())
