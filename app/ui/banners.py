"""Inline banners: errors with the action to take, the Undo bar, and invitations."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import (
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.ui.rich_text import icon_button

MAX_LINES_BESIDE = 3  # text beside the buttons taller than this: the buttons go under it


class Banner(QFrame):
    """One message with optional action buttons and a close button.

    Its colours come from the app's style sheet (theme.banner_rules, by object name), so a
    theme change recolours live banners. When the text beside the buttons would wrap to more
    than MAX_LINES_BESIDE lines (a narrow window), the buttons move under the text.
    """

    closed = Signal()

    def __init__(self, text: str, kind: str = "error", key: str = "",
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.key = key
        self.kind = kind
        self.setObjectName(f"banner-{kind}")
        self.setStyleSheet("QPushButton { padding: 3px 10px; }")  # no colours: see theme.py
        self.label = QLabel(text, self)
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.label.setTextFormat(Qt.TextFormat.PlainText)
        self.buttons = QWidget(self)
        self._buttons_row = QHBoxLayout(self.buttons)
        self._buttons_row.setContentsMargins(0, 0, 0, 0)
        self.buttons.hide()  # until an action is added
        row = QHBoxLayout(self)
        row.setContentsMargins(12, 6, 6, 6)
        self._row = row
        self._grid = QGridLayout()
        self._grid.setContentsMargins(0, 0, 0, 0)
        self._grid.setHorizontalSpacing(8)
        self._grid.setVerticalSpacing(4)
        self._grid.addWidget(self.label, 0, 0)
        self._grid.setColumnStretch(0, 1)
        self.stacked = False  # the buttons are under the text
        self._place_buttons()
        row.addLayout(self._grid, 1)
        close = icon_button("close", "Dismiss", self, size=14)
        close.clicked.connect(self.dismiss)
        self._close = close
        row.addWidget(close, 0, Qt.AlignmentFlag.AlignTop)

    def _place_buttons(self) -> None:
        self._grid.removeWidget(self.buttons)
        if self.stacked:
            self._grid.addWidget(self.buttons, 1, 0, Qt.AlignmentFlag.AlignLeft)
        else:
            self._grid.addWidget(self.buttons, 0, 1, Qt.AlignmentFlag.AlignVCenter)

    def _update_stacking(self) -> None:
        """Buttons beside the text while it stays short, under it when that would be tall."""
        if self.buttons.isHidden():
            stacked = False
        else:
            margins = self._row.contentsMargins()
            text_width = (self.width() - margins.left() - margins.right()
                          - self._close.sizeHint().width() - self._row.spacing())
            beside = text_width - self.buttons.sizeHint().width() - self._grid.horizontalSpacing()
            lines = self.label.heightForWidth(max(beside, 1)) / self.label.fontMetrics().lineSpacing()
            stacked = lines > MAX_LINES_BESIDE + 0.5
        if stacked != self.stacked:
            self.stacked = stacked
            self._place_buttons()
            # The height for this width changed: drop the row's cached one, re-lay the column.
            self._row.invalidate()
            self.updateGeometry()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._update_stacking()

    @property
    def text(self) -> str:
        return self.label.text()

    def add_action(self, label: str, callback: Callable[[], None], *, dismiss: bool = True
                   ) -> QPushButton:
        button = QPushButton(label, self)
        button.setAccessibleName(label)

        def run() -> None:
            callback()
            if dismiss:
                self.dismiss()

        button.clicked.connect(run)
        self._buttons_row.addWidget(button)
        self.buttons.show()
        self._update_stacking()
        return button

    def dismiss(self) -> None:
        self.hide()
        self.closed.emit()
        self.deleteLater()


class BannerArea(QWidget):
    """A column of banners; a banner with the same key replaces the previous one."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setSpacing(4)
        self.banners: list[Banner] = []

    def show_banner(self, text: str, kind: str = "error", key: str = "",
                    timeout_ms: int = 0) -> Banner:
        if key:
            self.clear(key)
        banner = Banner(text, kind, key, self)
        self.banners.append(banner)
        banner.closed.connect(lambda b=banner: self._forget(b))
        self._layout.addWidget(banner)
        if timeout_ms:
            QTimer.singleShot(timeout_ms, banner, banner.dismiss)
        return banner

    def _forget(self, banner: Banner) -> None:
        if banner in self.banners:
            self.banners.remove(banner)

    def clear(self, key: str | None = None) -> None:
        for banner in list(self.banners):
            if key is None or banner.key == key:
                banner.dismiss()

    def texts(self) -> list[str]:
        return [b.text for b in self.banners]
