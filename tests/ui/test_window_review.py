"""What a second walkthrough under a real X server found: focus after Undo and a cancelled edit,
the picker never taking typed letters, a "was not loaded" note retired by the next load, the
manager saying why "Use" failed, Installed buttons that need a selection, one settings dialog
per opening."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from app.ui.settings_dialog import SettingsDialog
from tests.ui.fakes import FakeEngine
from tests.ui.test_conversation_actions import undo_button
from tests.ui.test_window import load_another_model, send, two_chats


def test_the_picker_is_reached_by_tab_but_a_click_leaves_the_keyboard_alone(
        qtbot: Any, make_window: Any) -> None:
    window = make_window(FakeEngine())
    assert window.picker.focusPolicy() == Qt.FocusPolicy.TabFocus  # not ClickFocus
    assert window.focusWidget() is window.composer.edit


def test_undo_gives_the_keyboard_back_to_the_composer(qtbot: Any, make_window: Any) -> None:
    window = make_window(FakeEngine(["ok"]))
    kept, gone = two_chats(qtbot, window, "Keep me", "Delete me")
    window.open_conversation(kept)
    window.delete_conversation(gone)
    undo = undo_button(window, gone)
    undo.setFocus()
    undo.click()
    assert window.conv_id == kept
    assert window.focusWidget() is window.composer.edit


def test_a_cancelled_edit_gives_the_keyboard_back_to_edit(qtbot: Any, make_window: Any) -> None:
    window = make_window(FakeEngine(["ok"]))
    send(qtbot, window, "A question")
    first = window.chat.widgets[window.branch[0].id]
    window.chat.widgets[window.branch[-1].id].set_keep_actions(False)
    first.start_edit()
    qtbot.keyClick(first.editor, Qt.Key.Key_Escape)
    assert window.focusWidget() is first.buttons["edit"]
    assert first.buttons["edit"].isVisible()


def test_a_was_not_loaded_note_goes_with_the_next_load(qtbot: Any, make_window: Any,
                                                       tmp_path: Path) -> None:
    window = make_window(FakeEngine())
    window.on_load_note("broken.gguf was not loaded: it failed last time. Pick it again.")
    window.on_loaded(window.model_info)  # the load the note came with
    assert "load-note" in {b.key for b in window.banners.banners}
    load_another_model(qtbot, window, tmp_path / "fixed.gguf")
    assert "load-note" not in {b.key for b in window.banners.banners}


def test_use_in_the_manager_says_there_why_a_model_failed(qtbot: Any, make_window: Any) -> None:
    window = make_window(FakeEngine())
    window.open_model_manager()
    manager = window._manager
    with qtbot.waitSignal(window.model_failed, timeout=10_000):
        window.load_model("/nowhere/missing.gguf")  # what "Use" on a broken model does
    assert "missing.gguf" in manager.message.text()


def test_installed_use_and_remove_need_a_selected_model(qtbot: Any, make_window: Any) -> None:
    window = make_window(FakeEngine())
    window.open_model_manager()
    tab = window._manager.installed_tab
    tab.table.clearSelection()
    tab.table.setCurrentCell(-1, -1)
    assert not tab.use_button.isEnabled() and not tab.remove_button.isEnabled()
    tab.table.selectRow(0)
    assert tab.use_button.isEnabled() and tab.remove_button.isEnabled()


def test_each_settings_dialog_is_destroyed_after_use(qtbot: Any, make_window: Any,
                                                     monkeypatch: Any) -> None:
    window = make_window(FakeEngine())
    monkeypatch.setattr(SettingsDialog, "exec",
                        lambda dialog: int(SettingsDialog.DialogCode.Rejected))
    for _ in range(3):
        window.open_settings()
    qtbot.waitUntil(lambda: not [w for w in QApplication.topLevelWidgets()
                                 if isinstance(w, SettingsDialog)], timeout=3000)


def test_a_hovered_link_shows_its_address_before_any_click(qtbot: Any, make_window: Any) -> None:
    from PySide6.QtCore import QEvent, QPointF
    from PySide6.QtGui import QMouseEvent, QTextCursor

    window = make_window(FakeEngine(["Read [the guide](https://example.com/guide) first."]))
    send(qtbot, window, "Where?")
    text = window.chat.widgets[window.branch[-1].id].body.parts[0]
    qtbot.waitUntil(text.isVisible, timeout=2000)  # added to a shown reply: shown next turn
    start = text.toPlainText().index("the guide") + 3
    cursor = QTextCursor(text.document())
    cursor.setPosition(start)

    def move(point: Any) -> None:
        QApplication.sendEvent(text.viewport(), QMouseEvent(
            QEvent.Type.MouseMove, QPointF(point), QPointF(text.viewport().mapToGlobal(point)),
            Qt.MouseButton.NoButton, Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier))

    move(text.cursorRect(cursor).center())
    assert window.statusBar().currentMessage() == "https://example.com/guide"
    move(text.cursorRect(QTextCursor(text.document())).center())  # off the link: gone
    assert window.statusBar().currentMessage() == ""
