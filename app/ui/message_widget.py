"""One message in the chat: the user's as a bubble (edited in place), the assistant's as a block with
its model, reading progress, body, stats and action buttons."""

from __future__ import annotations

import html as html_lib
from typing import Any

from PySide6.QtCore import QEvent, QSize, Qt, QUrl, Signal
from PySide6.QtGui import QKeyEvent, QPixmap, QTextOption
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.chat.reply import limit_note
from app.store.models import STATE_LABELS as STORE_STATE_LABELS
from app.store.models import StoredMessage
from app.ui.markdown import render_plain
from app.ui.rich_text import MessageBody, confirm_copied, icon_button, muted_label
from app.ui.theme import set_style_property

# The store's states, in the window's (shorter) words.
STATE_LABELS = {**STORE_STATE_LABELS, "partial": "writing…", "error": "failed"}
AVATAR_PX = 24
EDIT_LINES = 12  # the in-place editor grows up to this many lines


def stats_text(msg: StoredMessage) -> str:
    """The muted line under a reply: tokens/s, first token, tokens, and how it ended."""
    parts: list[str] = []
    stats = msg.stats or {}
    if msg.role == "assistant":
        if stats.get("tokens_per_s"):
            parts.append(f"{stats['tokens_per_s']:.1f} tok/s")
        if stats.get("ttft_s"):
            parts.append(f"first token {stats['ttft_s'] * 1000:,.0f} ms")
        if "generated_tokens" in stats:
            parts.append(f"{stats['generated_tokens']:,} tokens")
        note = limit_note(stats) if msg.state == "complete" else ""
        if note:
            parts.append(note)
    return " · ".join(parts)


class EditBox(QPlainTextEdit):
    """The in-place editor of a user message: Enter resends, Shift+Enter adds a line, Esc cancels.

    As tall as its text, wrapped lines counted (EDIT_LINES at most, then it scrolls)."""

    submitted = Signal()
    cancelled = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._rewrapping = False  # fit() is re-wrapping the lines: its own signals are ignored
        # lines always wrap (a long word too): never a sideways scroll bar in a bubble's width
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setWordWrapMode(QTextOption.WrapMode.WrapAtWordBoundaryOrAnywhere)
        self.document().documentLayout().documentSizeChanged.connect(self.fit)

    def resizeEvent(self, event: Any) -> None:
        super().resizeEvent(event)
        self.fit()  # a new width wraps the text anew

    def fit(self, *_args: Any) -> None:
        if self._rewrapping:
            return
        doc = self.document()
        lines = max(2, min(EDIT_LINES, int(doc.size().height())))
        # past EDIT_LINES it scrolls: the bar stays, so the width the lines wrap to stays too
        wanted = Qt.ScrollBarPolicy.ScrollBarAlwaysOn if doc.size().height() > EDIT_LINES \
            else Qt.ScrollBarPolicy.ScrollBarAlwaysOff
        if self.verticalScrollBarPolicy() != wanted:
            self.setVerticalScrollBarPolicy(wanted)
            # the viewport got narrower or wider, the widget did not, and Qt keeps the lines
            # wrapped to the old width (their ends cut off): wrap them again
            self._rewrapping = True
            try:
                self.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
                self.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
            finally:
                self._rewrapping = False
        margins = self.contentsMargins()
        self.setFixedHeight(lines * self.fontMetrics().lineSpacing() + 2 * int(
            doc.documentMargin()) + 2 * self.frameWidth() + margins.top() + margins.bottom() + 2)

    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ShortcutOverride and isinstance(event, QKeyEvent) \
                and event.key() in (Qt.Key.Key_Escape, Qt.Key.Key_Return, Qt.Key.Key_Enter):
            event.accept()  # these keys are ours while editing, not the window's shortcuts
            return True
        return super().event(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Escape:
            self.cancelled.emit()
            return
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and not (
                event.modifiers() & Qt.KeyboardModifier.ShiftModifier):
            self.submitted.emit()
            return
        super().keyPressEvent(event)


class MessageWidget(QWidget):
    """One message; ``action`` asks the window for something (regen, prompt, prev, next);
    ``edit_submitted`` carries an in-place edit."""

    action = Signal(str, int, int)
    edit_submitted = Signal(int, str)
    link = Signal(QUrl)

    def __init__(self, msg: StoredMessage, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.msg = msg
        self.setObjectName(f"message-{msg.id}")
        self.setAccessibleName("Your message" if msg.role == "user" else "Reply")
        self.editing = False
        self.keep_actions = False  # the newest message shows its buttons without hovering
        self.progress: QFrame | None = None
        self.body = MessageBody(msg.id, self)
        self.body.link.connect(self.link)
        self._column = QVBoxLayout(self)
        self._column.setContentsMargins(0, 6, 0, 6)
        self._column.setSpacing(4)
        self.header: QLabel | None = None
        if msg.role == "user":
            self._build_user()
        else:
            self._build_assistant()
        self._build_footer()
        self.update_footer(msg)

    # -- layout --------------------------------------------------------------------------------
    def _build_user(self) -> None:
        self.bubble = QFrame(self)
        self.bubble.setObjectName("userBubble")
        inner = QVBoxLayout(self.bubble)
        inner.setContentsMargins(14, 9, 14, 9)
        inner.addWidget(self.body)
        self.body.set_segments([render_plain(self.msg.content)])
        self._row = QHBoxLayout()
        self._row.setContentsMargins(0, 0, 0, 0)
        self._row.addStretch(1)
        self._row.addWidget(self.bubble)
        self._column.addLayout(self._row)

    def _build_assistant(self) -> None:
        head = QHBoxLayout()
        head.setContentsMargins(0, 0, 0, 0)
        head.setSpacing(8)
        avatar = QLabel(self)
        avatar.setPixmap(_avatar())
        avatar.setFixedSize(AVATAR_PX, AVATAR_PX)
        self.header = QLabel(self.msg.model_name or "Assistant", self)
        self.header.setTextFormat(Qt.TextFormat.PlainText)
        self.header.setProperty("strong", True)
        head.addWidget(avatar)
        head.addWidget(self.header)
        head.addStretch(1)
        self._column.addLayout(head)
        self._column.addWidget(self.body)

    def _build_footer(self) -> None:
        bar = QHBoxLayout()
        bar.setContentsMargins(0, 0, 0, 0)
        bar.setSpacing(2)
        self.buttons: dict[str, QToolButton] = {}
        mid = self.msg.id
        specs = (("copy", "Copy message"), ("edit", "Edit and resend")) if self.msg.role == "user" \
            else (("copy", "Copy reply (Ctrl+Shift+C for the last one)"),
                  ("regenerate", "Regenerate: a new alternate answer"),
                  ("prompt", "Prompt inspector: what the model was sent"))
        for name, tip in specs:
            button = icon_button(name, tip, self)
            kind = {"regenerate": "regen"}.get(name, name)
            button.clicked.connect(lambda _c=False, k=kind: self._clicked(k))
            policy = button.sizePolicy()
            policy.setRetainSizeWhenHidden(True)
            button.setSizePolicy(policy)
            self.buttons[kind] = button
        self.prev_button = icon_button("prev", "Previous alternate", self, size=14)
        self.next_button = icon_button("next", "Next alternate", self, size=14)
        self.prev_button.clicked.connect(lambda: self.action.emit("prev", mid, 0))
        self.next_button.clicked.connect(lambda: self.action.emit("next", mid, 0))
        self.alternate = muted_label("", self)
        self.stats = muted_label("", self)
        self.stats.setWordWrap(True)
        self.error = QLabel(self)
        self.error.setTextFormat(Qt.TextFormat.PlainText)
        self.error.setWordWrap(True)
        self.error.setProperty("small", True)
        self.error.setProperty("danger", True)
        pager = [self.prev_button, self.alternate, self.next_button]
        if self.msg.role == "user":
            bar.addStretch(1)
            for widget in [*pager, *self.buttons.values()]:
                bar.addWidget(widget)
        else:
            for widget in [*self.buttons.values(), *pager]:
                bar.addWidget(widget)
            bar.addSpacing(6)
            bar.addWidget(self.stats, 1)
            bar.addStretch(0)  # keeps the buttons together while the stats line is hidden
        self._column.addLayout(bar)
        if self.msg.role == "user":
            self._column.addWidget(self.stats)
            self.stats.setAlignment(Qt.AlignmentFlag.AlignRight)
        self._column.addWidget(self.error)

    def update_footer(self, msg: StoredMessage) -> None:
        """Show ``msg``'s stats, state and alternates (after a reply ends or alternates change)."""
        self.msg = msg
        if self.header is not None and msg.model_name:
            self.header.setText(msg.model_name)
        many = msg.sibling_count > 1
        for widget in (self.prev_button, self.alternate, self.next_button):
            widget.setVisible(many)
        self.alternate.setText(f"{msg.sibling_index + 1}/{msg.sibling_count}")
        self.prev_button.setEnabled(msg.sibling_index > 0)
        self.next_button.setEnabled(msg.sibling_index + 1 < msg.sibling_count)
        stats = stats_text(msg)
        label = STATE_LABELS.get(msg.state, "")
        text = " · ".join(p for p in (stats, label) if p)
        self.stats.setText(text)
        self.stats.setVisible(bool(text))
        set_style_property(self.stats, "danger", msg.state in ("error", "interrupted"))
        self.error.setText(msg.error or "")
        self.error.setVisible(bool(msg.error))
        live = msg.state == "partial"
        for button in self.buttons.values():
            button.setEnabled(not live)
        self._show_actions(self.keep_actions or self.underMouse())

    # -- hover ---------------------------------------------------------------------------------
    def _show_actions(self, on: bool) -> None:
        for button in self.buttons.values():
            button.setVisible(on and not self.editing)

    def set_keep_actions(self, on: bool) -> None:
        self.keep_actions = on
        self._show_actions(on or self.underMouse())

    def enterEvent(self, event: Any) -> None:
        self._show_actions(True)
        super().enterEvent(event)

    def leaveEvent(self, event: Any) -> None:
        if not self.keep_actions and not any(b.hasFocus() for b in self.buttons.values()):
            self._show_actions(False)
        super().leaveEvent(event)

    def _clicked(self, kind: str) -> None:
        if kind == "copy":
            from PySide6.QtGui import QGuiApplication

            QGuiApplication.clipboard().setText(self.msg.content)
            confirm_copied(self.buttons["copy"])
        elif kind == "edit":
            self.start_edit()
        else:
            self.action.emit(kind, self.msg.id, 0)

    # -- reading progress ----------------------------------------------------------------------
    def show_progress(self, read: int, total: int) -> None:
        """"Reading the conversation: 1,200 / 4,000 tokens" with a bar, until text arrives."""
        if self.progress is None:
            self.progress = QFrame(self)
            self.progress.setObjectName("progressBlock")
            box = QVBoxLayout(self.progress)
            box.setContentsMargins(12, 8, 12, 10)
            self.progress_label = muted_label("Reading the conversation…", self.progress,
                                              small=False)
            self.progress_bar = QProgressBar(self.progress)
            self.progress_bar.setTextVisible(False)
            self.progress_bar.setAccessibleName("Prompt reading progress")
            box.addWidget(self.progress_label)
            box.addWidget(self.progress_bar)
            self._column.insertWidget(self._column.indexOf(self.body), self.progress)
            self.stats.hide()  # "writing…" would say too much while the prompt is still read
        if total > 0:
            self.progress_bar.setRange(0, total)
            self.progress_bar.setValue(min(read, total))
            word = "Reading the conversation" if read < total else "Read the conversation"
            self.progress_label.setText(f"{word}: {read:,} / {total:,} tokens"
                                        + ("" if read < total else " — writing…"))
        else:
            self.progress_bar.setRange(0, 0)  # busy until the engine says how much there is

    def hide_progress(self) -> None:
        if self.progress is not None:
            self.progress.deleteLater()
            self.progress = None
            self.stats.setVisible(bool(self.stats.text()))

    # -- editing in place ----------------------------------------------------------------------
    def start_edit(self) -> None:
        if self.msg.role != "user" or self.editing:
            return
        self.editing = True
        self.bubble.hide()
        self._show_actions(False)
        self.editor_frame = QFrame(self)
        self.editor_frame.setObjectName("composerBox")
        self.editor_frame.setProperty("focused", True)
        box = QVBoxLayout(self.editor_frame)
        box.setContentsMargins(10, 8, 10, 8)
        self.editor = EditBox(self.editor_frame)
        self.editor.setAccessibleName("Edit message")
        self.editor.setPlainText(self.msg.content)
        self.editor.setTabChangesFocus(True)
        self.editor.fit()
        hint = muted_label("Enter resends · Shift+Enter adds a line · Esc cancels",
                           self.editor_frame)
        cancel = QPushButton("Cancel", self.editor_frame)
        send = QPushButton("Send", self.editor_frame)
        send.setProperty("primary", True)
        cancel.clicked.connect(self.cancel_edit)
        send.clicked.connect(self._submit_edit)
        self.editor.submitted.connect(self._submit_edit)
        self.editor.cancelled.connect(self.cancel_edit)
        row = QHBoxLayout()
        row.addWidget(hint, 1)
        row.addWidget(cancel)
        row.addWidget(send)
        box.addWidget(self.editor)
        box.addLayout(row)
        self._row.addWidget(self.editor_frame, 1)
        self.editor.setFocus()
        self.editor.moveCursor(self.editor.textCursor().MoveOperation.End)

    def cancel_edit(self) -> None:
        if not self.editing:
            return
        self.editing = False
        self.editor_frame.deleteLater()
        self.bubble.show()
        self._show_actions(True)  # the keyboard comes back to Edit, so it must be shown
        self.buttons["edit"].setFocus(Qt.FocusReason.OtherFocusReason)

    def _submit_edit(self) -> None:
        text = self.editor.toPlainText().strip()
        if not text:
            return
        if text == self.msg.content.strip():
            self.cancel_edit()
            return
        self.edit_submitted.emit(self.msg.id, text)

    # -- geometry and text ---------------------------------------------------------------------
    def resizeEvent(self, event: Any) -> None:
        super().resizeEvent(event)
        if self.msg.role == "user":
            self._fit_bubble()

    def _fit_bubble(self) -> None:
        """A user bubble is as wide as its text, at most ~80% of the column."""
        fm = self.body.fontMetrics()
        lines = self.msg.content.splitlines() or [""]
        ideal = max(fm.horizontalAdvance(line) for line in lines[:200]) + 8
        most = max(120, int(self.width() * 0.8))
        self.bubble.setFixedWidth(min(most, ideal + 28))

    def text(self) -> str:
        """What the message shows, as plain text (tests, accessibility)."""
        lines = [self.header.text()] if self.header is not None else []
        if self.progress is not None:
            lines.append(self.progress_label.text())
        lines.append(self.body.text())
        footer = []
        if self.alternate.isVisibleTo(self) or self.msg.sibling_count > 1:
            footer.append(f"‹ {self.alternate.text()} ›")
        if self.stats.text():
            footer.append(self.stats.text())
        if self.error.text():
            footer.append(self.error.text())
        lines.append(" ".join(footer))
        return "\n".join(line for line in lines if line)


def _avatar() -> QPixmap:
    from app import paths

    px = QPixmap(str(paths.resources_dir() / "icons" / "llama-desk-48.png"))
    if px.isNull():
        return QPixmap(QSize(AVATAR_PX, AVATAR_PX))
    scaled = px.scaled(AVATAR_PX * 2, AVATAR_PX * 2, Qt.AspectRatioMode.KeepAspectRatio,
                       Qt.TransformationMode.SmoothTransformation)
    scaled.setDevicePixelRatio(2.0)
    return scaled


def cut_marker(count: int, parent: QWidget | None = None) -> QWidget:
    """"⋯ N earlier messages are not part of the prompt ⋯" where the model's prompt begins."""
    noun = "message no longer fits" if count == 1 else "messages no longer fit"
    label = QLabel(f"⋯ {count} earlier {noun} the model's context and are not part of its "
                   "prompt ⋯" if count != 1 else
                   f"⋯ 1 earlier {noun} the model's context and is not part of its prompt ⋯",
                   parent)
    label.setObjectName("cutMarker")
    label.setAlignment(Qt.AlignmentFlag.AlignCenter)
    label.setWordWrap(True)
    label.setProperty("small", True)
    label.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    label.setToolTip(html_lib.escape("The prompt sent to the model begins after this line; "
                                     "earlier messages stay here and in the history."))
    return label
