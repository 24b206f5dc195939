"""A message's pieces: self-sizing rich text, code blocks that scroll sideways, icon buttons."""

from __future__ import annotations

import math
from typing import Any

from PySide6.QtCore import QByteArray, QMimeData, QPoint, QSize, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import (
    QClipboard,
    QFocusEvent,
    QFont,
    QFontDatabase,
    QGuiApplication,
    QKeyEvent,
    QKeySequence,
    QMouseEvent,
    QTextCursor,
    QWheelEvent,
)
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QTextBrowser,
    QToolButton,
    QToolTip,
    QVBoxLayout,
    QWidget,
)

from app.ui import icons
from app.ui.copy_text import selected_html, selected_text
from app.ui.markdown import CodeSegment, Segment, document_css
from app.ui.selection import span_of
from app.ui.theme import colors

COPIED_MS = 1500  # how long "Copied" shows


class RichText(QTextBrowser):
    """A read-only text document as tall as its text: no scroll bars, wheel goes to the chat.

    Links are not followed here; ``link`` carries them to the chat view. Nothing is ever
    loaded (images, style sheets): ``loadResource`` returns nothing.
    """

    link = Signal(QUrl)

    def __init__(self, parent: QWidget | None = None, *, wrap: bool = True) -> None:
        super().__init__(parent)
        self.setOpenLinks(False)
        self.setOpenExternalLinks(False)
        self.setUndoRedoEnabled(False)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff if wrap
                                          else Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        if not wrap:
            self.setLineWrapMode(QTextBrowser.LineWrapMode.NoWrap)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.viewport().setAutoFillBackground(False)
        self.setObjectName("richText")  # transparent, no border (the app's style sheet)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)
        self.setFocusPolicy(Qt.FocusPolicy.ClickFocus)  # Tab goes to the buttons, not each text
        doc = self.document()
        doc.setDocumentMargin(0)
        doc.setDefaultStyleSheet(document_css(colors()))
        doc.documentLayout().documentSizeChanged.connect(self._fit)
        self.anchorClicked.connect(self.link)
        self.highlighted.connect(self._hovered)
        self._height = -1

    def _hovered(self, url: QUrl) -> None:
        """A link under the mouse: the chat says where it goes (an empty URL: it left)."""
        parent = self.parentWidget()
        while parent is not None and not hasattr(parent, "link_hovered"):
            parent = parent.parentWidget()
        if parent is not None:
            parent.link_hovered.emit(url.toString())

    def loadResource(self, kind: int, name: QUrl | str) -> Any:
        return QByteArray()  # remote or local images and style sheets are never loaded

    # -- a selection that goes on into the next messages (app/ui/selection.py) ----------------
    def mousePressEvent(self, event: QMouseEvent) -> None:
        super().mousePressEvent(event)
        span = span_of(self) if event.button() == Qt.MouseButton.LeftButton else None
        if span is not None:
            span.begin(self)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        super().mouseMoveEvent(event)
        span = span_of(self) if event.buttons() & Qt.MouseButton.LeftButton else None
        if span is not None:
            span.extend(self, event.globalPosition().toPoint())

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        super().mouseReleaseEvent(event)  # Qt puts this text's own part in the X11 selection
        span = span_of(self) if event.button() == Qt.MouseButton.LeftButton else None
        board = QGuiApplication.clipboard()
        if span is not None and board.supportsSelection() and span.spans():
            board.setText(span.text(), QClipboard.Mode.Selection)  # middle-click pastes it all

    def keyPressEvent(self, event: QKeyEvent) -> None:
        span = span_of(self)
        if span is not None and event.matches(QKeySequence.StandardKey.SelectAll):
            span.select_all()
            return
        if span is not None and event.matches(QKeySequence.StandardKey.Copy) and span.spans():
            QGuiApplication.clipboard().setMimeData(self.createMimeDataFromSelection())
            return
        super().keyPressEvent(event)

    def createMimeDataFromSelection(self) -> QMimeData:
        """What Copy (keys, menu) and a drag of the selection give: plain text as a reader
        expects it (app/ui/copy_text.py) and the formatted HTML, of one text or of several."""
        span = span_of(self)
        data = QMimeData()
        if span is not None and span.spans():
            data.setText(span.text())
            data.setHtml(span.html())
        else:
            data.setText(selected_text(self))
            data.setHtml(selected_html(self))
        return data

    def _fit(self, *_args: Any) -> None:
        height = math.ceil(self.document().size().height())
        bar = self.horizontalScrollBar()
        if self.lineWrapMode() == QTextBrowser.LineWrapMode.NoWrap and bar.maximum() > 0:
            height += bar.sizeHint().height()
        if height != self._height:
            self._height = height
            self.setFixedHeight(max(height, 1))

    def wheelEvent(self, event: QWheelEvent) -> None:
        delta = event.angleDelta()
        if abs(delta.x()) > abs(delta.y()) and self.horizontalScrollBar().maximum() > 0:
            super().wheelEvent(event)
        else:
            event.ignore()  # the chat scrolls, not this text

    def set_html(self, html: str) -> None:
        self.setHtml(html)

    def append_html(self, html: str) -> None:
        """Add ``html`` at the end (streaming: earlier text is not laid out again)."""
        cursor = QTextCursor(self.document())
        cursor.movePosition(QTextCursor.MoveOperation.End)
        if not cursor.atStart():
            cursor.insertBlock()
        cursor.insertHtml(html)

    def text(self) -> str:
        return self.toPlainText()


class CodeText(RichText):
    """A code block's text: lines never wrap; a sideways scroll bar comes when they are long."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, wrap=False)

    def resizeEvent(self, event: Any) -> None:  # only here: prose needs no Python per resize
        super().resizeEvent(event)
        self._fit()  # the sideways scroll bar comes and goes with the width


def mono_font() -> QFont:
    font = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
    app_size = QGuiApplication.font().pointSize()
    if app_size > 0:
        font.setPointSize(max(6, app_size - 1))
    return font


class IconButton(QToolButton):
    """A tool button that shows its tooltip when it gets keyboard focus, not only on hover.

    An override, not an event filter: a filter would hand every event of every button
    (paints, hovers) to Python; this is called for focus changes only.
    """

    def focusInEvent(self, event: QFocusEvent) -> None:
        super().focusInEvent(event)
        if event.reason() in (Qt.FocusReason.TabFocusReason,
                              Qt.FocusReason.BacktabFocusReason) and self.toolTip():
            QToolTip.showText(self.mapToGlobal(QPoint(0, self.height() + 2)), self.toolTip(),
                              self)


def icon_button(name: str, tip: str, parent: QWidget | None = None, *, size: int = 16,
                text: str = "") -> QToolButton:
    """A flat icon button with an accessible name and a tooltip (on hover and on focus)."""
    button = IconButton(parent)
    button.setIcon(icons.themed(name, size))
    button.setIconSize(QSize(size, size))
    button.setToolTip(tip)
    button.setAccessibleName(tip.split(" (")[0])
    button.setCursor(Qt.CursorShape.PointingHandCursor)
    button.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
    button.setProperty("icon_name", name)
    if text:
        button.setText(text)
        button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
    return button


def confirm_copied(button: QToolButton) -> None:
    """The button shows a check and says "Copied" for a moment."""
    name = str(button.property("icon_name") or "copy")
    size = button.iconSize().width()
    tip = button.toolTip()
    label = button.text()
    button.setIcon(icons.icon("check", colors().success, colors().success, size=size))
    if label:
        button.setText("Copied")
    button.setToolTip("Copied")
    QToolTip.showText(button.mapToGlobal(QPoint(0, button.height() + 2)), "Copied", button)

    def back() -> None:
        button.setIcon(icons.themed(name, size))
        button.setToolTip(tip)
        if label:
            button.setText(label)

    QTimer.singleShot(COPIED_MS, button, back)


def muted_label(text: str = "", parent: QWidget | None = None, *, small: bool = True) -> QLabel:
    label = QLabel(text, parent)
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setProperty("muted", True)
    label.setProperty("small", small)
    return label


class CodeBlock(QFrame):
    """A code block: its language and a Copy code button above the highlighted code, which
    scrolls sideways inside the block when its lines are long (never the whole chat)."""

    link = Signal(QUrl)

    def __init__(self, seg: CodeSegment, message_id: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("codeBlock")
        self.segment = seg
        self.message_id = message_id
        header = QWidget(self)
        header.setObjectName("codeHeader")
        row = QHBoxLayout(header)
        row.setContentsMargins(12, 3, 4, 3)
        self.lang = muted_label(seg.lang or "code", header)
        self.copy_button = icon_button("copy", "Copy code", header, size=14, text="Copy code")
        self.copy_button.setObjectName("copyCode")
        self.copy_button.clicked.connect(self.copy)
        row.addWidget(self.lang)
        row.addStretch(1)
        row.addWidget(self.copy_button)
        self.code = CodeText(self)
        self.code.setFont(mono_font())
        self.code.document().setDocumentMargin(10)
        self.code.set_html(f'<pre style="margin:0px;">{seg.spans}</pre>')
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(0)
        column.addWidget(header)
        column.addWidget(self.code)

    def copy(self) -> None:
        QGuiApplication.clipboard().setText(self.segment.code)
        confirm_copied(self.copy_button)

    def text(self) -> str:
        return f"{self.lang.text()} Copy code\n{self.segment.code}"


class MessageBody(QWidget):
    """A message's segments in order (prose documents, code blocks), plus a streaming tail."""

    link = Signal(QUrl)

    def __init__(self, message_id: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.message_id = message_id
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setSpacing(8)
        self.parts: list[RichText | CodeBlock] = []
        self.tail: RichText | None = None
        self._tail_open = False  # the last prose document still takes appended settled text

    def set_segments(self, segments: list[Segment]) -> None:
        for part in self.parts:
            part.deleteLater()
        self.parts = []
        self.clear_tail()
        self.append_segments(segments)

    def append_segments(self, segments: list[Segment]) -> None:
        """Add settled segments at the end (before the tail); prose joins the last document."""
        for seg in segments:
            last = self.parts[-1] if self.parts else None
            if isinstance(seg, str):
                if isinstance(last, RichText) and self._tail_open:
                    last.append_html(seg)
                    continue
                prose = RichText(self)
                prose.set_html(seg)
                part: RichText | CodeBlock = prose
                self._tail_open = True
            else:
                part = CodeBlock(seg, self.message_id, self)
                self._tail_open = False
            part.link.connect(self.link)
            self._layout.insertWidget(len(self.parts), part)
            self.parts.append(part)

    def _tail_widget(self) -> RichText:
        if self.tail is None:
            self.tail = RichText(self)
            self.tail.link.connect(self.link)
            self._layout.addWidget(self.tail)
        return self.tail

    def set_tail_html(self, html: str) -> None:
        self._tail_widget().set_html(html)

    def set_tail_text(self, text: str) -> None:
        self._tail_widget().setPlainText(text)

    def append_tail_text(self, text: str) -> None:
        tail = self._tail_widget()
        tail.moveCursor(tail.textCursor().MoveOperation.End)
        tail.insertPlainText(text)

    def clear_tail(self) -> None:
        if self.tail is not None:
            self.tail.deleteLater()
            self.tail = None

    def text(self) -> str:
        pieces = [p.text() for p in self.parts]
        if self.tail is not None:
            pieces.append(self.tail.text())
        return "\n".join(pieces)
