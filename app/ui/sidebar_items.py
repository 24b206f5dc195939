"""The sidebar's rows: item roles, date groups, previews without Markdown, and the delegate that
draws a heading or a conversation's title over its preview."""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QRect, QSize, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem, QWidget

from app.ui import icons
from app.ui.theme import colors

ID_ROLE = Qt.ItemDataRole.UserRole
MESSAGE_ROLE = Qt.ItemDataRole.UserRole + 1
PREVIEW_ROLE = Qt.ItemDataRole.UserRole + 2
HEADER_ROLE = Qt.ItemDataRole.UserRole + 3  # a date group's heading, not a conversation
PINNED_ROLE = Qt.ItemDataRole.UserRole + 4
PREVIEW_CHARS = 120  # a preview's length, as the store gives it


def snippet_text(snippet: str) -> str:
    """A store snippet ('[word]' marks matches) as plain text with the marks kept visible."""
    return " ".join(snippet.split())


MARKUP = re.compile(r"```\w*|[`*_#>|~]|\[[ xX]\]|(?:(?<=\s)|^)[-+](?=\s)")


def plain_preview(text: str) -> str:
    """A message's first words without Markdown marks ("**Yes** - [x] `a`" → "Yes a")."""
    return " ".join(MARKUP.sub(" ", text).split())


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


class ConversationDelegate(QStyledItemDelegate):
    """Draws a heading as small muted text, a conversation as its title over a muted preview."""

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
        fm = QFontMetrics(font)
        left = box.left() + 10
        right = box.right() - 8
        if index.data(PINNED_ROLE):
            px = icons.pixmap("pin", c.warning, 12)
            painter.drawPixmap(right - 12, box.top() + 6 + (fm.height() - 12) // 2, px)
            right -= 18
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
            sfm = QFontMetrics(small)
            painter.setFont(small)
            painter.setPen(QColor(c.muted))
            text = sfm.elidedText(str(preview), Qt.TextElideMode.ElideRight,
                                  max(10, box.right() - 8 - left))
            painter.drawText(QRect(left, box.top() + 6 + fm.height(), box.right() - left,
                                   fm.height()),
                             Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, text)
        painter.restore()

    def updateEditorGeometry(self, editor: QWidget, option: QStyleOptionViewItem,
                             index: QModelIndex | QPersistentModelIndex) -> None:
        rect: QRect = option.rect
        height = QFontMetrics(option.font).height() + 10
        editor.setGeometry(rect.left() + 6, rect.top() + 2, rect.width() - 12, height)
