"""The chat view's streaming reply: reading progress, settled paragraphs appended once, the
tail redrawn at most ~30 times a second, long Markdown parsed off the UI thread."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import shiboken6
from PySide6.QtCore import QTimer

from app.store.models import StoredMessage
from app.ui.markdown import Segment, render_markdown, render_segments, settled_length
from app.ui.tasks import run_in_background

if TYPE_CHECKING:
    from app.ui.message_widget import MessageWidget

RENDER_INTERVAL_MS = 33  # the streaming message is re-rendered at most ~30 times a second
LIVE_TAIL_MARKDOWN = 4000  # a longer unsettled tail streams as plain text until it settles
ASYNC_RENDER_CHARS = 3000  # longer Markdown is parsed off the UI thread


class Streaming:
    """Mixed into ChatView (which builds ``widgets``, ``branch`` and the rest)."""

    widgets: dict[int, MessageWidget]
    branch: list[StoredMessage]
    messages: dict[int, StoredMessage]
    code_blocks: dict[int, list[str]]
    dark: bool

    if TYPE_CHECKING:  # defined by ChatView
        def append_message(self, msg: StoredMessage) -> None: ...

        def _segments(self, msg: StoredMessage) -> list[Segment]: ...

    def _init_streaming(self) -> None:
        self._live_id: int | None = None
        self._live_text: list[str] = []
        self._live_settled = 0  # characters of the live text rendered for good
        self._tail_plain = 0  # characters of the tail shown as plain text (a long paragraph)
        self._settling = False  # a settled piece is being parsed off the UI thread
        self._finishing_id: int | None = None  # a finished reply whose rest is parsed so
        self.pending_renders = 0  # pieces being parsed off the UI thread now
        self._render_timer = QTimer(self)  # type: ignore[arg-type]
        self._render_timer.setSingleShot(True)
        self._render_timer.setInterval(RENDER_INTERVAL_MS)
        self._render_timer.timeout.connect(self._render_live)
        self.render_count = 0

    @property
    def live_id(self) -> int | None:
        return self._live_id

    def begin_stream(self, msg: StoredMessage) -> None:
        """Start the streaming reply at the end: it shows reading progress until text comes."""
        self._stop_live()
        self.append_message(msg)
        self.widgets[msg.id].show_progress(0, 0)
        self._live_id = msg.id
        self.code_blocks[msg.id] = []
        self._live_text = []
        self._live_settled = 0
        self._tail_plain = 0

    def show_progress(self, message_id: int, read: int, total: int) -> None:
        """Reading progress of the streaming reply (ignored once its text has started)."""
        widget = self.widgets.get(message_id)
        if message_id == self._live_id and widget is not None and not self._live_text:
            widget.show_progress(read, total)

    def append_chunk(self, message_id: int, text: str) -> None:
        """Queue streamed text; the widget is updated on the render timer."""
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
        widget = self.widgets.get(self._live_id) if self._live_id is not None else None
        if widget is None or self._live_id is None:
            return
        self.render_count += 1
        widget.hide_progress()
        body = widget.body
        text = self.live_text()
        settled = settled_length(text)
        if settled > self._live_settled and not self._settling:
            piece = text[self._live_settled:settled]
            first = len(self.code_blocks.setdefault(self._live_id, []))
            if len(piece) > ASYNC_RENDER_CHARS:
                def settle_later(segments: list[Segment], end: int = settled) -> None:
                    self._settle(end, segments)

                self._render_aside(piece, first, settle_later)
            else:
                self._settle(settled, render_segments(piece, self._live_id, self.dark, first),
                             counted=True)
                return
        tail = text[self._live_settled:]
        if len(tail) > LIVE_TAIL_MARKDOWN:
            if self._tail_plain:  # already plain text: append only what is new
                body.append_tail_text(tail[self._tail_plain:])
            else:
                body.set_tail_text(tail)
            self._tail_plain = len(tail)
        elif tail:
            first = len(self.code_blocks.get(self._live_id, []))
            body.set_tail_html(render_markdown(tail, self._live_id, self.dark, first).html)
            self._tail_plain = 0

    def _settle(self, settled: int, segments: list[Segment], counted: bool = False) -> None:
        """Settled text rendered: it joins the reply for good; the tail is redrawn after it."""
        widget = self.widgets.get(self._live_id) if self._live_id is not None else None
        if widget is None or self._live_id is None:
            return
        blocks = self.code_blocks.setdefault(self._live_id, [])
        blocks.extend(s.code for s in segments if not isinstance(s, str))
        widget.body.clear_tail()
        widget.body.append_segments(segments)
        self._live_settled = settled
        self._tail_plain = 0
        if counted:
            self.render_count -= 1  # the tail's redraw below is part of the render that called
        self._render_live()

    def _render_aside(self, text: str, first: int, done: Callable[[list[Segment]], None]) -> None:
        """Parse a long piece of Markdown off the UI thread (pure Python, so the GIL is shared
        in short slices and the window keeps running); ``done`` runs here with the segments
        if the reply is still the one streaming (or finishing) then."""
        mid, dark = self._live_id or self._finishing_id, self.dark
        self._settling = True
        self.pending_renders += 1

        def apply(segments: list[Segment]) -> None:
            if not shiboken6.isValid(self):
                return
            self.pending_renders -= 1
            self._settling = False
            if mid in (self._live_id, self._finishing_id):
                done(segments)

        def failed(message: str) -> None:
            if shiboken6.isValid(self):
                self.pending_renders -= 1
                self._settling = False

        run_in_background(lambda: render_segments(text, mid or 0, dark, first), apply, failed)

    def end_stream(self, msg: StoredMessage) -> None:
        """Render the rest of the finished reply and its footer.

        The paragraphs already rendered while streaming stay as they are when the stored reply
        starts with them (re-parsing a long reply at once would block the window); otherwise
        the whole reply is rendered again. A long rest is parsed off the UI thread (the text
        shows meanwhile as it streamed). Opening the conversation later renders it whole.
        """
        widget = self.widgets.get(msg.id)
        if self._live_id != msg.id or widget is None:
            return
        self._render_timer.stop()
        settled = self.live_text()[:self._live_settled]
        self.messages[msg.id] = msg
        self.branch = [msg if m.id == msg.id else m for m in self.branch]
        widget.hide_progress()
        widget.update_footer(msg)
        self._live_id = None
        self._live_text = []
        body = widget.body
        if settled and msg.content.startswith(settled):
            rest = msg.content[len(settled):]
            first = len(self.code_blocks.setdefault(msg.id, []))

            def finish(segments: list[Segment]) -> None:
                self.code_blocks.setdefault(msg.id, []).extend(
                    s.code for s in segments if not isinstance(s, str))
                body.clear_tail()
                body.append_segments(segments)
                self._finishing_id = None

            if len(rest) > ASYNC_RENDER_CHARS:
                self._finishing_id = msg.id
                self._render_aside(rest, first, finish)
            else:
                finish(render_segments(rest, msg.id, self.dark, first))
        else:
            segments = self._segments(msg)
            self.code_blocks[msg.id] = [s.code for s in segments if not isinstance(s, str)]
            body.set_segments(segments)

    def _stop_live(self) -> None:
        self._render_timer.stop()
        self._live_id = None
        self._finishing_id = None
        self._live_text = []
        self._settling = False
