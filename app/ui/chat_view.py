"""The chat transcript: one QTextBrowser document, Markdown per message, append-only streaming."""

from __future__ import annotations

import html
from typing import Any

from PySide6.QtCore import QByteArray, QTimer, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QGuiApplication, QTextCursor
from PySide6.QtWidgets import QTextBrowser, QWidget

from app.store.models import STATE_LABELS as STORE_STATE_LABELS
from app.store.models import StoredMessage
from app.ui.markdown import ACTION_SCHEME, SAFE_LINK, render_markdown, render_plain, settled_length

RENDER_INTERVAL_MS = 33  # the streaming message is re-rendered at most ~30 times a second
LIVE_TAIL_MARKDOWN = 4000  # a longer unsettled tail streams as plain text until it settles
# The store's states, in the window's (shorter) words.
STATE_LABELS = {**STORE_STATE_LABELS, "partial": "writing…", "error": "failed"}


def footer_html(msg: StoredMessage) -> str:
    """Actions and stats under a message."""
    mid = msg.id
    links = [f'<a href="{ACTION_SCHEME}:copy/{mid}">Copy</a>']
    if msg.role == "assistant":
        links.append(f'<a href="{ACTION_SCHEME}:regen/{mid}">Regenerate</a>')
        links.append(f'<a href="{ACTION_SCHEME}:prompt/{mid}">Prompt</a>')
    else:
        links.append(f'<a href="{ACTION_SCHEME}:edit/{mid}">Edit</a>')
    if msg.sibling_count > 1:
        links.append(
            f'<a href="{ACTION_SCHEME}:prev/{mid}">‹</a> {msg.sibling_index + 1}/{msg.sibling_count}'
            f' <a href="{ACTION_SCHEME}:next/{mid}">›</a>'
        )
    parts: list[str] = []
    if msg.role == "assistant":
        stats = msg.stats or {}
        if msg.model_name:
            parts.append(html.escape(msg.model_name))
        if stats.get("tokens_per_s"):
            parts.append(f"{stats['tokens_per_s']:.1f} tok/s")
        if stats.get("ttft_s"):
            parts.append(f"first token {stats['ttft_s'] * 1000:.0f} ms")
        if "generated_tokens" in stats:
            parts.append(f"{stats['generated_tokens']:,} tokens")
    label = STATE_LABELS.get(msg.state)
    if label:
        parts.append(f'<b style="color:#c0392b;">{label}</b>')
    if msg.error:
        parts.append(f'<span style="color:#c0392b;">{html.escape(msg.error)}</span>')
    stats_html = " · ".join(parts)
    sep = " &nbsp;|&nbsp; " if stats_html else ""
    return (
        f'<p style="margin-top:2px;margin-bottom:14px;"><small><span style="color:gray;">'
        f'{stats_html}</span>{sep}{" · ".join(links)}</small></p>'
    )


def header_html(role: str, message_id: int = 0) -> str:
    who = "You" if role == "user" else "Assistant"
    color = "#2d6cdf" if role == "user" else "#16a085"
    return (f'<p style="margin-top:8px;margin-bottom:2px;"><a name="m{message_id}"></a>'
            f'<b style="color:{color};">{who}</b></p>')


def dropped_marker_html(count: int) -> str:
    noun = "message" if count == 1 else "messages"
    return (
        '<p style="margin-top:8px;margin-bottom:8px;" align="center"><small>'
        f'<span style="color:#b9770e;">⋯ {count} earlier {noun} no longer fit the model\'s '
        "context and are not part of its prompt ⋯</span></small></p>"
    )


class ChatView(QTextBrowser):
    """Renders a branch of messages; streams one reply at the end of the document."""

    action = Signal(str, int, int)  # kind, message id, argument (regen/edit/prompt/prev/next)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("chatView")
        self.setAccessibleName("Conversation")
        self.setOpenLinks(False)
        self.setOpenExternalLinks(False)
        self.setUndoRedoEnabled(False)
        self.anchorClicked.connect(self._on_anchor)
        self.dark = False
        self.messages: dict[int, StoredMessage] = {}
        self.code_blocks: dict[int, list[str]] = {}
        self._cache: dict[tuple[int, float, bool], tuple[str, list[str]]] = {}
        self._live_id: int | None = None
        self._live_text: list[str] = []
        self._live_settled = 0  # characters of the live text rendered for good
        self._tail_start = 0  # document position where the unsettled tail begins
        self._body_start = 0  # document position where the live message's body begins
        self._tail_plain = 0  # characters of the tail shown as plain text (a long paragraph)
        self._render_timer = QTimer(self)
        self._render_timer.setSingleShot(True)
        self._render_timer.setInterval(RENDER_INTERVAL_MS)
        self._render_timer.timeout.connect(self._render_live)
        self.render_count = 0

    # -- safety: nothing is ever fetched -------------------------------------------------------
    def loadResource(self, kind: int, name: QUrl | str) -> Any:
        return QByteArray()  # remote or local images and style sheets are never loaded

    def _on_anchor(self, url: QUrl) -> None:
        text = url.toString()
        if text.startswith(ACTION_SCHEME + ":"):
            parts = text.split(":", 1)[1].split("/")
            kind = parts[0]
            mid = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
            arg = int(parts[2]) if len(parts) > 2 and parts[2].isdigit() else 0
            if kind == "copy":
                self.copy_message(mid)
            elif kind == "code":
                blocks = self.code_blocks.get(mid, [])
                if arg < len(blocks):
                    QGuiApplication.clipboard().setText(blocks[arg])
            else:
                self.action.emit(kind, mid, arg)
        elif SAFE_LINK.match(text):
            QDesktopServices.openUrl(url)  # only when clicked, in the system browser

    def copy_message(self, message_id: int) -> None:
        msg = self.messages.get(message_id)
        if msg is not None:
            QGuiApplication.clipboard().setText(msg.content)

    # -- whole conversation --------------------------------------------------------------------
    def _message_html(self, msg: StoredMessage) -> str:
        return header_html(msg.role, msg.id) + self._body_html(msg)

    def _body_html(self, msg: StoredMessage) -> str:
        blocks: list[str]
        if msg.role == "user":
            body, blocks = render_plain(msg.content), []
        else:
            key = (msg.id, msg.updated_at, self.dark)
            cached = self._cache.get(key)
            if cached is None:
                rendered = render_markdown(msg.content, msg.id, self.dark)
                cached = (rendered.html, rendered.code_blocks)
                if len(self._cache) > 2000:
                    self._cache.clear()
                self._cache[key] = cached
            body, blocks = cached
        self.code_blocks[msg.id] = blocks
        return body + footer_html(msg)

    def show_messages(self, messages: list[StoredMessage], dropped: int = 0) -> None:
        """Render a branch (on opening a conversation or after edits, never per token)."""
        self._stop_live()
        self.messages = {m.id: m for m in messages}
        self.code_blocks = {}
        parts = []
        for index, msg in enumerate(messages):
            if dropped and index == dropped:
                parts.append(dropped_marker_html(dropped))
            parts.append(self._message_html(msg))
        self.setHtml("".join(parts))
        self.scroll_to_bottom()

    def scroll_to_bottom(self) -> None:
        bar = self.verticalScrollBar()
        bar.setValue(bar.maximum())

    def at_bottom(self) -> bool:
        bar = self.verticalScrollBar()
        return bar.value() >= bar.maximum() - 8

    def _end_cursor(self) -> QTextCursor:
        """A cursor at the end of the document, on a fresh block when there is text."""
        cursor = QTextCursor(self.document())
        cursor.movePosition(QTextCursor.MoveOperation.End)
        if not cursor.atStart():
            cursor.insertBlock()
        return cursor

    def append_message(self, msg: StoredMessage) -> None:
        """Add one finished message at the end (the user's, as soon as it is sent)."""
        follow = self.at_bottom()
        self.messages[msg.id] = msg
        self._end_cursor().insertHtml(self._message_html(msg))
        if follow:
            self.scroll_to_bottom()

    # -- streaming -----------------------------------------------------------------------------
    @property
    def live_id(self) -> int | None:
        return self._live_id

    def begin_stream(self, msg: StoredMessage) -> None:
        """Start the streaming message at the end of the document."""
        self._stop_live()
        follow = self.at_bottom()
        self.messages[msg.id] = msg
        cursor = self._end_cursor()
        cursor.insertHtml(header_html("assistant", msg.id))
        cursor.insertBlock()
        self._tail_start = self._body_start = cursor.position()
        self._live_id = msg.id
        self.code_blocks[msg.id] = []
        self._live_text = []
        self._live_settled = 0
        self._tail_plain = 0
        if follow:
            self.scroll_to_bottom()

    def append_chunk(self, message_id: int, text: str) -> None:
        """Queue streamed text; the document is updated on the render timer."""
        if message_id != self._live_id or not text:
            return
        self._live_text.append(text)
        if not self._render_timer.isActive():
            self._render_timer.start()

    def live_text(self) -> str:
        if len(self._live_text) > 1:
            self._live_text = ["".join(self._live_text)]
        return self._live_text[0] if self._live_text else ""

    def _render_live(self) -> None:
        """Render newly settled paragraphs once; redraw (or just extend) the unsettled tail."""
        if self._live_id is None:
            return
        self.render_count += 1
        follow = self.at_bottom()
        text = self.live_text()
        settled = settled_length(text)
        cursor = QTextCursor(self.document())
        if settled > self._live_settled:
            self._clear_tail(cursor)
            piece = text[self._live_settled:settled]
            blocks = self.code_blocks.setdefault(self._live_id, [])
            rendered = render_markdown(piece, self._live_id, self.dark, len(blocks))
            blocks.extend(rendered.code_blocks)
            cursor.insertHtml(rendered.html)
            cursor.insertBlock()
            self._live_settled = settled
            self._tail_start = cursor.position()
            self._tail_plain = 0
        tail = text[self._live_settled:]
        if len(tail) > LIVE_TAIL_MARKDOWN:
            if self._tail_plain:  # already plain text: append only what is new
                cursor.movePosition(QTextCursor.MoveOperation.End)
                cursor.insertText(tail[self._tail_plain:])
            else:
                self._clear_tail(cursor)
                cursor.insertText(tail)
            self._tail_plain = len(tail)
        elif tail:
            self._clear_tail(cursor)
            first = len(self.code_blocks.get(self._live_id, []))
            cursor.insertHtml(render_markdown(tail, self._live_id, self.dark, first).html)
            self._tail_plain = 0
        if follow:
            self.scroll_to_bottom()

    def _clear_tail(self, cursor: QTextCursor) -> None:
        cursor.setPosition(self._tail_start)
        cursor.movePosition(QTextCursor.MoveOperation.End, QTextCursor.MoveMode.KeepAnchor)
        cursor.removeSelectedText()

    def end_stream(self, msg: StoredMessage) -> None:
        """Render the rest of the finished reply and its footer.

        The paragraphs already rendered while streaming stay as they are when the stored reply
        starts with them (re-parsing a long reply at once would block the window); otherwise
        the whole reply is rendered again. Opening the conversation later renders it whole.
        """
        if self._live_id != msg.id:
            return
        self._render_timer.stop()
        follow = self.at_bottom()
        settled = self.live_text()[:self._live_settled]
        self.messages[msg.id] = msg
        cursor = QTextCursor(self.document())
        if settled and msg.role == "assistant" and msg.content.startswith(settled):
            cursor.setPosition(self._tail_start)
            blocks = self.code_blocks.setdefault(msg.id, [])
            rendered = render_markdown(msg.content[len(settled):], msg.id, self.dark, len(blocks))
            blocks.extend(rendered.code_blocks)
            body = rendered.html + footer_html(msg)
        else:
            cursor.setPosition(self._body_start)
            body = self._body_html(msg)
        cursor.movePosition(QTextCursor.MoveOperation.End, QTextCursor.MoveMode.KeepAnchor)
        cursor.removeSelectedText()
        cursor.insertHtml(body)
        self._live_id = None
        self._live_text = []
        if follow:
            self.scroll_to_bottom()

    def _stop_live(self) -> None:
        self._render_timer.stop()
        self._live_id = None
        self._live_text = []
