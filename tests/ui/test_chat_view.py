"""The chat view alone: append-only streaming, nothing fetched, links open only when clicked."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QUrl
from PySide6.QtGui import QGuiApplication, QTextDocument

from app.store.models import StoredMessage
from app.ui.chat_view import ChatView


def msg(mid: int, role: str, content: str, **kw: Any) -> StoredMessage:
    return StoredMessage(id=mid, conversation_id=1, parent_id=mid - 1 or None, role=role,
                         content=content, created_at=0.0, updated_at=0.0, **kw)


def test_streaming_appends_without_rerendering_the_conversation(qtbot: Any,
                                                                 monkeypatch: Any) -> None:
    view = ChatView()
    qtbot.add_widget(view)
    history = [msg(i, "user" if i % 2 else "assistant", f"message {i} " * 50) for i in range(1, 41)]
    view.show_messages(history)
    calls: list[str] = []
    monkeypatch.setattr(view, "setHtml", lambda html: calls.append(html))
    before = view.document().characterCount()
    live = msg(100, "assistant", "", state="partial")
    view.begin_stream(live)
    for i in range(200):
        view.append_chunk(100, f"word{i} ")
        if i % 50 == 49:
            view.append_chunk(100, "\n\n")
    qtbot.waitUntil(lambda: "word199" in view.toPlainText(), timeout=5000)
    assert calls == []  # never a whole-document rebuild while streaming
    assert 1 <= view.render_count < 50  # batched, not one render per chunk
    assert view.document().characterCount() > before
    assert "message 1 " in view.toPlainText()  # the history is still there
    final = msg(100, "assistant", view.live_text(), stats={"generated_tokens": 200})
    view.end_stream(final)
    assert "200 tokens" in view.toPlainText()
    assert view.live_id is None


def test_code_block_copy_and_message_copy(qtbot: Any) -> None:
    view = ChatView()
    qtbot.add_widget(view)
    view.show_messages([msg(1, "assistant", "See:\n\n```python\nprint(1)\n```\n")])
    view.anchorClicked.emit(QUrl("llamadesk:code/1/0"))
    assert QGuiApplication.clipboard().text() == "print(1)\n"
    view.anchorClicked.emit(QUrl("llamadesk:copy/1"))
    assert QGuiApplication.clipboard().text().startswith("See:")


def test_links_open_in_browser_only_when_clicked(qtbot: Any, monkeypatch: Any) -> None:
    opened: list[str] = []
    monkeypatch.setattr("app.ui.chat_view.QDesktopServices.openUrl",
                        lambda url: opened.append(url.toString()))
    view = ChatView()
    qtbot.add_widget(view)
    view.show_messages([msg(1, "assistant", "[site](https://example.com) ![img](https://x.test/a.png)")])
    assert opened == []
    view.anchorClicked.emit(QUrl("https://example.com"))
    assert opened == ["https://example.com"]
    view.anchorClicked.emit(QUrl("file:///etc/passwd"))
    assert opened == ["https://example.com"]


def test_resources_are_never_loaded(qtbot: Any) -> None:
    view = ChatView()
    qtbot.add_widget(view)
    data = view.loadResource(int(QTextDocument.ResourceType.ImageResource),
                             QUrl("https://example.com/tracker.png"))
    assert data is not None and len(data) == 0


def test_actions_are_emitted(qtbot: Any) -> None:
    view = ChatView()
    qtbot.add_widget(view)
    view.show_messages([msg(1, "user", "q"), msg(2, "assistant", "a", sibling_count=2)])
    assert "‹ 1/2 ›" in view.toPlainText()
    with qtbot.waitSignal(view.action, timeout=1000) as blocker:
        view.anchorClicked.emit(QUrl("llamadesk:regen/2"))
    assert blocker.args == ["regen", 2, 0]


def test_raw_html_from_the_model_is_text(qtbot: Any) -> None:
    view = ChatView()
    qtbot.add_widget(view)
    view.show_messages([msg(1, "assistant", "<b>not bold</b><img src='https://x.test/i.png'>")])
    assert "<b>not bold</b>" in view.toPlainText()


def test_streamed_code_blocks_keep_their_copy_links(qtbot: Any) -> None:
    view = ChatView()
    qtbot.add_widget(view)
    view.show_messages([msg(1, "user", "q")])
    live = msg(2, "assistant", "", state="partial")
    view.begin_stream(live)
    text = "One:\n\n```python\nfirst()\n```\n\nTwo:\n\n```python\nsecond()\n```\n\nDone, and more"
    for line in text.splitlines(keepends=True):
        view.append_chunk(2, line)
        qtbot.wait(40)  # a render between chunks: the blocks arrive in separate pieces
    view.end_stream(msg(2, "assistant", text))
    assert view.code_blocks[2] == ["first()\n", "second()\n"]
    assert "llamadesk:code/2/1" in view.toHtml()
    view.anchorClicked.emit(QUrl("llamadesk:code/2/1"))
    assert QGuiApplication.clipboard().text() == "second()\n"
    assert "Done, and more" in view.toPlainText()
