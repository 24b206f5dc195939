"""Selecting across messages: a drag that leaves one message's text carries the selection over every
message it passes, Ctrl+A in a message selects the whole conversation shown, and Copy takes it all in
order (each message is its own text document, so Qt alone would stop at the first one's edge)."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QPoint
from PySide6.QtGui import QTextCursor, QTextDocument
from PySide6.QtWidgets import QScrollArea, QTextEdit, QWidget

from app.ui.copy_text import document_text, selected_html, selected_text
from app.ui.markdown import Segment

AUTO_SCROLL_PX = 24  # a drag past the view's top or bottom edge scrolls it this far per move


class SelectionSpan:
    """The selection of a chat's texts (``QTextEdit`` children of ``column`` inside ``view``)."""

    def __init__(self, view: QScrollArea, column: QWidget,
                 earlier: Callable[[], list[str]] | None = None) -> None:
        self.view = view
        self.column = column
        self.earlier = earlier  # the plain text of messages not built yet (a long chat's top)
        self._whole = False  # Ctrl+A: the whole conversation, built or not
        self._anchor: QTextEdit | None = None
        self._anchor_pos = 0
        self._texts: list[QTextEdit] = []  # in reading order, fixed for one drag

    def texts(self) -> list[QTextEdit]:
        """The shown texts, top to bottom."""
        shown = [t for t in self.column.findChildren(QTextEdit) if t.isVisibleTo(self.column)]
        return sorted(shown, key=lambda t: (t.mapTo(self.column, QPoint(0, 0)).y(),
                                            t.mapTo(self.column, QPoint(0, 0)).x()))

    def begin(self, text: QTextEdit) -> None:
        """A press in ``text``: its own selection starts there; every other one is cleared."""
        self._anchor = text
        self._whole = False
        self._anchor_pos = text.textCursor().anchor()
        self._texts = self.texts()
        for other in self._texts:
            if other is not text:
                _select(other, 0, 0)

    def extend(self, text: QTextEdit, global_pos: QPoint) -> None:
        """The drag begun in ``text`` is at ``global_pos``: select from the anchor to there."""
        if self._anchor is not text or text not in self._texts:
            return
        self._auto_scroll(global_pos)
        target, pos = self._hit(global_pos)
        start = self._texts.index(text)
        if target == start:
            for i, other in enumerate(self._texts):
                if i != start:
                    _select(other, 0, 0)
            return  # inside its own text, Qt's selection is the right one
        down = target > start
        for i, other in enumerate(self._texts):
            end = _length(other)
            if i == start:
                _select(other, self._anchor_pos, end if down else 0)
            elif min(start, target) < i < max(start, target):
                _select(other, 0, end)
            elif i == target:
                _select(other, 0 if down else end, pos)
            else:
                _select(other, 0, 0)

    def select_all(self) -> None:
        """Every message: those shown, and (for Copy) those of a long chat not built yet."""
        for text in self.texts():
            _select(text, 0, _length(text))
        self._whole = True

    def spans(self) -> bool:
        """Whether more than one text holds part of the selection."""
        return sum(1 for t in self.texts() if t.textCursor().hasSelection()) > 1

    def text(self) -> str:
        """Everything selected, in reading order, one blank line between messages' pieces."""
        texts = self.texts()
        pieces = [selected_text(t) for t in texts if t.textCursor().hasSelection()]
        whole = self._whole and all(
            t.textCursor().selectionStart() == 0 and t.textCursor().selectionEnd() == _length(t)
            for t in texts)  # still everything: nothing was clicked since Ctrl+A
        if whole and self.earlier is not None:
            pieces[0:0] = self.earlier()
        return "\n\n".join(p.lstrip("\n").rstrip() for p in pieces if p.strip())

    def html(self) -> str:
        """The selected pieces shown (not a long chat's unbuilt top) as one HTML fragment."""
        return "<br>".join(f"<div>{selected_html(t)}</div>" for t in self.texts()
                           if t.textCursor().hasSelection())

    def _hit(self, global_pos: QPoint) -> tuple[int, int]:
        """The text at ``global_pos`` (the nearest above it in a gap) and the position there."""
        y = self.column.mapFromGlobal(global_pos).y()
        index = 0
        for i, text in enumerate(self._texts):
            if text.mapTo(self.column, QPoint(0, 0)).y() <= y:
                index = i
        text = self._texts[index]
        top = text.mapTo(self.column, QPoint(0, 0)).y()
        if y < top:
            return index, 0
        if y > top + text.height():
            return index, _length(text)
        local = text.viewport().mapFromGlobal(global_pos)
        return index, text.cursorForPosition(local).position()

    def _auto_scroll(self, global_pos: QPoint) -> None:
        y = self.view.viewport().mapFromGlobal(global_pos).y()
        bar = self.view.verticalScrollBar()
        if y < 0:
            bar.setValue(bar.value() - AUTO_SCROLL_PX)
        elif y > self.view.viewport().height():
            bar.setValue(bar.value() + AUTO_SCROLL_PX)


def _length(text: QTextEdit) -> int:
    return max(0, text.document().characterCount() - 1)


def _select(text: QTextEdit, anchor: int, position: int) -> None:
    current = text.textCursor()
    if not current.hasSelection() and anchor == position:
        return
    if current.anchor() == anchor and current.position() == position:
        return
    cursor = QTextCursor(text.document())
    cursor.setPosition(min(anchor, _length(text)))
    cursor.setPosition(min(position, _length(text)), QTextCursor.MoveMode.KeepAnchor)
    sideways = text.horizontalScrollBar().value()
    text.setTextCursor(cursor)
    text.horizontalScrollBar().setValue(sideways)  # a code block passed over stays where it was


def plain_text(segments: list[Segment]) -> list[str]:
    """A message's pieces as plain text, as its texts would give them once built."""
    out = []
    for seg in segments:
        if isinstance(seg, str):
            doc = QTextDocument()
            doc.setHtml(seg)
            out.append(document_text(doc))
        else:
            out.append(seg.code)
    return out


def span_of(widget: QWidget) -> SelectionSpan | None:
    """The SelectionSpan of the chat ``widget`` is in (None outside a chat)."""
    parent = widget.parentWidget()
    while parent is not None:
        span = getattr(parent, "selection_span", None)
        if isinstance(span, SelectionSpan):
            return span
        parent = parent.parentWidget()
    return None
