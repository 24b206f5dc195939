"""The main window on a scripted engine: send, stream, stop, regenerate, edit, delete, search."""

from __future__ import annotations

import threading
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QPushButton

from app.store import Store
from app.ui.sidebar_items import PINNED_ROLE, PREVIEW_ROLE
from app.ui.worker import ReplyDone
from tests.ui.conftest import wait_idle
from tests.ui.fakes import FakeEngine


def send(qtbot: Any, window: Any, text: str) -> ReplyDone:
    with qtbot.waitSignal(window.reply_done, timeout=30_000) as blocker:
        window.composer.set_text(text)
        qtbot.keyClick(window.composer.edit, Qt.Key.Key_Return)
    wait_idle(qtbot, window)
    return blocker.args[0]


def two_chats(qtbot: Any, window: Any, first: str, second: str) -> tuple[int, int]:
    """Send ``first`` in a new chat, then ``second`` in another; their conversation ids."""
    send(qtbot, window, first)
    one = window.conv_id
    window.new_chat()
    send(qtbot, window, second)
    return one, window.conv_id


def load_another_model(qtbot: Any, window: Any, path: Any) -> None:
    """Load a stand-in model file at ``path`` (the fake engine loads anything)."""
    path.write_bytes(b"GGUF")
    with qtbot.waitSignal(window.model_ready, timeout=10_000):
        window.load_model(str(path))


def doc_text(window: Any) -> str:
    return window.chat.toPlainText()


def test_send_streams_reply_and_stores_it(qtbot: Any, make_window: Any) -> None:
    engine = FakeEngine(["Hello", " from", " the", " **fake**", " engine."], delay=0.02)
    window = make_window(engine)
    chunks: list[str] = []
    window.host.chunk.connect(lambda _mid, text: chunks.append(text))  # worker thread
    done = send(qtbot, window, "Hi there")
    assert done.message.state == "complete"
    assert done.message.content == "Hello from the **fake** engine."
    assert "".join(chunks) == done.message.content
    text = doc_text(window)
    assert "Hi there" in text and "Hello from the fake engine." in text  # Markdown rendered
    assert "Starter (SmolLM2 135M)" in text and "5 tokens" in text  # the footer
    assert window.composer.text() == ""
    assert threading.get_ident() not in engine.thread_ids  # the model ran in the worker thread
    with Store.open(window.db_path) as store:
        branch = store.current_branch(window.conv_id)
        assert [m.role for m in branch] == ["user", "assistant"]
        assert branch[1].model_name == "Starter (SmolLM2 135M)"
        assert store.get_conversation(window.conv_id).title == "Hi there"
    assert window.meter.text().endswith("/ 4,096 tokens")
    assert len(window.sidebar.conversation_items()) == 1


def test_stop_keeps_partial_text_and_labels_it(qtbot: Any, make_window: Any) -> None:
    engine = FakeEngine([f"w{i} " for i in range(400)], delay=0.01)
    window = make_window(engine)
    started: list[Any] = []
    window.host.reply_started.connect(started.append)  # runs in the worker thread
    window.composer.set_text("Count")
    qtbot.keyClick(window.composer.edit, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: bool(started) and "w3" in window.chat.live_text(), timeout=10_000)
    assert window.composer.button.text() == "Stop"
    with qtbot.waitSignal(window.reply_done, timeout=10_000) as blocker:
        qtbot.keyClick(window, Qt.Key.Key_Escape)
    done: ReplyDone = blocker.args[0]
    wait_idle(qtbot, window)
    assert done.message.state == "cancelled"
    assert 0 < done.result.generated_tokens < 400
    assert "stopped" in doc_text(window)
    assert window.composer.button.text() == "Send"


def test_regenerate_keeps_alternates(qtbot: Any, make_window: Any) -> None:
    engine = FakeEngine(["First answer."])
    window = make_window(engine)
    first = send(qtbot, window, "Question")
    engine.script = ["Second answer."]
    with qtbot.waitSignal(window.reply_done, timeout=10_000):
        window.on_chat_action("regen", first.message.id, 0)
    wait_idle(qtbot, window)
    assert window.branch[-1].content == "Second answer."
    assert window.branch[-1].sibling_count == 2
    assert "‹ 2/2 ›" in doc_text(window)
    window.on_chat_action("prev", window.branch[-1].id, 0)
    assert window.branch[-1].content == "First answer."
    assert "‹ 1/2 ›" in doc_text(window)
    window.on_chat_action("next", window.branch[-1].id, 0)
    assert window.branch[-1].content == "Second answer."


def test_edit_starts_a_branch_and_regenerates(qtbot: Any, make_window: Any) -> None:
    engine = FakeEngine(["Answer one."])
    window = make_window(engine)
    send(qtbot, window, "Original question")
    user_id = window.branch[0].id
    engine.script = ["Answer two."]
    with qtbot.waitSignal(window.reply_done, timeout=10_000):
        window.edit_message(user_id, "Edited question")
    wait_idle(qtbot, window)
    assert [m.content for m in window.branch] == ["Edited question", "Answer two."]
    assert window.branch[0].sibling_count == 2
    assert engine.requests[-1][-1].content == "Edited question"
    window.on_chat_action("prev", window.branch[0].id, 0)
    assert [m.content for m in window.branch] == ["Original question", "Answer one."]


def test_delete_then_undo_and_trash_restore(qtbot: Any, make_window: Any) -> None:
    window = make_window(FakeEngine())
    send(qtbot, window, "Keep me")
    conv_id = window.conv_id
    window.delete_conversation(conv_id)
    assert window.conv_id is None
    assert window.sidebar.conversation_items() == []
    undo = next(b for b in window.banners.banners if b.key == f"undo-{conv_id}")
    assert "moved to Trash" in undo.text
    button = next(b for b in undo.findChildren(QPushButton) if b.text() == "Undo")
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert len(window.sidebar.conversation_items()) == 1
    assert window.conv_id == conv_id
    window.delete_conversation(conv_id)
    window.sidebar.trash_button.setChecked(True)
    assert len(window.sidebar.conversation_items()) == 1
    window.sidebar.list.setCurrentRow(0)
    qtbot.mouseClick(window.sidebar.restore_button, Qt.MouseButton.LeftButton)
    window.sidebar.trash_button.setChecked(False)
    assert len(window.sidebar.conversation_items()) == 1


def test_search_finds_a_message_and_opens_it(qtbot: Any, make_window: Any) -> None:
    engine = FakeEngine(["Bananas are yellow."])
    window = make_window(engine)
    send(qtbot, window, "Tell me about fruit")
    window.new_chat()
    engine.script = ["Sky is blue."]
    send(qtbot, window, "And the sky?")
    qtbot.keyClick(window, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    assert window.sidebar.search.hasFocus()
    qtbot.keyClicks(window.sidebar.search, "banan")
    qtbot.waitUntil(lambda: window.sidebar.mode == "search" and window.sidebar.list.count() == 1,
                    timeout=5000)
    item = window.sidebar.list.item(0)
    assert item.text() == "Tell me about fruit"
    assert item.data(PREVIEW_ROLE) == "Bananas are yellow."
    window.sidebar.list.itemActivated.emit(item)
    assert window.branch[-1].content == "Bananas are yellow."


def test_switch_model_mid_chat_records_each_model(qtbot: Any, make_window: Any, tmp_path: Any) -> None:
    engine = FakeEngine(["One."])
    window = make_window(engine)
    send(qtbot, window, "First")
    other = tmp_path / "other.gguf"
    other.write_bytes(b"GGUF")
    with qtbot.waitSignal(window.model_ready, timeout=10_000):
        window.load_model(str(other))
    assert window.model_state == "ready"
    send(qtbot, window, "Second")
    models = [m.model_name for m in window.branch if m.role == "assistant"]
    assert models[0] == "Starter (SmolLM2 135M)"
    assert models[1] == "other.gguf"
    assert "other.gguf" in window.state_label.text()


def test_load_failure_shows_banner_and_keeps_previous_model(qtbot: Any, make_window: Any) -> None:
    window = make_window(FakeEngine())
    with qtbot.waitSignal(window.model_failed, timeout=10_000):
        window.load_model("/nowhere/missing.gguf")
    assert any("does not exist" in t for t in window.banners.texts())
    assert window.model_state == "ready"  # the previous model is still loaded


def test_generation_error_is_a_banner_not_a_crash(qtbot: Any, make_window: Any) -> None:
    engine = FakeEngine(["a ", "b ", "c "])
    engine.fail_at = 2
    window = make_window(engine)
    done = send(qtbot, window, "Go")
    assert done.message.state == "error"
    assert any("fake failure" in t for t in window.banners.texts())
    assert "failed" in doc_text(window)


def test_context_marker_when_old_messages_no_longer_fit(qtbot: Any, make_window: Any) -> None:
    engine = FakeEngine(["word " * 30], n_ctx=600)
    window = make_window(engine)
    window.settings.sampling = {**window.settings.sampling, "max_tokens": 500}
    for i in range(4):
        send(qtbot, window, f"question {i} " + "pad " * 20)
    assert "no longer fit the model's context" in doc_text(window)
    assert engine.requests and window.branch[-1].stats["dropped_messages"] > 0


def test_keyboard_new_chat_newline_and_copy_last_reply(qtbot: Any, make_window: Any) -> None:
    window = make_window(FakeEngine(["Copied reply."]))
    send(qtbot, window, "Hello")
    qtbot.keyClick(window, Qt.Key.Key_C,
                   Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert QGuiApplication.clipboard().text() == "Copied reply."
    qtbot.keyClick(window, Qt.Key.Key_N, Qt.KeyboardModifier.ControlModifier)
    assert window.conv_id is None and window.chat.welcome.isVisibleTo(window)
    assert "What can I help with?" in window.chat.toPlainText()
    qtbot.keyClick(window, Qt.Key.Key_L, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClicks(window.composer.edit, "line one")
    qtbot.keyClick(window.composer.edit, Qt.Key.Key_Return, Qt.KeyboardModifier.ShiftModifier)
    qtbot.keyClicks(window.composer.edit, "line two")
    assert window.composer.text() == "line one\nline two"
    assert window.composer.button.isEnabled()
    window.composer.set_text("   ")
    assert not window.composer.button.isEnabled()


def test_send_disabled_while_model_loads(qtbot: Any, make_window: Any) -> None:
    engine = FakeEngine()
    gate = threading.Event()
    original = engine.load

    def slow_load(path: Any, options: Any = None) -> Any:
        gate.wait(10)
        return original(path, options)

    engine.load = slow_load  # type: ignore[method-assign]
    window = make_window(engine, wait_ready=False)
    window.composer.set_text("hello")
    assert window.model_state == "loading"
    assert not window.composer.button.isEnabled()
    assert "Loading" in window.state_label.text()
    gate.set()
    qtbot.waitUntil(lambda: window.model_state == "ready", timeout=10_000)
    assert window.composer.button.isEnabled()


def test_restores_geometry_splitter_and_last_conversation(qtbot: Any, make_window: Any) -> None:
    window = make_window(FakeEngine())
    send(qtbot, window, "Remember me")
    conv_id = window.conv_id
    window.resize(780, 560)  # narrow (the offscreen screen is 800 wide): the sidebar folds
    assert not window.sidebar.isVisibleTo(window)
    window.set_sidebar_visible(True)  # shown by hand
    window.splitter.setSizes([300, 480])
    sizes = window.splitter.sizes()
    window.close()
    again = make_window(FakeEngine())
    assert again.conv_id == conv_id
    assert "Remember me" in doc_text(again)
    assert again.size().width() == 780
    assert not again.sidebar.isVisibleTo(again)  # narrow again: folded, one toggle away
    again.sidebar_button.click()
    assert again.sidebar.isVisibleTo(again)
    qtbot.waitUntil(lambda: again.splitter.sizes()[0] > 0, timeout=3000)
    assert abs(again.splitter.sizes()[0] - sizes[0]) <= 2  # the width it had


def test_first_run_invites_llama2_download(qtbot: Any, make_window: Any) -> None:
    window = make_window(FakeEngine())
    assert window.picker.current_path().endswith(".gguf")
    assert "Starter" in window.picker.currentText()
    assert any("Llama-2-chat 7B" in t for t in window.banners.texts())


def test_prompt_inspector_shows_exact_prompt(qtbot: Any, make_window: Any) -> None:
    from app.ui.inspector import PromptInspector

    window = make_window(FakeEngine(["Reply."]))
    done = send(qtbot, window, "Inspect me")
    window.on_chat_action("prompt", done.message.id, 0)
    dialogs = [w for w in window.findChildren(PromptInspector)]
    assert dialogs
    assert "<user>Inspect me</user>" in dialogs[-1].text.toPlainText()
    assert "exactly as the model received it" in dialogs[-1].summary.text()


def test_get_models_opens_the_model_manager(qtbot: Any, make_window: Any) -> None:
    from app.ui.model_manager import ModelManager
    from app.ui.model_picker import GET_MODELS

    window = make_window(FakeEngine())
    index = window.picker.findData(GET_MODELS)
    assert index > 0 and window.picker.itemText(index) == "Get models…"
    window.picker.activated.emit(index)
    dialogs = window.findChildren(ModelManager)
    assert dialogs and dialogs[0].isVisible()
    assert window.picker.current_path().endswith(".gguf")  # the selection did not move


def test_rename_in_place_and_pin(qtbot: Any, make_window: Any) -> None:
    window = make_window(FakeEngine())
    send(qtbot, window, "First chat")
    window.new_chat()
    send(qtbot, window, "Second chat")
    first_id = window.store.list_conversations()[-1].id
    window.sidebar.start_rename(first_id)
    item = window.sidebar.list.currentItem()
    item.setText("Renamed chat")  # what the in-place editor commits
    assert window.store.get_conversation(first_id).title == "Renamed chat"
    window.pin_conversation(first_id, True)
    first = window.sidebar.conversation_items()[0]  # pinned first, under "Pinned"
    assert window.sidebar.list.item(0).text() == "Pinned"
    assert first.text() == "Renamed chat" and first.data(PINNED_ROLE)


def test_settings_dialog_sets_system_prompt_and_sampling(qtbot: Any, make_window: Any,
                                                        monkeypatch: Any) -> None:
    from app.engine.types import LLAMA2_DEFAULT_SYSTEM_PROMPT
    from app.ui.settings_dialog import SettingsDialog

    engine = FakeEngine(["ok"])
    window = make_window(engine)
    send(qtbot, window, "Hello")

    def fake_exec(dialog: SettingsDialog) -> int:
        dialog.system.setPlainText(LLAMA2_DEFAULT_SYSTEM_PROMPT)
        dialog.temperature.setValue(0.2)
        dialog.random_seed.setChecked(False)
        dialog.seed.setValue(42)
        dialog.font_size.setValue(14)
        dialog.accept()
        return int(SettingsDialog.DialogCode.Accepted)

    monkeypatch.setattr(SettingsDialog, "exec", fake_exec)
    window.open_settings()
    conv = window.store.get_conversation(window.conv_id)
    assert conv.system_prompt == LLAMA2_DEFAULT_SYSTEM_PROMPT
    assert conv.sampling["temperature"] == 0.2 and conv.sampling["seed"] == 42
    assert window.chat.font().pointSize() == 14
    send(qtbot, window, "Again")
    assert engine.requests[-1][0].role == "system"
    assert engine.requests[-1][0].content == LLAMA2_DEFAULT_SYSTEM_PROMPT


def test_settings_dialog_rejects_max_tokens_beyond_context(qtbot: Any) -> None:
    from app.engine.types import Sampling
    from app.settings import AppSettings
    from app.ui.settings_dialog import SettingsDialog

    dialog = SettingsDialog("", Sampling(), AppSettings())
    qtbot.add_widget(dialog)
    dialog.max_tokens.setValue(8000)
    dialog.accept()
    assert "below the context size" in dialog.error.text()
    assert dialog.result() != int(SettingsDialog.DialogCode.Accepted)


def test_unexpected_error_becomes_a_banner(qtbot: Any, make_window: Any) -> None:
    import app.ui.application as application

    window = make_window(FakeEngine())
    application._window = window
    try:
        try:
            raise RuntimeError("boom")
        except RuntimeError as err:
            application.excepthook(RuntimeError, err, err.__traceback__)
    finally:
        application._window = None
    texts = window.banners.texts()
    assert any("Something went wrong (RuntimeError: boom)" in t for t in texts)
    assert not any("Traceback" in t for t in texts)


def test_autoscroll_follows_unless_user_scrolled_up(qtbot: Any, make_window: Any) -> None:
    engine = FakeEngine([f"line {i}\n\n" for i in range(200)], delay=0.002)
    window = make_window(engine)
    send(qtbot, window, "Long please")
    bar = window.chat.verticalScrollBar()
    qtbot.waitUntil(lambda: bar.maximum() > 0 and bar.value() == bar.maximum(), timeout=5000)
    engine.delay = 0.01
    window.composer.set_text("Again")
    qtbot.keyClick(window.composer.edit, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: "line 20" in window.chat.live_text(), timeout=10_000)
    bar.triggerAction(bar.SliderAction.SliderToMinimum)  # the reader scrolls up mid-reply
    wait_idle(qtbot, window)
    assert bar.value() == 0  # and stays where they scrolled while the reply went on
    send(qtbot, window, "Once more")  # sending shows the end again
    qtbot.waitUntil(lambda: bar.value() == bar.maximum(), timeout=5000)


def test_reading_progress_shows_in_the_reply_and_the_status_line(qtbot: Any,
                                                                 make_window: Any) -> None:
    engine = FakeEngine(["Done."])
    engine.prefill_steps = 10
    engine.prefill_delay = 0.05
    window = make_window(engine)
    seen: set[str] = set()
    window.composer.set_text("one two three four five six seven eight nine ten " * 5)
    qtbot.keyClick(window.composer.edit, Qt.Key.Key_Return)

    def reading() -> bool:
        text = window.state_label.text()
        if text.startswith("Reading the conversation: "):
            seen.add(text)
            seen.add(window.chat.toPlainText().splitlines()[-2])
        return len(seen) >= 4

    qtbot.waitUntil(reading, timeout=10_000)
    wait_idle(qtbot, window)
    assert any("Reading the conversation: " in s and " / " in s and "tokens" in s for s in seen)
    assert window.state_label.text().startswith("Ready: ")
    assert "Reading the conversation" not in doc_text(window) and "Done." in doc_text(window)


def test_an_example_prompt_of_the_welcome_is_sent(qtbot: Any, make_window: Any) -> None:
    engine = FakeEngine(["Sure."])
    window = make_window(engine)
    assert window.chat.welcome.isVisibleTo(window)
    assert "Starter (SmolLM2 135M)" in window.chat.welcome.model.text()
    example = window.chat.welcome.examples[0]
    with qtbot.waitSignal(window.reply_done, timeout=10_000):
        qtbot.mouseClick(example, Qt.MouseButton.LeftButton)
    assert engine.requests[-1][-1].content == example.prompt
    assert not window.chat.welcome.isVisibleTo(window)
