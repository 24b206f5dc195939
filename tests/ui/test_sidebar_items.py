"""The sidebar's rows: search snippets as marked spans, matches drawn bold, a visible focus frame."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QRect
from PySide6.QtGui import QColor, QImage, QPainter, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import QStyle, QStyleOptionViewItem

from app.ui.sidebar_items import (
    MATCH_END,
    MATCH_START,
    MATCHES_ROLE,
    PREVIEW_ROLE,
    ConversationDelegate,
    snippet_spans,
)


def test_a_snippet_becomes_plain_spans_with_the_matches_flagged() -> None:
    snippet = f"…a {MATCH_START}hash{MATCH_END}  table\nof {MATCH_START}hashes{MATCH_END}"
    assert snippet_spans(snippet) == [("…a ", False), ("hash", True), (" table of ", False),
                                      ("hashes", True)]
    assert snippet_spans("no match here") == [("no match here", False)]


def render(qapp: Any, *, matches: list[tuple[str, bool]] | None = None,
           state: QStyle.StateFlag = QStyle.StateFlag.State_Enabled) -> QImage:
    model = QStandardItemModel()
    item = QStandardItem("A title")
    item.setData("A hash table maps keys", PREVIEW_ROLE)
    if matches is not None:
        item.setData(matches, MATCHES_ROLE)
    model.appendRow(item)
    option = QStyleOptionViewItem()
    option.rect = QRect(0, 0, 260, 48)
    option.font = qapp.font()
    option.state = state
    image = QImage(260, 48, QImage.Format.Format_ARGB32)
    image.fill(QColor("white"))
    painter = QPainter(image)
    ConversationDelegate().paint(painter, option, model.index(0, 0))
    painter.end()
    return image


def test_matches_are_drawn_bold_and_without_marks(qapp: Any) -> None:
    plain = render(qapp, matches=[("A hash table maps keys", False)])
    assert plain == render(qapp)  # the same words, nothing marked: drawn as the preview is
    marked = render(qapp, matches=[("A ", False), ("hash", True), (" table maps keys", False)])
    assert marked != plain


def test_the_current_row_shows_a_focus_frame(qapp: Any) -> None:
    enabled = QStyle.StateFlag.State_Enabled
    for extra in (QStyle.StateFlag.State_Selected, QStyle.StateFlag.State_MouseOver):
        without = render(qapp, state=enabled | extra)
        assert render(qapp, state=enabled | extra | QStyle.StateFlag.State_HasFocus) != without
    assert render(qapp, state=enabled | QStyle.StateFlag.State_HasFocus) != render(qapp)
