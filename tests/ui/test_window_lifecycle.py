"""The window when things happen mid-reply: deletion, switching away, closing; picker, inspector."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt

from app.store import Store
from tests.ui.conftest import wait_idle
from tests.ui.fakes import FakeEngine


def start_reply(qtbot: Any, window: Any, text: str) -> int:
    """Send ``text`` and wait until the reply streams; returns the conversation's id."""
    window.composer.set_text(text)
    qtbot.keyClick(window.composer.edit, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: window.chat.live_id is not None and "w3" in window.chat.live_text(),
                    timeout=10_000)
    assert window.generating and window.conv_id is not None
    return int(window.conv_id)


def test_reply_ends_when_its_conversation_is_emptied_from_the_trash(qtbot: Any,
                                                                    make_window: Any) -> None:
    engine = FakeEngine([f"w{i} " for i in range(60)], delay=0.01)
    window = make_window(engine)
    conv_id = start_reply(qtbot, window, "Doomed")
    window.delete_conversation(conv_id)
    with Store.open(window.db_path) as other:  # e.g. `llama-desk trash --empty` meanwhile
        assert other.empty_trash() == 1
    wait_idle(qtbot, window, timeout=10_000)  # the window is not stuck in "Stop"
    assert window.composer.button.text() == "Send"
    assert not any("failed" in t for t in window.banners.texts())
    done: list[Any] = []
    window.reply_done.connect(done.append)
    send_again = start_reply(qtbot, window, "Still works")  # the worker took the next request
    assert send_again != conv_id
    qtbot.waitUntil(lambda: bool(done), timeout=10_000)
    assert done[0].message.state == "complete"


def test_deleting_forever_stops_the_reply_of_that_conversation(qtbot: Any,
                                                                make_window: Any) -> None:
    engine = FakeEngine([f"w{i} " for i in range(500)], delay=0.01)  # 5 s if not stopped
    window = make_window(engine)
    conv_id = start_reply(qtbot, window, "Doomed")
    window.delete_conversation(conv_id)
    window.confirm_purge = lambda _title: True  # type: ignore[method-assign]  # "Delete forever"
    window.purge_conversation(conv_id)
    wait_idle(qtbot, window, timeout=3000)
    assert window.composer.button.text() == "Send"
    assert not any("failed" in t for t in window.banners.texts())
    with Store.open(window.db_path) as other:
        assert other.list_conversations() == [] and other.list_trash() == []


def test_unexpected_error_in_the_model_thread_is_shown_on_the_gui_thread(
        qtbot: Any, make_window: Any, monkeypatch: Any) -> None:
    import app.ui.application as application

    window = make_window(FakeEngine())
    shown: list[tuple[str, bool]] = []

    def record(text: str, *_args: Any, **_kwargs: Any) -> None:
        shown.append((text, threading.current_thread() is threading.main_thread()))

    monkeypatch.setattr(window.banners, "show_banner", record)
    monkeypatch.setattr(application, "_window", window)

    def fail_in_thread() -> None:
        try:
            raise RuntimeError("worker boom")
        except RuntimeError as err:
            application.excepthook(RuntimeError, err, err.__traceback__)

    thread = threading.Thread(target=fail_in_thread)
    thread.start()
    thread.join()
    qtbot.waitUntil(lambda: bool(shown), timeout=5000)
    text, on_gui_thread = shown[0]
    assert "RuntimeError: worker boom" in text
    assert on_gui_thread


def test_finished_reply_shows_after_switching_away_and_back(qtbot: Any, make_window: Any) -> None:
    engine = FakeEngine([f"w{i} " for i in range(80)] + ["**end**"], delay=0.01)
    window = make_window(engine)
    conv_id = start_reply(qtbot, window, "Long one")
    window.new_chat()
    assert window.chat.live_id is None
    with qtbot.waitSignal(window.reply_done, timeout=10_000) as blocker:
        window.open_conversation(conv_id)  # the reply goes on streaming here
        qtbot.waitUntil(lambda: "w3" in window.chat.toPlainText(), timeout=5000)
    wait_idle(qtbot, window)
    done = blocker.args[0]
    assert done.message.state == "complete"
    text = window.chat.toPlainText()
    assert "w79 end" in text  # the whole reply, Markdown rendered
    assert "writing…" not in text
    assert window.chat.live_id is None


def test_finished_reply_shows_when_coming_back_after_it_finished(qtbot: Any,
                                                                  make_window: Any) -> None:
    engine = FakeEngine([f"w{i} " for i in range(40)], delay=0.01)
    window = make_window(engine)
    conv_id = start_reply(qtbot, window, "Elsewhere")
    window.new_chat()
    wait_idle(qtbot, window)
    window.open_conversation(conv_id)
    text = window.chat.toPlainText()
    assert "w39" in text and "writing…" not in text


def test_close_during_a_slow_model_load_waits_for_the_model_thread(qtbot: Any,
                                                                   make_window: Any) -> None:
    engine = FakeEngine()
    gate = threading.Event()
    loading = threading.Event()
    original = engine.load

    def slow_load(path: Any, options: Any = None) -> Any:
        loading.set()
        gate.wait(5)  # a load cannot be cancelled
        return original(path, options)

    engine.load = slow_load  # type: ignore[method-assign]
    window = make_window(engine, wait_ready=False)
    window.close_wait_ms = 50
    qtbot.waitUntil(loading.is_set, timeout=10_000)  # the model thread is inside the load
    try:
        window.close()
        closed = window.host.closed_future()
        assert closed is not None and not closed.done()  # the model thread is still loading
        assert window.isVisible()  # not closed (nor its store) while the thread runs
        assert not window.store.closed
        assert "Closing after the model finishes loading" in window.state_label.text()
    finally:
        gate.set()
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=10_000)
    assert closed.done()
    assert window.store.closed


def test_picker_verdicts_follow_the_context_size(qtbot: Any, starter_model: Path,
                                                 monkeypatch: Any) -> None:
    from app.ui.model_picker import ModelPicker

    monkeypatch.setattr(ModelPicker, "_verdicts", staticmethod(
        lambda paths, n_ctx: {p: f"fits at {n_ctx}" for p in paths}))
    picker = ModelPicker()
    qtbot.add_widget(picker)
    picker.refresh(4096)
    qtbot.waitUntil(lambda: "fits at 4096" in picker.detail(0), timeout=5000)
    assert picker.itemText(0) == "Starter (SmolLM2 135M)"  # the name; the rest is the detail
    picker.refresh(32768)
    qtbot.waitUntil(lambda: "fits at 32768" in picker.detail(0), timeout=5000)
    picker.refresh(4096)  # known already: shown at once
    assert "fits at 4096" in picker.detail(0)


def test_settings_context_change_refreshes_the_picker(qtbot: Any, make_window: Any,
                                                      monkeypatch: Any) -> None:
    from app.ui.model_picker import ModelPicker
    from app.ui.settings_dialog import SettingsDialog

    monkeypatch.setattr(ModelPicker, "_verdicts", staticmethod(
        lambda paths, n_ctx: {p: f"fits at {n_ctx}" for p in paths}))
    window = make_window(FakeEngine())

    def fake_exec(dialog: SettingsDialog) -> int:
        dialog.context.setValue(2048)
        dialog.accept()
        return int(SettingsDialog.DialogCode.Accepted)

    monkeypatch.setattr(SettingsDialog, "exec", fake_exec)
    with qtbot.waitSignal(window.model_ready, timeout=10_000):  # reloaded with the new context
        window.open_settings()
    assert window.picker.n_ctx == 2048
    qtbot.waitUntil(lambda: "fits at 2048" in window.picker.detail(window.picker.currentIndex()),
                    timeout=5000)


def test_inspector_shows_the_note_as_plain_text(qtbot: Any) -> None:
    from app.ui.inspector import PromptInspector

    dialog = PromptInspector("prompt", 3, "re-rendered with <img src='x'><b>Evil</b>")
    qtbot.add_widget(dialog)
    summary = dialog.summary.text()
    assert "<img" not in summary and "&lt;img src=&#x27;x&#x27;&gt;&lt;b&gt;Evil" in summary
    assert summary.startswith("<b>3 tokens</b>")


def test_a_model_that_failed_to_load_is_not_the_default_at_start(
        qtbot: Any, make_window: Any, tiny_llama2: Path, tmp_path: Path) -> None:
    """It took the app down last time (or failed): the window opens with the starter and says so."""
    import pytest

    from app import settings as app_settings
    from app.errors import ModelFileError
    from app.hub import installed, load_failures

    copy = tmp_path / "broken-llama.gguf"
    copy.write_bytes(tiny_llama2.read_bytes())
    model = installed.import_model(copy)
    saved = app_settings.load()
    saved.model = str(model.path)
    app_settings.save(saved)
    with pytest.raises(ModelFileError), load_failures.loading(model.path):
        raise ModelFileError("llama.cpp could not load it")
    window = make_window(FakeEngine())
    assert window.model_info is not None and window.model_info.name == "Starter (SmolLM2 135M)"
    qtbot.waitUntil(lambda: any("was not loaded" in t for t in window.banners.texts()), timeout=5000)
    [note] = [t for t in window.banners.texts() if "was not loaded" in t]
    assert model.name in note and "could not load it" in note and "started with" in note
