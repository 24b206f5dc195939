"""The sidebar's rows: roles, date groups, plain previews, and the delegate that draws them."""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QRect, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPen
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem, QWidget

from app.ui import icons
from app.ui.theme import colors

ID_ROLE = Qt.ItemDataRole.UserRole
MESSAGE_ROLE = Qt.ItemDataRole.UserRole + 1
PREVIEW_ROLE = Qt.ItemDataRole.UserRole + 2
HEADER_ROLE = Qt.ItemDataRole.UserRole + 3  # a date group's heading, not a conversation
PINNED_ROLE = Qt.ItemDataRole.UserRole + 4
WRITING_ROLE = Qt.ItemDataRole.UserRole + 6  # a reply is being written into this chat now
MATCHES_ROLE = Qt.ItemDataRole.UserRole + 5  # a search hit's snippet: [(text, is_match)]
PREVIEW_CHARS = 120  # a preview's length, as the store gives it
# The store wraps matched words in these (private-use characters: never drawn, never typed).
MATCH_START, MATCH_END = "\ue000", "\ue001"
_MARKED = re.compile(f"{MATCH_START}(.*?){MATCH_END}", re.DOTALL)


def snippet_spans(snippet: str) -> list[tuple[str, bool]]:
    """A store snippet (matches between MATCH_START and MATCH_END) as plain text spans, each
    flagged whether it is a match; whitespace runs become one space."""
    spans: list[tuple[str, bool]] = []
    text = " ".join(snippet.split())
    at = 0
    for found in _MARKED.finditer(text):
        if found.start() > at:
            spans.append((text[at:found.start()], False))
        if found.group(1):
            spans.append((found.group(1), True))
        at = found.end()
    rest = text[at:].replace(MATCH_START, "").replace(MATCH_END, "")
    if rest or not spans:
        spans.append((rest, False))
    return spans


MARKUP = re.compile(r"```\w*|[`*_#>|~]|\[[ xX]\]|(?:(?<=\s)|^)[-+](?=\s)")


LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)?")


def plain_preview(text: str) -> str:
    """A message's first words without Markdown marks ("**Yes** - [x] `a`" → "Yes a"; a
    link shows its text, also when the preview's cut falls inside its address)."""
    return " ".join(MARKUP.sub(" ", LINK.sub(r"\1", text)).split())


def date_group(when: float, now: float | None = None) -> str:
    """The sidebar heading a conversation last active at ``when`` goes under."""
    today = datetime.fromtimestamp(now if now is not None else time.time()).date()
    day = datetime.fromtimestamp(when).date()
    if day >= today:
        return "Today"
    if day == today - timedelta(days=1):
        return "Yesterday"
    if day > today - timedelta(days=7):
        return "Previous 7 days"
    if day > today - timedelta(days=30):
        return "Previous 30 days"
    if day.year == today.year:
        return day.strftime("%B")
    return str(day.year)


def draw_spans(painter: QPainter, line: QRect, font: QFont,
               spans: list[tuple[str, bool]]) -> None:
    """Draw ``spans`` left to right in ``line``, the matches in bold of ``font``; what does
    not fit ends in an ellipsis."""
    bold = QFont(font)
    bold.setWeight(QFont.Weight.Bold)
    x, right = line.left(), line.left() + line.width()
    align = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter
    for text, match in spans:
        face = bold if match else font
        fm = QFontMetrics(face)
        painter.setFont(face)
        width = fm.horizontalAdvance(text)
        if x + width > right:
            painter.drawText(QRect(x, line.top(), right - x, line.height()), align,
                             fm.elidedText(text, Qt.TextElideMode.ElideRight, right - x))
            return
        painter.drawText(QRect(x, line.top(), width, line.height()), align, text)
        x += width


class ConversationDelegate(QStyledItemDelegate):
    """Draws a heading as small muted text, a conversation as its title over a muted preview
    (a search hit's matched words bold), and a focus frame on the current row while the list
    has the keyboard focus."""

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
                 ) -> QSize:
        fm = QFontMetrics(option.font)
        if index.data(HEADER_ROLE):
            return QSize(10, fm.height() + 14)
        lines = 2 if index.data(PREVIEW_ROLE) else 1
        return QSize(10, fm.height() * lines + 14)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem,
              index: QModelIndex | QPersistentModelIndex) -> None:
        c = colors()
        rect: QRect = option.rect
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        font = QFont(option.font)
        if index.data(HEADER_ROLE):
            font.setPointSize(max(6, font.pointSize() - 2))
            font.setWeight(QFont.Weight.DemiBold)
            painter.setFont(font)
            painter.setPen(QColor(c.muted))
            painter.drawText(rect.adjusted(10, 6, -6, 0),
                             Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                             str(index.data(Qt.ItemDataRole.DisplayRole)))
            painter.restore()
            return
        state = option.state
        box = rect.adjusted(4, 1, -4, -1)
        if state & QStyle.StateFlag.State_Selected:
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QColor(c.selected))
            painter.drawRoundedRect(box, 8, 8)
        elif state & QStyle.StateFlag.State_MouseOver:
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QColor(c.hover))
            painter.drawRoundedRect(box, 8, 8)
        if state & QStyle.StateFlag.State_HasFocus:  # where the arrow keys are: keyboard users
            pen = QPen(QColor(c.accent))
            pen.setWidthF(1.5)
            painter.setPen(pen)
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRoundedRect(QRectF(box).adjusted(0.75, 0.75, -0.75, -0.75), 8, 8)
        fm = QFontMetrics(font)
        left = box.left() + 10
        right = box.right() - 8
        if index.data(PINNED_ROLE):
            px = icons.pixmap("pin", c.warning, 12)
            painter.drawPixmap(right - 12, box.top() + 6 + (fm.height() - 12) // 2, px)
            right -= 18
        if index.data(WRITING_ROLE):  # where the model's reply is going, seen from any chat
            small = QFont(font)
            small.setPointSize(max(6, font.pointSize() - 2))
            small.setItalic(True)
            word = "writing…"
            width = QFontMetrics(small).horizontalAdvance(word)
            painter.setFont(small)
            painter.setPen(QColor(c.accent))
            painter.drawText(QRect(right - width, box.top() + 6, width, fm.height()),
                             Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, word)
            right -= width + 6
        title = fm.elidedText(str(index.data(Qt.ItemDataRole.DisplayRole)),
                              Qt.TextElideMode.ElideRight, max(10, right - left))
        painter.setFont(font)
        painter.setPen(QColor(c.text))
        painter.drawText(QRect(left, box.top() + 6, right - left, fm.height()),
                         Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, title)
        preview = index.data(PREVIEW_ROLE)
        if preview:
            small = QFont(font)
            small.setPointSize(max(6, font.pointSize() - 1))
            painter.setPen(QColor(c.muted))
            line = QRect(left, box.top() + 6 + fm.height(), max(10, box.right() - 8 - left),
                         fm.height())
            spans = index.data(MATCHES_ROLE) or [(str(preview), False)]
            draw_spans(painter, line, small, spans)
        painter.restore()

    def updateEditorGeometry(self, editor: QWidget, option: QStyleOptionViewItem,
                             index: QModelIndex | QPersistentModelIndex) -> None:
        rect: QRect = option.rect
        height = QFontMetrics(option.font).height() + 10
        editor.setGeometry(rect.left() + 6, rect.top() + 2, rect.width() - 12, height)
