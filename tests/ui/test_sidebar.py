"""The sidebar: date groups, previews, order, a selection that follows the open chat, search."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QContextMenuEvent
from PySide6.QtWidgets import QApplication, QMenu

from app.ui.sidebar import NAVIGATE_DELAY_MS
from app.ui.sidebar_items import (
    HEADER_ROLE,
    ID_ROLE,
    MATCHES_ROLE,
    PREVIEW_ROLE,
    date_group,
    plain_preview,
)
from tests.ui.conftest import OFFSCREEN_NOISE
from tests.ui.fakes import FakeEngine
from tests.ui.test_window import send, two_chats


def test_previews_lose_their_markdown_marks() -> None:
    assert plain_preview("**Yes** — test: - [x] `if line.strip():` # done") == \
        "Yes — test: if line.strip(): done"
    assert plain_preview("```python print(1)") == "print(1)"
    assert plain_preview("well-known 3-day plan") == "well-known 3-day plan"
    assert plain_preview("See [the docs](https://example.com/a) ![x](y.png)") == "See the docs x"
    assert plain_preview("See [the docs](https://example.co") == "See the docs"  # cut inside


def test_date_groups() -> None:
    now = datetime(2025, 6, 20, 15, 0).timestamp()
    day = 86_400
    assert date_group(now - 60, now) == "Today"
    assert date_group(now - day, now) == "Yesterday"
    assert date_group(now - 3 * day, now) == "Previous 7 days"
    assert date_group(now - 20 * day, now) == "Previous 30 days"
    assert date_group(now - 60 * day, now) == "April"
    assert date_group(datetime(2023, 3, 1).timestamp(), now) == "2023"


def test_groups_previews_and_the_latest_reply_on_top(qtbot: Any, make_window: Any) -> None:
    window = make_window(FakeEngine(["A reply about llamas."]))
    send(qtbot, window, "First chat")
    first = window.conv_id
    window.new_chat()
    assert window.sidebar.selected_id() is None  # the selection follows Ctrl+N
    send(qtbot, window, "Second chat")
    second = window.conv_id
    assert window.sidebar.selected_id() == second  # and then the new conversation
    old = time.time() - 3 * 86_400
    window.store._conn.execute("UPDATE conversations SET updated_at = ? WHERE id = ?", (old, first))
    window.store._conn.commit()
    window.sidebar.refresh()
    rows = [(window.sidebar.list.item(r).text(), window.sidebar.list.item(r).data(HEADER_ROLE))
            for r in range(window.sidebar.list.count())]
    assert rows == [("Today", True), ("Second chat", None), ("Previous 7 days", True),
                    ("First chat", None)]
    items = window.sidebar.conversation_items()
    assert items[0].data(PREVIEW_ROLE) == "A reply about llamas."
    window.open_conversation(first)
    send(qtbot, window, "Back to the first")  # a new reply: to the top at once
    assert [i.text() for i in window.sidebar.conversation_items()] == ["First chat", "Second chat"]
    window.rename_conversation(second, "Renamed second")  # renaming does not reorder
    assert [i.text() for i in window.sidebar.conversation_items()] == ["First chat",
                                                                       "Renamed second"]
    assert window.sidebar.list.horizontalScrollBarPolicy() == Qt.ScrollBarPolicy.ScrollBarAlwaysOff


def test_a_reply_moves_its_chat_up_as_soon_as_it_is_sent(qtbot: Any, make_window: Any) -> None:
    engine = FakeEngine([f"w{i} " for i in range(100)], delay=0.01)
    window = make_window(engine)
    engine.delay = 0
    send(qtbot, window, "Older chat")
    older = window.conv_id
    window.new_chat()
    send(qtbot, window, "Newer chat")
    window.open_conversation(older)
    engine.delay = 0.01
    window.composer.set_text("Still there?")
    qtbot.keyClick(window.composer.edit, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: window.sidebar.conversation_items()[0].text() == "Older chat",
                    timeout=5000)
    assert window.generating  # while the reply is still being written


def test_the_font_size_setting_reaches_the_sidebar(qtbot: Any, make_window: Any) -> None:
    window = make_window(FakeEngine())
    window.settings.font_size = 16
    window.apply_font()
    assert window.sidebar.list.font().pointSize() == 16
    assert window.chat.font().pointSize() == 16
    assert window.composer.edit.font().pointSize() == 16


def test_a_reply_to_the_top_chat_updates_its_preview_in_place(qtbot: Any, make_window: Any,
                                                              monkeypatch: Any) -> None:
    engine = FakeEngine(["**First** answer."])
    window = make_window(engine)
    older, _top = two_chats(qtbot, window, "Older chat", "Top chat")
    reads: list[str] = []
    original = window.store.list_conversations
    monkeypatch.setattr(window.store, "list_conversations",
                        lambda *a, **k: reads.append("list") or original(*a, **k))
    engine.script = ["A *second* answer."]
    send(qtbot, window, "Once more")  # the top chat stays on top: nothing is read again
    assert reads == []
    items = window.sidebar.conversation_items()
    assert [i.text() for i in items] == ["Top chat", "Older chat"]
    assert items[0].data(PREVIEW_ROLE) == "A second answer."
    window.open_conversation(older)
    send(qtbot, window, "Back to the older one")  # not on top yet: the list is read again
    assert reads
    items = window.sidebar.conversation_items()
    assert [i.text() for i in items] == ["Older chat", "Top chat"]
    assert items[0].data(PREVIEW_ROLE) == "A second answer."
    assert window.sidebar.list.item(0).text() == "Today"


def seeded(n: int, *, pinned: int = 0) -> list[int]:
    """``n`` chats in the store before the window starts (newest last); the first ``pinned`` pinned."""
    from app import paths
    from app.store import Store

    ids = []
    with Store.open(paths.database_path()) as store:
        for i in range(n):
            conv = store.create_conversation(title=f"Chat {i}")
            store.add_user_message(conv.id, f"question {i}")
            if i < pinned:
                store.set_pinned(conv.id, True)
            ids.append(conv.id)
    return ids


def last_open(conv_id: int) -> None:
    from app.ui.main_window import window_settings

    qs = window_settings()
    qs.setValue("last_conversation", conv_id)
    qs.sync()


def viewport_rect_of(window: Any, conv_id: int) -> Any:
    sidebar = window.sidebar
    item = next(i for i in sidebar.conversation_items() if i.data(ID_ROLE) == conv_id)
    return sidebar.list.visualItemRect(item)


def test_at_start_a_visible_chat_is_selected_without_scrolling(qtbot: Any,
                                                               make_window: Any) -> None:
    ids = seeded(30, pinned=1)
    last_open(ids[-3])  # the third under "Today": on the first screen
    window = make_window(FakeEngine())
    qtbot.waitUntil(lambda: window.sidebar.list.viewport().height() > 200, timeout=3000)
    QApplication.processEvents()
    assert window.sidebar.selected_id() == ids[-3]
    assert window.sidebar.list.verticalScrollBar().value() == 0  # Pinned and Today show


def test_at_start_a_chat_further_down_is_scrolled_into_view(qtbot: Any,
                                                            make_window: Any) -> None:
    ids = seeded(40)
    last_open(ids[20])  # further down the list, above its last screen
    window = make_window(FakeEngine())
    qtbot.waitUntil(lambda: window.sidebar.list.viewport().height() > 200, timeout=3000)
    QApplication.processEvents()
    viewport = window.sidebar.list.viewport().rect()
    rect = viewport_rect_of(window, ids[20])
    assert viewport.contains(rect)
    assert rect.top() > viewport.height() // 2  # revealed, not pulled up to the top


def test_arrow_keys_open_the_chat_they_move_to(qtbot: Any, make_window: Any) -> None:
    ids = seeded(4)
    last_open(ids[-1])  # the top one
    window = make_window(FakeEngine())
    sidebar = window.sidebar
    opened: list[int] = []
    sidebar.open_requested.connect(lambda conv_id, _m: opened.append(conv_id))
    sidebar.list.setFocus()
    qtbot.keyClick(sidebar.list, Qt.Key.Key_Down)
    assert window.conv_id == ids[-1]  # not at once: a held key does not load every chat
    qtbot.waitUntil(lambda: window.conv_id == ids[-2], timeout=3000)
    assert sidebar.selected_id() == ids[-2]
    assert window.focusWidget() is sidebar.list  # the keyboard stays in the list
    qtbot.keyClick(sidebar.list, Qt.Key.Key_Down)
    qtbot.keyClick(sidebar.list, Qt.Key.Key_Down)  # two steps in a row: one chat loaded
    qtbot.waitUntil(lambda: window.conv_id == ids[0], timeout=3000)
    qtbot.wait(NAVIGATE_DELAY_MS * 2)
    assert opened == [ids[-2], ids[0]]
    assert sidebar.selected_id() == ids[0] == window.conv_id
    window.new_chat()
    sidebar.list.setFocus(Qt.FocusReason.TabFocusReason)  # Qt makes a row current on focus-in
    qtbot.wait(NAVIGATE_DELAY_MS * 2)
    assert window.conv_id is None  # only the keys open what they move to


@pytest.mark.qt_log_ignore(OFFSCREEN_NOISE, "does not support grabbing the keyboard")  # a menu
def test_a_right_click_leaves_the_open_chat_selected(qtbot: Any, make_window: Any) -> None:
    ids = seeded(3)
    last_open(ids[-1])
    window = make_window(FakeEngine())
    sidebar = window.sidebar
    other = viewport_rect_of(window, ids[0]).center()
    viewport = sidebar.list.viewport()
    qtbot.mouseClick(viewport, Qt.MouseButton.RightButton, pos=other)
    QApplication.sendEvent(viewport, QContextMenuEvent(QContextMenuEvent.Reason.Mouse, other,
                                                       viewport.mapToGlobal(other)))
    menu = QApplication.activePopupWidget()
    assert isinstance(menu, QMenu)
    assert sidebar.selected_id() == ids[-1] and window.conv_id == ids[-1]
    pin = next(a for a in menu.actions() if a.text() == "Pin")
    pin.trigger()  # the menu acts on the row clicked
    menu.close()
    assert window.store.get_conversation(ids[0]).pinned
    assert sidebar.selected_id() == ids[-1] and window.conv_id == ids[-1]


def test_esc_in_the_search_field_clears_it(qtbot: Any, make_window: Any) -> None:
    window = make_window(FakeEngine(["Bananas are yellow."]))
    send(qtbot, window, "Tell me about fruit")
    search = window.sidebar.search
    qtbot.keyClick(window, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClicks(search, "banan")
    qtbot.waitUntil(lambda: window.sidebar.title.text() == "1 matching message", timeout=3000)
    qtbot.keyClick(search, Qt.Key.Key_Escape)
    assert search.text() == "" and window.sidebar.mode == "list"
    assert window.sidebar.title.isHidden()  # the list again, at once
    assert [i.text() for i in window.sidebar.conversation_items()] == ["Tell me about fruit"]
    assert window.sidebar.selected_id() == window.conv_id


def test_search_matches_are_marked_for_the_delegate_not_in_the_text(qtbot: Any,
                                                                    make_window: Any) -> None:
    window = make_window(FakeEngine(["A hash table maps keys."]))
    send(qtbot, window, "Explain tables")
    qtbot.keyClick(window, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClicks(window.sidebar.search, "hash")
    qtbot.waitUntil(lambda: window.sidebar.title.text() == "1 matching message", timeout=3000)
    item = window.sidebar.list.item(0)
    assert item.data(PREVIEW_ROLE) == "A hash table maps keys."
    assert [text for text, hit in item.data(MATCHES_ROLE) if hit] == ["hash"]
    for text in (item.toolTip(), item.data(Qt.ItemDataRole.AccessibleTextRole)):
        assert "A hash table maps keys." in text and "«" not in text


def test_a_larger_font_widens_the_sidebar_in_step(qtbot: Any, make_window: Any) -> None:
    window = make_window(FakeEngine())
    window.resize(1300, 800)
    qtbot.waitUntil(lambda: window.splitter.sizes()[0] > 0, timeout=2000)
    narrow = window.splitter.sizes()[0]
    chars = window.sidebar.fontMetrics().averageCharWidth()
    window.settings.font_size = 16
    window.apply_font()
    wide = window.splitter.sizes()[0]
    ratio = window.sidebar.fontMetrics().averageCharWidth() / chars
    assert ratio > 1.2 and abs(wide - narrow * ratio) <= 2
    window.settings.font_size = 11  # back to the default size: back to the width it had
    window.apply_font()
    assert abs(window.splitter.sizes()[0] - narrow) <= 3


def test_the_chat_a_reply_goes_to_says_writing_and_stop_names_it(qtbot: Any,
                                                                  make_window: Any) -> None:
    from app.ui.sidebar_items import WRITING_ROLE

    engine = FakeEngine(["ok"])
    window = make_window(engine)
    busy, other = two_chats(qtbot, window, "Elsewhere chat", "Other chat")
    window.open_conversation(busy)
    engine.script, engine.delay = [f"w{i} " for i in range(200)], 0.01
    window.composer.set_text("Go on")
    qtbot.keyClick(window.composer.edit, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: "w3" in window.chat.live_text(), timeout=5000)

    def writing() -> dict[str, bool]:
        return {i.text(): bool(i.data(WRITING_ROLE)) for i in window.sidebar.conversation_items()}

    assert writing() == {"Elsewhere chat": True, "Other chat": False}
    assert window.composer.button.toolTip() == "Stop the reply (Esc)"
    window.open_conversation(other)  # the reply goes on in the first chat
    assert writing() == {"Elsewhere chat": True, "Other chat": False}
    assert "“Elsewhere chat”" in window.composer.button.toolTip()
    window.stop()
    qtbot.waitUntil(lambda: not window.generating, timeout=5000)
    assert not any(writing().values())
    assert window.composer.button.text() == "Send"
