"""The chat view alone: message blocks, append-only streaming, code blocks, links, paging, editing."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QPoint, Qt, QUrl
from PySide6.QtGui import QGuiApplication, QTextDocument
from PySide6.QtWidgets import QToolButton

from app.store.models import StoredMessage
from app.ui.chat_view import FIRST_PAGE, PAGE, ChatView
from app.ui.message_widget import MessageWidget
from app.ui.rich_text import CodeBlock, RichText


def msg(mid: int, role: str, content: str, **kw: Any) -> StoredMessage:
    return StoredMessage(id=mid, conversation_id=1, parent_id=mid - 1 or None, role=role,
                         content=content, created_at=0.0, updated_at=0.0, **kw)


def make_view(qtbot: Any, width: int = 900, height: int = 700) -> ChatView:
    view = ChatView()
    qtbot.add_widget(view)
    view.resize(width, height)
    view.show()
    return view


def test_streaming_appends_without_rebuilding_the_conversation(qtbot: Any,
                                                                monkeypatch: Any) -> None:
    view = make_view(qtbot)
    history = [msg(i, "user" if i % 2 else "assistant", f"message {i} " * 50) for i in range(1, 21)]
    view.show_messages(history)
    before = dict(view.widgets)
    made: list[int] = []
    original = view._make
    monkeypatch.setattr(view, "_make", lambda m: made.append(m.id) or original(m))
    view.begin_stream(msg(100, "assistant", "", state="partial"))
    live = view.widgets[100]
    first_part: RichText | None = None
    for i in range(200):
        view.append_chunk(100, f"word{i} ")
        if i % 50 == 49:
            view.append_chunk(100, "\n\n")
            qtbot.wait(40)
            if first_part is None and live.body.parts:
                first_part = live.body.parts[0]
    qtbot.waitUntil(lambda: "word199" in live.text(), timeout=5000)
    assert made == [100]  # only the reply's own widget was built while streaming
    assert all(view.widgets[mid] is widget for mid, widget in before.items())
    assert first_part is not None and live.body.parts[0] is first_part  # appended, not redrawn
    assert 1 <= view.render_count < 60  # batched, not one render per chunk
    final = msg(100, "assistant", view.live_text(), stats={"generated_tokens": 200})
    view.end_stream(final)
    assert "200 tokens" in view.toPlainText()
    assert view.live_id is None and live.body.parts[0] is first_part
    assert "message 20 " in view.toPlainText()  # the history is still there


def test_user_and_assistant_messages_look_different(qtbot: Any) -> None:
    view = make_view(qtbot)
    view.show_messages([msg(1, "user", "Hi"), msg(2, "assistant", "Hello", model_name="Llama")])
    user, reply = view.widgets[1], view.widgets[2]
    assert user.bubble.objectName() == "userBubble" and user.header is None
    assert reply.header is not None and reply.header.text() == "Llama"
    qtbot.waitUntil(lambda: user.bubble.width() < view.column.width() * 0.85, timeout=2000)
    qtbot.waitUntil(lambda: user.bubble.mapTo(user, QPoint(user.bubble.width(), 0)).x()
                    >= user.width() - 2, timeout=2000)  # on the right


def test_the_text_column_has_a_readable_width(qtbot: Any) -> None:
    view = make_view(qtbot, width=1800)
    view.show_messages([msg(1, "assistant", "word " * 400)])
    qtbot.waitUntil(lambda: view.column.width() > 100, timeout=2000)
    chars = view.column.width() / view.fontMetrics().averageCharWidth()
    assert 60 <= chars <= 95
    assert view.column.geometry().left() > 300  # centred in the wide window


def test_code_blocks_scroll_sideways_and_copy(qtbot: Any) -> None:
    view = make_view(qtbot, width=700)
    long_line = "x = " + " + ".join(str(i) for i in range(200))
    view.show_messages([msg(1, "assistant", f"See:\n\n```python\n{long_line}\nprint(1)\n```\n")])
    block = view.widgets[1].findChild(CodeBlock)
    assert block is not None and block.lang.text() == "python"
    qtbot.waitUntil(lambda: block.code.horizontalScrollBar().maximum() > 0, timeout=2000)
    assert view.horizontalScrollBar().maximum() == 0  # the chat itself never scrolls sideways
    assert block.width() <= view.viewport().width()
    block.copy_button.click()
    assert QGuiApplication.clipboard().text() == f"{long_line}\nprint(1)\n"
    assert block.copy_button.text() == "Copied" and block.copy_button.toolTip() == "Copied"
    qtbot.waitUntil(lambda: block.copy_button.text() == "Copy code", timeout=3000)
    assert view.code_blocks[1] == [f"{long_line}\nprint(1)\n"]


def test_icon_buttons_have_tooltips_names_and_confirm_a_copy(qtbot: Any) -> None:
    view = make_view(qtbot)
    view.show_messages([msg(1, "user", "q"), msg(2, "assistant", "answer text", sibling_count=2,
                                                 sibling_index=1)])
    reply = view.widgets[2]
    for button in reply.findChildren(QToolButton):
        assert button.toolTip() and button.accessibleName()
    reply.buttons["copy"].click()
    assert QGuiApplication.clipboard().text() == "answer text"
    assert reply.buttons["copy"].toolTip() == "Copied"
    assert "‹ 2/2 ›" in view.toPlainText()
    assert reply.prev_button.isEnabled() and not reply.next_button.isEnabled()
    with qtbot.waitSignal(view.action, timeout=1000) as blocker:
        reply.buttons["regen"].click()
    assert blocker.args == ["regen", 2, 0]
    with qtbot.waitSignal(view.action, timeout=1000) as blocker:
        reply.prev_button.click()
    assert blocker.args == ["prev", 2, 0]


def test_links_open_in_browser_only_when_clicked(qtbot: Any, monkeypatch: Any) -> None:
    opened: list[str] = []
    monkeypatch.setattr("app.ui.chat_view.QDesktopServices.openUrl",
                        lambda url: opened.append(url.toString()) or True)
    view = make_view(qtbot)
    view.show_messages([msg(1, "assistant", "[site](https://example.com) ![img](https://x.test/a.png)"
                            " and https://bare.example.org/page")])
    assert opened == []
    assert view.widgets[1].body.parts[0].toHtml().count('href="https://bare.example.org/page"') == 1
    view.anchorClicked.emit(QUrl("https://example.com"))
    assert opened == ["https://example.com"]
    view.anchorClicked.emit(QUrl("file:///etc/passwd"))
    assert opened == ["https://example.com"]


def test_a_link_no_browser_can_open_says_so(qtbot: Any, monkeypatch: Any) -> None:
    monkeypatch.setattr("app.ui.chat_view.QDesktopServices.openUrl", lambda url: False)
    view = make_view(qtbot)
    with qtbot.waitSignal(view.link_failed, timeout=1000) as blocker:
        view.anchorClicked.emit(QUrl("https://example.com/x"))
    assert blocker.args == ["https://example.com/x"]
    assert QGuiApplication.clipboard().text() == "https://example.com/x"


def test_resources_are_never_loaded(qtbot: Any) -> None:
    text = RichText()
    qtbot.add_widget(text)
    data = text.loadResource(int(QTextDocument.ResourceType.ImageResource),
                             QUrl("https://example.com/tracker.png"))
    assert data is not None and len(data) == 0


def test_raw_html_from_the_model_is_text(qtbot: Any) -> None:
    view = make_view(qtbot)
    view.show_messages([msg(1, "assistant", "<b>not bold</b><img src='https://x.test/i.png'>"),
                        msg(2, "user", "<i>mine</i>")])
    assert "<b>not bold</b>" in view.toPlainText() and "<i>mine</i>" in view.toPlainText()


def test_streamed_code_blocks_become_blocks_with_copy(qtbot: Any) -> None:
    view = make_view(qtbot)
    view.show_messages([msg(1, "user", "q")])
    view.begin_stream(msg(2, "assistant", "", state="partial"))
    text = "One:\n\n```python\nfirst()\n```\n\nTwo:\n\n```python\nsecond()\n```\n\nDone, and more"
    for line in text.splitlines(keepends=True):
        view.append_chunk(2, line)
        qtbot.wait(40)  # a render between chunks: the blocks arrive in separate pieces
    view.end_stream(msg(2, "assistant", text))
    assert view.code_blocks[2] == ["first()\n", "second()\n"]
    blocks = view.widgets[2].findChildren(CodeBlock)
    assert [b.segment.code for b in blocks] == ["first()\n", "second()\n"]
    blocks[1].copy_button.click()
    assert QGuiApplication.clipboard().text() == "second()\n"
    assert "Done, and more" in view.toPlainText()


def test_reading_progress_then_text(qtbot: Any) -> None:
    view = make_view(qtbot)
    view.show_messages([msg(1, "user", "q")])
    view.begin_stream(msg(2, "assistant", "", state="partial"))
    live = view.widgets[2]
    assert live.progress is not None and "Reading the conversation" in view.toPlainText()
    view.show_progress(2, 1200, 4000)
    assert "Reading the conversation: 1,200 / 4,000 tokens" in view.toPlainText()
    assert live.progress_bar.value() == 1200 and live.progress_bar.maximum() == 4000
    view.append_chunk(2, "Hello")
    qtbot.waitUntil(lambda: live.progress is None, timeout=2000)
    view.show_progress(2, 4000, 4000)  # late: the text has started
    assert live.progress is None and "Hello" in view.toPlainText()


def test_a_reply_cut_at_the_limit_says_so(qtbot: Any) -> None:
    view = make_view(qtbot)
    stats = {"finish_reason": "length", "max_tokens": 512, "generated_tokens": 512}
    view.show_messages([msg(1, "user", "q"), msg(2, "assistant", "long", stats=stats)])
    assert "stopped at the 512-token limit" in view.toPlainText()


def test_long_conversations_open_at_the_end_and_page_in_earlier_messages(qtbot: Any) -> None:
    view = make_view(qtbot, height=500)
    history = [msg(i, "user" if i % 2 else "assistant", f"message {i}\n\nmore " * 3)
               for i in range(1, 2 * PAGE + 11)]
    view.show_messages(history)
    assert len(view.widgets) == FIRST_PAGE and view.earlier.isVisible()
    bar = view.verticalScrollBar()
    qtbot.waitUntil(lambda: bar.maximum() > 0 and bar.value() == bar.maximum(), timeout=3000)
    anchor = view.widgets[history[-FIRST_PAGE].id]
    top_before = anchor.mapTo(view.widget(), anchor.rect().topLeft()).y()  # seen from the top
    bar.triggerAction(bar.SliderAction.SliderToMinimum)  # the reader scrolls to the top:
    # the previous page comes in above
    qtbot.waitUntil(lambda: len(view.widgets) == FIRST_PAGE + PAGE, timeout=3000)

    def top_now() -> int:
        return anchor.mapTo(view.widget(), anchor.rect().topLeft()).y() - bar.value()

    qtbot.waitUntil(lambda: bar.value() > 0 and abs(top_now() - top_before) < 40,
                    timeout=3000)  # the reader's place is kept
    qtbot.wait(100)
    assert abs(top_now() - top_before) < 40
    while view.earlier.isVisible():
        view.show_earlier()
    assert len(view.widgets) == len(history)


def test_a_search_hit_deep_in_the_history_is_built_and_shown(qtbot: Any) -> None:
    view = make_view(qtbot, height=400)
    history = [msg(i, "user" if i % 2 else "assistant", f"message {i} " * 20)
               for i in range(1, 3 * PAGE)]
    view.show_messages(history, around=5)
    assert 5 in view.widgets
    view.scroll_to_message(5)
    widget = view.widgets[5]
    qtbot.waitUntil(lambda: abs(widget.mapTo(view.widget(), widget.rect().topLeft()).y()
                                - view.verticalScrollBar().value()) < 40, timeout=3000)


def test_inline_edit_enter_resends_escape_cancels(qtbot: Any) -> None:
    view = make_view(qtbot)
    view.show_messages([msg(1, "user", "Original"), msg(2, "assistant", "a")])
    user: MessageWidget = view.widgets[1]
    user.buttons["edit"].click()
    assert user.editing and user.editor.toPlainText() == "Original"
    assert user.bubble.isHidden()
    qtbot.keyClick(user.editor, Qt.Key.Key_Escape)  # Esc cancels (not the window's Stop)
    assert not user.editing and not user.bubble.isHidden()
    assert view.start_edit(1)
    user.editor.setPlainText("Edited text")
    with qtbot.waitSignal(view.edit_requested, timeout=1000) as blocker:
        qtbot.keyClick(user.editor, Qt.Key.Key_Return)
    assert blocker.args == [1, "Edited text"]


def test_a_new_chat_shows_the_welcome(qtbot: Any) -> None:
    view = make_view(qtbot)
    view.show_messages([])
    assert view.welcome.isVisible()
    view.welcome.set_model("Starter · 4,096-token context · ready")
    text = view.toPlainText()
    assert "4,096-token context" in text and "Ctrl+N" in text
    assert len(view.welcome.examples) >= 3
    with qtbot.waitSignal(view.example_chosen, timeout=1000) as blocker:
        qtbot.mouseClick(view.welcome.examples[0], Qt.MouseButton.LeftButton)
    assert blocker.args[0] == view.welcome.examples[0].prompt
    view.append_message(msg(1, "user", "hi"))
    assert not view.welcome.isVisible()



def test_short_messages_fill_the_view_before_it_can_scroll(qtbot: Any) -> None:
    view = make_view(qtbot, height=1600)
    history = [msg(i, "user" if i % 2 else "assistant", "ok") for i in range(1, 3 * PAGE)]
    view.show_messages(history)  # the first page does not fill the view: more are built
    qtbot.waitUntil(lambda: view.verticalScrollBar().maximum() > 0
                    or len(view.widgets) == len(history), timeout=3000)
    assert len(view.widgets) > FIRST_PAGE


def test_a_button_s_tooltip_shows_on_keyboard_focus(qtbot: Any) -> None:
    from PySide6.QtWidgets import QToolTip

    view = make_view(qtbot)
    view.show_messages([msg(1, "user", "q"), msg(2, "assistant", "a")])
    button = view.widgets[2].buttons["regen"]
    qtbot.waitUntil(button.isVisible, timeout=2000)
    from PySide6.QtCore import QEvent
    from PySide6.QtGui import QFocusEvent
    from PySide6.QtWidgets import QApplication

    # what Tab delivers (the offscreen window is never active, so setFocus sends nothing)
    QApplication.sendEvent(button, QFocusEvent(QEvent.Type.FocusIn, Qt.FocusReason.TabFocusReason))
    qtbot.waitUntil(QToolTip.isVisible, timeout=2000)
    assert QToolTip.text() == button.toolTip()
    QToolTip.hideText()


def test_the_inline_editor_shows_every_wrapped_line_and_grows(qtbot: Any) -> None:
    view = make_view(qtbot, width=700)
    long = "A question that is long enough to wrap over several lines of the bubble. " * 4
    view.show_messages([msg(1, "user", long.strip())])
    view.start_edit(1)
    editor = view.widgets[1].editor
    qtbot.waitUntil(lambda: editor.document().size().height() >= 3, timeout=2000)
    qtbot.waitUntil(lambda: editor.verticalScrollBar().maximum() == 0, timeout=2000)
    height = editor.height()
    editor.moveCursor(editor.textCursor().MoveOperation.End)
    for _ in range(3):
        qtbot.keyClick(editor, Qt.Key.Key_Return, Qt.KeyboardModifier.ShiftModifier)
    qtbot.keyClicks(editor, "more")
    assert editor.height() > height  # grows as you type
    assert editor.verticalScrollBar().maximum() == 0  # no line hidden behind a scroll bar


def test_the_inline_editor_never_scrolls_sideways(qtbot: Any) -> None:
    view = make_view(qtbot, width=700)
    view.show_messages([msg(1, "user", "x" * 400 + " and " + "word " * 3000)])  # long as a page
    view.start_edit(1)
    editor = view.widgets[1].editor
    qtbot.waitUntil(lambda: editor.verticalScrollBar().isVisible(), timeout=2000)  # 12 lines
    qtbot.wait(50)  # laid out at that width
    assert not editor.horizontalScrollBar().isVisible()
    layout = editor.document().firstBlock().layout()
    widest = max(layout.lineAt(i).naturalTextWidth() for i in range(layout.lineCount()))
    assert widest <= editor.viewport().width()  # every line, the long word's too, is shown whole
