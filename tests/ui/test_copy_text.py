"""Copied text: table rows per line, list markers kept, inline-code padding dropped."""

from __future__ import annotations

from typing import Any

from PySide6.QtGui import QGuiApplication, QTextDocument

from app.ui.copy_text import document_text
from app.ui.markdown import render_markdown, render_plain
from tests.ui.test_chat_view import make_view, msg

REPLY = """Use `strip()` and *care*:

| Fruit | Colour |
| --- | --- |
| Apple | red |
| Lime | green |

1. first
2. second

- a bullet
"""


def doc_of(html: str) -> QTextDocument:
    doc = QTextDocument()
    doc.setHtml(html)
    return doc


def test_a_reply_copies_as_a_reader_expects_it(qtbot: Any) -> None:
    text = document_text(doc_of(render_markdown(REPLY).html))
    assert text.splitlines() == ["Use strip() and care:", "Fruit\tColour", "Apple\tred",
                                 "Lime\tgreen", "", "1. first", "2. second", "• a bullet"]


def test_line_breaks_of_a_user_message_are_newlines(qtbot: Any) -> None:
    assert document_text(doc_of(render_plain("one\ntwo"))) == "one\ntwo"


def test_copy_offers_the_plain_text_and_the_formatting(qtbot: Any) -> None:
    view = make_view(qtbot)
    view.show_messages([msg(1, "assistant", REPLY)])
    prose = view.widgets[1].body.parts[0]
    prose.selectAll()
    prose.copy()
    data = QGuiApplication.clipboard().mimeData()
    assert data.text().splitlines()[1] == "Fruit\tColour"
    assert "<table" in data.html() and "Apple" in data.html()
