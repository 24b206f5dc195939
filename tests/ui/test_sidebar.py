"""The sidebar: date groups with previews, order by the latest reply, selection, no sideways scroll."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from PySide6.QtCore import Qt

from app.ui.sidebar_items import HEADER_ROLE, PREVIEW_ROLE, date_group, plain_preview
from tests.ui.fakes import FakeEngine
from tests.ui.test_window import send


def test_previews_lose_their_markdown_marks() -> None:
    assert plain_preview("**Yes** — test: - [x] `if line.strip():` # done") == \
        "Yes — test: if line.strip(): done"
    assert plain_preview("```python print(1)") == "print(1)"
    assert plain_preview("well-known 3-day plan") == "well-known 3-day plan"


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
    send(qtbot, window, "Older chat")
    older = window.conv_id
    window.new_chat()
    send(qtbot, window, "Top chat")
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
