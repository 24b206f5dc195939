"""Where the keyboard goes after an action whose button disappears or keeps the focus (a model
picked, a welcome example, ‹ › alternates, Regenerate): typing must never be lost."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt

from tests.ui.conftest import wait_idle
from tests.ui.fakes import FakeEngine
from tests.ui.test_window import send


def test_typing_after_picking_a_model_goes_to_the_composer(qtbot: Any, make_window: Any,
                                                           tmp_path: Path) -> None:
    from app.hub import installed
    from tests.hub.fixtures import tiny_gguf

    window = make_window(FakeEngine())
    path = tmp_path / "other-model.gguf"
    tiny_gguf(path, payload_mib=0.2)
    installed.import_model(path)
    picker = window.picker
    qtbot.waitUntil(lambda: picker.findData(str(path.resolve())) >= 0, timeout=5000)
    picker.setFocus()
    index = picker.findData(str(path.resolve()))
    picker.setCurrentIndex(index)
    with qtbot.waitSignal(window.model_ready, timeout=10_000):
        picker.activated.emit(index)  # what choosing it in the list does
        assert window.focusWidget() is window.composer.edit
    qtbot.keyClicks(window.focusWidget(), "so what")  # a letter on the picker would pick "S…"
    assert window.composer.text() == "so what"
    assert picker.current_path() == str(path.resolve())


def test_a_clicked_welcome_example_leaves_the_keyboard_in_the_composer(qtbot: Any,
                                                                       make_window: Any) -> None:
    window = make_window(FakeEngine([f"w{i} " for i in range(50)], delay=0.01))
    card = window.chat.welcome.examples[0]
    card.setFocus()
    with qtbot.waitSignal(window.reply_done, timeout=10_000):
        qtbot.mouseClick(card, Qt.MouseButton.LeftButton)
        assert window.focusWidget() is window.composer.edit  # while the reply is written
        qtbot.keyClicks(window.focusWidget(), "next")
    wait_idle(qtbot, window)
    assert window.composer.text() == "next"


def test_alternates_keep_the_keyboard_on_the_pager_and_the_preview_follows(
        qtbot: Any, make_window: Any) -> None:
    from app.ui.sidebar_items import PREVIEW_ROLE

    engine = FakeEngine(["First answer."])
    window = make_window(engine)
    first = send(qtbot, window, "Question")
    engine.script = ["Second answer."]
    reply = window.chat.widgets[first.message.id]
    reply.buttons["regen"].setFocus()
    with qtbot.waitSignal(window.reply_done, timeout=10_000):
        qtbot.mouseClick(reply.buttons["regen"], Qt.MouseButton.LeftButton)
        assert window.focusWidget() is window.composer.edit  # its button went with the reply
    wait_idle(qtbot, window)
    newest = window.chat.widgets[window.branch[-1].id]
    newest.prev_button.setFocus()
    qtbot.mouseClick(newest.prev_button, Qt.MouseButton.LeftButton)
    shown = window.chat.widgets[window.branch[-1].id]
    assert window.branch[-1].content == "First answer."
    assert window.focusWidget() is shown.next_button  # ‹ is disabled at 1/2: › has it
    assert window.sidebar.conversation_items()[0].data(PREVIEW_ROLE) == "First answer."
    qtbot.keyClick(window.focusWidget(), Qt.Key.Key_Space)  # and the keyboard goes on
    assert window.branch[-1].content == "Second answer."
    assert window.sidebar.conversation_items()[0].data(PREVIEW_ROLE) == "Second answer."
