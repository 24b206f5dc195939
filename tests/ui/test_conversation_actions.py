"""Trash and Undo on the window: buttons that need a selection, Restore back to the list, Undo in place."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QPushButton

from app.ui.sidebar_items import ID_ROLE
from tests.ui.fakes import FakeEngine
from tests.ui.test_window import send


class AtOnce:
    """Stands in for QTimer in app.ui.banners: what is scheduled for later runs now."""

    @staticmethod
    def singleShot(_ms: int, receiver: Any, slot: Any = None) -> None:
        (slot or receiver)()


def titles(window: Any) -> list[str]:
    return [item.text() for item in window.sidebar.conversation_items()]


def undo_button(window: Any, conv_id: int) -> QPushButton:
    bar = next(b for b in window.banners.banners if b.key == f"undo-{conv_id}")
    return next(b for b in bar.findChildren(QPushButton) if b.text() == "Undo")


def three_chats(qtbot: Any, window: Any) -> list[int]:
    ids = []
    for text in ("Chat A", "Chat B", "Chat C"):
        window.new_chat()
        send(qtbot, window, text)
        ids.append(window.conv_id)
    return ids  # listed newest first: C, B, A


def test_trash_buttons_need_a_selected_trashed_chat(qtbot: Any, make_window: Any) -> None:
    window = make_window(FakeEngine())
    send(qtbot, window, "Soon trashed")
    window.delete_conversation(window.conv_id)
    sidebar = window.sidebar
    sidebar.trash_button.setChecked(True)
    assert len(sidebar.conversation_items()) == 1 and sidebar.selected_id() is None
    assert not sidebar.restore_button.isEnabled()
    assert not sidebar.purge_button.isEnabled()
    sidebar.list.setCurrentRow(0)
    assert sidebar.restore_button.isEnabled() and sidebar.purge_button.isEnabled()
    sidebar.list.clearSelection()
    assert not sidebar.restore_button.isEnabled()


def test_restore_leaves_the_trash_with_the_chat_selected_and_open(qtbot: Any,
                                                                 make_window: Any) -> None:
    window = make_window(FakeEngine())
    a, b, _c = three_chats(qtbot, window)
    window.delete_conversation(b)
    sidebar = window.sidebar
    sidebar.trash_button.setChecked(True)
    sidebar.list.setCurrentRow(0)
    qtbot.mouseClick(sidebar.restore_button, Qt.MouseButton.LeftButton)
    assert sidebar.mode == "list" and not sidebar.trash_button.isChecked()
    assert titles(window) == ["Chat C", "Chat B", "Chat A"]  # back in its place
    assert window.conv_id == b and sidebar.selected_id() == b
    assert a != b


def test_the_sidebar_keeps_its_width_in_the_trash(qtbot: Any, make_window: Any) -> None:
    window = make_window(FakeEngine())
    send(qtbot, window, "Soon trashed")
    window.delete_conversation(window.conv_id)
    QApplication.processEvents()
    width, minimum = window.sidebar.width(), window.sidebar.minimumSizeHint().width()
    window.sidebar.trash_button.setChecked(True)
    QApplication.processEvents()
    assert window.sidebar.minimumSizeHint().width() == minimum
    assert window.sidebar.width() == width
    window.sidebar.trash_button.setChecked(False)
    QApplication.processEvents()
    assert window.sidebar.width() == width


def test_the_undo_bar_stays_while_the_trash_is_browsed(qtbot: Any, make_window: Any,
                                                       monkeypatch: Any) -> None:
    window = make_window(FakeEngine())
    send(qtbot, window, "Soon trashed")
    conv_id = window.conv_id
    # Time collapsed: any dismissal a banner schedules for later happens at once.
    monkeypatch.setattr("app.ui.banners.QTimer", AtOnce)
    window.delete_conversation(conv_id)
    window.sidebar.trash_button.setChecked(True)
    window.sidebar.list.setCurrentRow(0)
    assert window.sidebar.selected_id() == conv_id
    assert f"undo-{conv_id}" in {b.key for b in window.banners.banners}
    undo_button(window, conv_id).click()  # and it still works
    assert [c.id for c in window.store.list_trash()] == []


def test_undo_puts_the_chat_back_and_keeps_the_open_one(qtbot: Any, make_window: Any) -> None:
    window = make_window(FakeEngine())
    a, b, _c = three_chats(qtbot, window)
    window.open_conversation(a)
    window.sidebar.delete_requested.emit(b)  # the context menu's Delete on another chat
    assert window.conv_id == a and titles(window) == ["Chat C", "Chat A"]
    qtbot.mouseClick(undo_button(window, b), Qt.MouseButton.LeftButton)
    assert titles(window) == ["Chat C", "Chat B", "Chat A"]
    assert window.conv_id == a and window.sidebar.selected_id() == a
    assert window.sidebar.list.currentItem().data(ID_ROLE) == a


def test_undo_reopens_the_chat_that_was_open(qtbot: Any, make_window: Any) -> None:
    window = make_window(FakeEngine())
    _a, b, _c = three_chats(qtbot, window)
    window.open_conversation(b)
    window.delete_conversation(b)
    assert window.conv_id is None
    qtbot.mouseClick(undo_button(window, b), Qt.MouseButton.LeftButton)
    assert window.conv_id == b and window.sidebar.selected_id() == b
    assert titles(window) == ["Chat C", "Chat B", "Chat A"]


def test_only_the_latest_deletion_has_an_undo_bar(qtbot: Any, make_window: Any) -> None:
    window = make_window(FakeEngine(["ok"]))
    ids = []
    for title in ("One", "Two", "Three"):
        window.new_chat()
        send(qtbot, window, title)
        ids.append(window.conv_id)
    for conv_id in ids[:2]:
        window.delete_conversation(conv_id)
    undo_bars = [b.key for b in window.banners.banners if b.key.startswith("undo-")]
    assert undo_bars == [f"undo-{ids[1]}"]  # the first deleted is in the Trash, no bar left
    undo_button(window, ids[1]).click()
    assert "Two" in titles(window) and "One" not in titles(window)
