"""The rough edges a new user hit (issue 15, bugs 1-10), each checked on the window."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

from app.engine.types import GenerationResult
from app.store import Store
from tests.ui.conftest import wait_idle
from tests.ui.fakes import FakeEngine
from tests.ui.test_window import load_another_model, send


def focused(window: Any) -> Any:
    return window.focusWidget()


# 1 -------------------------------------------------------------------------------------------
def test_the_composer_has_the_keyboard_at_start_after_stop_and_on_switching(
        qtbot: Any, make_window: Any) -> None:
    engine = FakeEngine([f"w{i} " for i in range(300)], delay=0.01)
    window = make_window(engine)
    assert focused(window) is window.composer.edit  # typing right after launch lands here
    qtbot.keyClicks(focused(window), "first words")
    assert window.composer.text() == "first words"
    qtbot.keyClick(window.composer.edit, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: "w3" in window.chat.live_text(), timeout=10_000)
    window.sidebar.search.setFocus()
    window.chat.setFocus()  # e.g. the reader clicked into the chat meanwhile
    qtbot.keyClick(window, Qt.Key.Key_Escape)  # Stop
    wait_idle(qtbot, window)
    assert focused(window) is window.composer.edit
    conv_id = window.conv_id
    window.sidebar.search.setFocus()
    qtbot.keyClick(window, Qt.Key.Key_N, Qt.KeyboardModifier.ControlModifier)
    assert focused(window) is window.composer.edit
    window.sidebar.search.setFocus()
    window.open_conversation(conv_id)
    assert focused(window) is window.composer.edit
    window.sidebar.search.setFocus()
    for _ in range(4):  # Tab from the search field reaches the composer: list, chat, composer
        if focused(window) is window.composer.edit:
            break
        qtbot.keyClick(focused(window), Qt.Key.Key_Tab)
    assert focused(window) is window.composer.edit


# 2 -------------------------------------------------------------------------------------------
def test_a_message_too_long_is_refused_and_stays_in_the_composer(qtbot: Any,
                                                                 make_window: Any) -> None:
    window = make_window(FakeEngine(n_ctx=600))
    text = "word " * 400  # 400 tokens: more than the 88 left after 512 reserved for the reply
    window.composer.set_text(text)
    with qtbot.waitSignal(window.request_done, timeout=10_000):
        qtbot.keyClick(window.composer.edit, Qt.Key.Key_Return)
    assert window.composer.text() == text  # nothing lost, and still editable
    assert not window.composer.edit.isReadOnly()
    assert any("does not fit" in t for t in window.banners.texts())
    assert window.conv_id is None and window.store.list_conversations() == []  # nothing stored
    assert window.composer.button.text() == "Send" and window.composer.button.isEnabled()


# 3 -------------------------------------------------------------------------------------------
def test_delete_forever_asks_first_and_retires_the_undo_bar(qtbot: Any, make_window: Any) -> None:
    window = make_window(FakeEngine())
    send(qtbot, window, "Keep or not")
    conv_id = window.conv_id
    window.delete_conversation(conv_id)
    assert f"undo-{conv_id}" in {b.key for b in window.banners.banners}

    def answer(button: QMessageBox.StandardButton | str) -> None:
        box = QApplication.activeModalWidget()
        assert isinstance(box, QMessageBox) and "cannot be undone" in box.text()
        target = next(b for b in box.buttons() if b.text() == button) if isinstance(button, str) \
            else box.button(button)
        target.click()

    QTimer.singleShot(50, lambda: answer(QMessageBox.StandardButton.Cancel))
    window.purge_conversation(conv_id)  # the real dialog: Cancel keeps the conversation
    assert [c.id for c in window.store.list_trash()] == [conv_id]
    assert f"undo-{conv_id}" in {b.key for b in window.banners.banners}
    QTimer.singleShot(50, lambda: answer("Delete forever"))
    window.purge_conversation(conv_id)
    assert window.store.list_trash() == []
    assert f"undo-{conv_id}" not in {b.key for b in window.banners.banners}  # nothing to undo
    assert not any("No conversation" in t for t in window.banners.texts())

    send(qtbot, window, "Back again")
    other = window.conv_id
    window.delete_conversation(other)
    window.sidebar.trash_button.setChecked(True)
    window.sidebar.list.setCurrentRow(0)
    window.sidebar.restore_button.click()  # restored from the Trash view: Undo is done with
    assert f"undo-{other}" not in {b.key for b in window.banners.banners}
    assert window.conv_id == other


# 4 -------------------------------------------------------------------------------------------
def test_the_meter_counts_what_is_sent_and_never_another_conversation(qtbot: Any,
                                                                      make_window: Any) -> None:
    engine = FakeEngine(["short answer"], n_ctx=1024)
    window = make_window(engine)
    window.settings.sampling = {**window.settings.sampling, "max_tokens": 200}
    for i in range(8):  # far more than the context holds
        send(qtbot, window, f"question {i} " + "pad " * 150)
    qtbot.waitUntil(lambda: "/ 1,024 tokens" in window.meter.text(), timeout=5000)
    used = int(window.meter.text().split(" / ")[0].replace(",", ""))
    assert 0 < used <= 1024 - 200  # what the next prompt sends, not the whole history
    assert "left out" in window.meter.toolTip()
    first = window.conv_id
    window.new_chat()
    send(qtbot, window, "tiny")
    second = window.conv_id
    qtbot.waitUntil(lambda: window.meter.text().split(" / ")[0] not in ("0", f"{used:,}"),
                    timeout=5000)  # the new chat's own count
    engine.script = [f"w{i} " for i in range(200)]
    engine.delay = 0.01
    window.composer.set_text("and now a long one")
    qtbot.keyClick(window.composer.edit, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: "w3" in window.chat.live_text(), timeout=10_000)
    window.open_conversation(first)  # its count waits behind the reply in the second chat
    assert window.meter.text().startswith("counting…")
    wait_idle(qtbot, window)
    qtbot.waitUntil(lambda: window.meter.text().startswith(f"{used:,} /"), timeout=10_000)
    assert window.conv_id == first and second != first


# 5 -------------------------------------------------------------------------------------------
def test_the_prompt_cut_is_stored_and_survives_a_model_switch_and_restart(
        qtbot: Any, make_window: Any, tmp_path: Path) -> None:
    engine = FakeEngine(["word " * 30], n_ctx=600)
    window = make_window(engine)
    window.settings.sampling = {**window.settings.sampling, "max_tokens": 500}
    for i in range(4):
        send(qtbot, window, f"question {i} " + "pad " * 20)
    marker = "no longer fit the model's context"
    assert marker in window.chat.toPlainText()
    other = tmp_path / "other.gguf"
    other.write_bytes(b"GGUF")
    with qtbot.waitSignal(window.model_ready, timeout=10_000):
        window.load_model(str(other))
    assert marker in window.chat.toPlainText()  # still there after a model switch
    conv_id = window.conv_id
    window.close()
    again = make_window(FakeEngine())  # a restart: the cut comes from the store
    assert again.conv_id == conv_id and marker in again.chat.toPlainText()


# 6 -------------------------------------------------------------------------------------------
def test_a_restored_conversation_opens_at_its_latest_message(qtbot: Any, make_window: Any) -> None:
    from app import paths
    from app.ui.main_window import window_settings

    with Store.open(paths.database_path()) as store:
        conv = store.create_conversation(title="Long one")
        for i in range(30):
            user = store.add_user_message(conv.id, f"question {i}")
            msg = store.start_assistant(conv.id, user.id, model_name="m")
            writer = store.reply_writer(msg.id)
            writer.append(f"answer {i}\n\n" + "text " * 80)
            writer.finish(GenerationResult(text="", generated_tokens=80))
    qs = window_settings()
    qs.setValue("last_conversation", conv.id)
    qs.sync()
    window = make_window(FakeEngine())
    bar = window.chat.verticalScrollBar()
    qtbot.waitUntil(lambda: bar.maximum() > 1000 and bar.value() == bar.maximum(), timeout=5000)
    qtbot.wait(200)  # late layout (text wrapping) keeps it at the end
    assert bar.value() == bar.maximum()


# 7 -------------------------------------------------------------------------------------------
def test_the_starter_banner_goes_when_another_model_is_used(qtbot: Any, make_window: Any,
                                                            tmp_path: Path) -> None:
    window = make_window(FakeEngine())
    assert "invite" in {b.key for b in window.banners.banners}
    load_another_model(qtbot, window, tmp_path / "mistral.gguf")
    assert "invite" not in {b.key for b in window.banners.banners}


# 8 -------------------------------------------------------------------------------------------
def test_a_model_imported_elsewhere_appears_in_the_picker(qtbot: Any, make_window: Any,
                                                          tmp_path: Path) -> None:
    from app.hub import installed
    from tests.hub.fixtures import tiny_gguf

    window = make_window(FakeEngine())
    path = tmp_path / "imported-by-cli.gguf"
    tiny_gguf(path, payload_mib=0.2)
    installed.import_model(path)  # what `llama-desk models import` does, in another process
    qtbot.waitUntil(lambda: window.picker.findData(str(path.resolve())) >= 0, timeout=5000)
    window.open_model_manager()
    names = [window._manager.installed.item(r, 0).text()
             for r in range(window._manager.installed.rowCount())]
    assert "imported-by-cli" in names


# 9 -------------------------------------------------------------------------------------------
def test_ctrl_q_quits(qtbot: Any, make_window: Any) -> None:
    window = make_window(FakeEngine())
    qtbot.keyClick(window, Qt.Key.Key_Q, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=10_000)
    assert window.store.closed


def test_a_link_no_browser_can_open_is_a_banner(qtbot: Any, make_window: Any,
                                                monkeypatch: Any) -> None:
    from PySide6.QtCore import QUrl

    monkeypatch.setattr("app.ui.chat_view.QDesktopServices.openUrl", lambda url: False)
    window = make_window(FakeEngine())
    window.chat.anchorClicked.emit(QUrl("https://example.com/docs"))
    assert any("No web browser could open https://example.com/docs" in t
               for t in window.banners.texts())


def test_stale_load_messages_go_once_a_model_loads(qtbot: Any, make_window: Any,
                                                   tmp_path: Path) -> None:
    engine = FakeEngine()
    window = make_window(engine)
    window.open_model_manager()
    with qtbot.waitSignal(window.model_failed, timeout=10_000):
        window.load_model("/nowhere/missing.gguf")
    window._manager.show_message("missing.gguf failed to load", error=True)
    assert "failed to load" in window.state_label.text()
    good = tmp_path / "good.gguf"
    good.write_bytes(b"GGUF")
    with qtbot.waitSignal(window.model_ready, timeout=10_000):
        window.load_model(str(good))
    assert window.state_label.text().startswith("Ready: ") and "failed" not in \
        window.state_label.text()
    assert not any("does not exist" in t for t in window.banners.texts())
    assert window._manager.message.text() == ""


def test_a_model_has_one_name_everywhere(qtbot: Any, make_window: Any, tmp_path: Path) -> None:
    from app.hub import installed
    from tests.hub.fixtures import tiny_gguf

    path = tmp_path / "llama-2-7b-chat.tiny.gguf"
    tiny_gguf(path, payload_mib=0.2)
    installed.import_model(path)
    window = make_window(FakeEngine(["ok"]))
    qtbot.waitUntil(lambda: window.picker.findData(str(path.resolve())) >= 0, timeout=5000)
    with qtbot.waitSignal(window.model_ready, timeout=10_000):
        window.load_model(str(path.resolve()))
    done = send(qtbot, window, "Hi")
    name = window.picker.currentText()
    window.open_model_manager()
    in_manager = {window._manager.installed.item(r, 0).text()
                  for r in range(window._manager.installed.rowCount())}
    assert name == "llama-2-7b-chat.tiny" and name in in_manager
    assert done.message.model_name == name and f"Ready: {name} " in window.state_label.text()
    assert window.chat.widgets[done.message.id].header.text() == name


# 10 ------------------------------------------------------------------------------------------
def test_a_conversation_system_prompt_is_not_the_default_unless_asked(
        qtbot: Any, make_window: Any, monkeypatch: Any) -> None:
    from app.ui.settings_dialog import SettingsDialog

    engine = FakeEngine(["ok"])
    window = make_window(engine)
    send(qtbot, window, "Hello")
    choices: dict[str, Any] = {"prompt": "Answer like a pirate.", "default": False}

    def fake_exec(dialog: SettingsDialog) -> int:
        dialog.system.setPlainText(choices["prompt"])
        dialog.default_box.setChecked(choices["default"])
        dialog.accept()
        return int(SettingsDialog.DialogCode.Accepted)

    monkeypatch.setattr(SettingsDialog, "exec", fake_exec)
    window.open_settings()
    assert window.load_conversation().system_prompt == "Answer like a pirate."
    assert window.settings.default_system_prompt == ""
    window.new_chat()
    send(qtbot, window, "A new chat")
    assert engine.requests[-1][0].role == "user"  # no system prompt: the default is unchanged

    choices.update(prompt="Be brief.")  # on a new chat: for that chat only
    window.new_chat()
    window.open_settings()
    send(qtbot, window, "Third chat")
    assert engine.requests[-1][0].content == "Be brief."
    assert window.load_conversation().system_prompt == "Be brief."
    window.new_chat()
    send(qtbot, window, "Fourth chat")
    assert engine.requests[-1][0].role == "user"

    choices.update(prompt="Always cite sources.", default=True)  # "make default"
    window.open_settings()
    assert window.settings.default_system_prompt == "Always cite sources."
    window.new_chat()
    send(qtbot, window, "Fifth chat")
    assert engine.requests[-1][0].content == "Always cite sources."
