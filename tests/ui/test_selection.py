"""Selecting across messages: a drag over several, Ctrl+A, and Copy of all of it in order."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import (
    QClipboard,
    QGuiApplication,
    QKeyEvent,
    QKeySequence,
    QMouseEvent,
    QTextCursor,
)
from PySide6.QtWidgets import QApplication

from app.ui.rich_text import RichText
from tests.ui.test_chat_view import make_view, msg

LEFT = Qt.MouseButton.LeftButton


def texts_of(view: Any, mid: int) -> list[RichText]:
    return [t for t in view.selection_span.texts() if view.widgets[mid].isAncestorOf(t)]


def at(text: RichText, position: int) -> QPoint:
    """The global point of character ``position`` in ``text``."""
    cursor = QTextCursor(text.document())
    cursor.setPosition(position)
    return text.viewport().mapToGlobal(text.cursorRect(cursor).center())


def press(text: RichText, point: QPoint) -> None:
    local = QPointF(text.viewport().mapFromGlobal(point))
    QApplication.sendEvent(text.viewport(), QMouseEvent(
        QEvent.Type.MouseButtonPress, local, QPointF(point), LEFT, LEFT,
        Qt.KeyboardModifier.NoModifier))


def drag_to(text: RichText, point: QPoint) -> None:
    """A move with the button held, delivered where Qt sends it: to the text pressed first."""
    local = QPointF(text.viewport().mapFromGlobal(point))
    QApplication.sendEvent(text.viewport(), QMouseEvent(
        QEvent.Type.MouseMove, local, QPointF(point), Qt.MouseButton.NoButton, LEFT,
        Qt.KeyboardModifier.NoModifier))


def release(text: RichText, point: QPoint) -> None:
    local = QPointF(text.viewport().mapFromGlobal(point))
    QApplication.sendEvent(text.viewport(), QMouseEvent(
        QEvent.Type.MouseButtonRelease, local, QPointF(point), LEFT, Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier))


def key(text: RichText, sequence: QKeySequence.StandardKey) -> None:
    combo = QKeySequence(sequence)[0]
    QApplication.sendEvent(text, QKeyEvent(QEvent.Type.KeyPress, combo.key(),
                                           combo.keyboardModifiers()))


def conversation(qtbot: Any) -> tuple[Any, RichText, RichText, RichText]:
    """A chat of three messages, and each one's text."""
    view = make_view(qtbot, width=900, height=900)
    view.show_messages([msg(1, "user", "alpha beta gamma"),
                        msg(2, "assistant", "one two three\n\nfour five"),
                        msg(3, "user", "delta epsilon zeta")])
    qtbot.waitUntil(lambda: view.widgets[3].body.parts[0].height() > 5, timeout=2000)
    (first,), (second,), (third,) = (texts_of(view, mid) for mid in (1, 2, 3))
    return view, first, second, third


def test_a_drag_selects_across_messages_and_copy_takes_it_all_in_order(qtbot: Any) -> None:
    view, first, second, third = conversation(qtbot)
    press(first, at(first, 6))  # before "beta"
    drag_to(first, at(third, 5))  # just after "delta"
    release(first, at(third, 5))
    assert first.textCursor().selectedText() == "beta gamma"
    assert second.textCursor().selection().toPlainText().rstrip() == "one two three\nfour five"
    assert third.textCursor().selectedText() == "delta"
    assert view.selection_span.spans()
    expected = "beta gamma\n\none two three\nfour five\n\ndelta"
    key(first, QKeySequence.StandardKey.Copy)
    assert QGuiApplication.clipboard().text() == expected
    QGuiApplication.clipboard().clear()
    first.copy()  # the context menu's Copy
    assert QGuiApplication.clipboard().text() == expected


def test_dragging_back_into_the_first_message_drops_the_others(qtbot: Any) -> None:
    view, first, second, _third = conversation(qtbot)
    press(first, at(first, 6))
    drag_to(first, at(second, 3))
    assert second.textCursor().selectedText() == "one"
    drag_to(first, at(first, 10))
    assert not second.textCursor().hasSelection()
    assert first.textCursor().selectedText() == "beta"
    assert not view.selection_span.spans()
    key(first, QKeySequence.StandardKey.Copy)
    assert QGuiApplication.clipboard().text() == "beta"  # Qt's own copy of one message


def test_an_upward_drag_and_a_new_click_elsewhere(qtbot: Any) -> None:
    view, first, second, third = conversation(qtbot)
    press(third, at(third, 5))  # after "delta"
    drag_to(third, at(first, 11))  # before "gamma"
    assert first.textCursor().selectedText() == "gamma"
    assert second.textCursor().hasSelection()
    assert third.textCursor().selectedText() == "delta"
    key(third, QKeySequence.StandardKey.Copy)
    assert QGuiApplication.clipboard().text() == "gamma\n\none two three\nfour five\n\ndelta"
    press(second, at(second, 2))  # a click in another message starts afresh
    release(second, at(second, 2))
    assert not first.textCursor().hasSelection() and not third.textCursor().hasSelection()
    assert not view.selection_span.spans()


def test_select_all_in_a_message_selects_the_conversation_code_included(qtbot: Any) -> None:
    view = make_view(qtbot, width=900, height=900)
    view.show_messages([msg(1, "user", "Show code"),
                        msg(2, "assistant", "Here:\n\n```python\nprint(1)\n```\n\nDone.")])
    first, = texts_of(view, 1)
    key(first, QKeySequence.StandardKey.SelectAll)
    assert view.selection_span.spans()
    key(first, QKeySequence.StandardKey.Copy)
    assert QGuiApplication.clipboard().text() == "Show code\n\nHere:\n\nprint(1)\n\nDone."


def test_a_drag_past_the_bottom_edge_scrolls_the_chat(qtbot: Any) -> None:
    view = make_view(qtbot, width=700, height=300)
    view.show_messages([msg(i, "user" if i % 2 else "assistant", f"message {i} " * 30)
                        for i in range(1, 9)])
    qtbot.waitUntil(lambda: view.verticalScrollBar().maximum() > 200, timeout=2000)
    view.verticalScrollBar().setValue(0)
    first = view.selection_span.texts()[0]
    press(first, at(first, 3))
    below = view.viewport().mapToGlobal(QPoint(50, view.viewport().height() + 30))
    for _ in range(3):
        drag_to(first, below)
    assert view.verticalScrollBar().value() > 0
    assert view.selection_span.spans()


def test_on_x11_the_primary_selection_gets_all_of_it(qtbot: Any, monkeypatch: Any) -> None:
    """Middle-click paste: the whole selection goes to the X11 selection on release (the
    offscreen platform has none, so the clipboard's calls are recorded)."""
    _view, first, _second, third = conversation(qtbot)
    board = QGuiApplication.clipboard()
    calls: list[tuple[str, Any]] = []
    monkeypatch.setattr(board, "supportsSelection", lambda: True)
    monkeypatch.setattr(board, "setText", lambda text, mode=None: calls.append((text, mode)))
    press(first, at(first, 6))
    drag_to(first, at(third, 5))
    release(first, at(third, 5))
    assert calls[-1] == ("beta gamma\n\none two three\nfour five\n\ndelta",
                         QClipboard.Mode.Selection)


def test_select_all_copies_a_long_chat_s_messages_not_built_yet(qtbot: Any) -> None:
    view = make_view(qtbot, width=900, height=600)
    history = [msg(i, "user" if i % 2 else "assistant",
                   f"question {i}" if i % 2 else f"answer {i}\n\n```\ncode {i}\n```")
               for i in range(1, 41)]
    view.show_messages(history)
    assert 1 not in view.widgets  # only the newest page is built
    last = view.selection_span.texts()[-1]
    key(last, QKeySequence.StandardKey.SelectAll)
    key(last, QKeySequence.StandardKey.Copy)
    copied = QGuiApplication.clipboard().text()
    expected = [f"question {i}" if i % 2 else f"answer {i}\n\ncode {i}" for i in range(1, 41)]
    assert copied == "\n\n".join(expected)
    assert 1 not in view.widgets  # and nothing was built for it
    press(last, at(last, 2))  # a click ends "everything": back to what is selected on screen
    release(last, at(last, 2))
    assert view.selection_span.text() == "" and not view.selection_span.spans()
    key(last, QKeySequence.StandardKey.SelectAll)  # and again
    assert view.selection_span.text() == "\n\n".join(expected)


def test_a_code_block_passed_over_does_not_scroll_sideways(qtbot: Any) -> None:
    view = make_view(qtbot, width=700, height=900)
    wide = "x = " + " + ".join(str(i) for i in range(150))
    view.show_messages([msg(1, "user", "alpha beta"),
                        msg(2, "assistant", f"Code:\n\n```python\n{wide}\n```\n\nDone."),
                        msg(3, "user", "delta epsilon")])
    texts = view.selection_span.texts()
    code = next(t for t in texts if t.lineWrapMode() == RichText.LineWrapMode.NoWrap)
    qtbot.waitUntil(lambda: code.horizontalScrollBar().maximum() > 0, timeout=2000)
    first, third = texts[0], texts[-1]
    press(first, at(first, 2))
    drag_to(first, at(third, 3))
    assert code.textCursor().hasSelection()
    assert code.horizontalScrollBar().value() == 0
    assert wide in view.selection_span.text()


def test_ctrl_a_and_copy_with_the_chat_itself_focused(qtbot: Any) -> None:
    view, *_texts = conversation(qtbot)
    view.setFocus()  # a click between messages
    QApplication.sendEvent(view, QKeyEvent(QEvent.Type.KeyPress, Qt.Key.Key_A,
                                           Qt.KeyboardModifier.ControlModifier))
    QApplication.sendEvent(view, QKeyEvent(QEvent.Type.KeyPress, Qt.Key.Key_C,
                                           Qt.KeyboardModifier.ControlModifier))
    assert QGuiApplication.clipboard().text() == ("alpha beta gamma\n\none two three\nfour five"
                                                  "\n\ndelta epsilon zeta")
