"""Copied text as a reader expects it: a table row per line (cells split by tabs), list numbers and
bullets kept, the inline-code padding dropped, line breaks as newlines."""

from __future__ import annotations

import re

from PySide6.QtGui import QTextBlock, QTextCursor, QTextDocument, QTextList, QTextListFormat, QTextTable
from PySide6.QtWidgets import QTextEdit

# U+200A pads inline code (markdown.py), U+FFFC stands for an object: neither is text.
_DROP = {ord("\u200a"): None, ord("\ufffc"): None, ord("\u00a0"): " ", ord("\u2028"): "\n"}
_BULLETS = (QTextListFormat.Style.ListDisc, QTextListFormat.Style.ListCircle,
            QTextListFormat.Style.ListSquare)
_FRAGMENT = re.compile(r"<!--StartFragment-->(.*)<!--EndFragment-->", re.DOTALL)


def document_text(doc: QTextDocument, start: int = 0, end: int | None = None) -> str:
    """The plain text of ``doc`` from ``start`` to ``end`` (the end of the document)."""
    last = doc.characterCount() - 1 if end is None else end
    lines: list[str] = []
    cell_key: tuple[int, int, int] | None = None
    block: QTextBlock = doc.findBlock(start)
    while block.isValid() and block.position() <= last:
        begin = max(start, block.position()) - block.position()
        stop = min(last, block.position() + block.length() - 1) - block.position()
        piece = block.text()[begin:max(begin, stop)]
        table: QTextTable | None = QTextCursor(block).currentTable()  # None outside tables
        if table is not None:
            cell = table.cellAt(block.position())
            key = (table.firstPosition(), cell.row(), cell.column())
            if cell_key is not None and key[:2] == cell_key[:2]:  # the same row
                lines[-1] += (" " if key == cell_key else "\t") + piece
            else:
                lines.append(piece)
            cell_key = key
        else:
            cell_key = None
            items: QTextList | None = block.textList()  # None outside lists
            marker = ""
            if items is not None and begin == 0:
                marker = "•" if items.format().style() in _BULLETS else items.itemText(block)
            lines.append(f"{marker} {piece}" if marker else piece)
        block = block.next()
    return "\n".join(line.rstrip() for line in "\n".join(lines).translate(_DROP).split("\n"))


def selected_text(edit: QTextEdit) -> str:
    cursor = edit.textCursor()
    return document_text(edit.document(), cursor.selectionStart(), cursor.selectionEnd())


def selected_html(edit: QTextEdit) -> str:
    """The selection as an HTML fragment (its formatting, for pasting into rich text)."""
    html = edit.textCursor().selection().toHtml()
    found = _FRAGMENT.search(html)
    return found.group(1) if found else html
