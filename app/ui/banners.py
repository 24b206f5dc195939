"""Inline banners: errors with the action to take, the Undo bar, and invitations."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from app.ui.rich_text import icon_button

# (background, text, border) in the light and the dark theme
STYLES = {
    "error": (("#fdecea", "#611a15", "#f5c6cb"), ("#3b1f1f", "#ffb4ab", "#6e2f2b")),
    "warning": (("#fff4e5", "#663c00", "#ffd8a8"), ("#3a2e12", "#f2cc60", "#6b5420")),
    "info": (("#e8f1fd", "#0b3a75", "#b6d4fe"), ("#1d2a3d", "#a8c7fa", "#2f4a6e")),
}


def banner_style(kind: str) -> str:
    from app.ui.theme import is_dark

    background, text, border = STYLES.get(kind, STYLES["info"])[1 if is_dark() else 0]
    return f"background-color:{background}; color:{text}; border:1px solid {border};"


class Banner(QFrame):
    """One message with optional action buttons and a close button."""

    closed = Signal()

    def __init__(self, text: str, kind: str = "error", key: str = "",
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.key = key
        self.kind = kind
        self.setObjectName(f"banner-{kind}")
        self.setStyleSheet(f"QFrame#{self.objectName()} {{ {banner_style(kind)}"
                           " border-radius:8px; } QPushButton { padding: 3px 10px; }")
        self.label = QLabel(text, self)
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.label.setTextFormat(Qt.TextFormat.PlainText)
        self.label.setStyleSheet("border:none; background:transparent;")
        row = QHBoxLayout(self)
        row.setContentsMargins(12, 6, 6, 6)
        row.addWidget(self.label, 1)
        self._row = row
        close = icon_button("close", "Dismiss", self, size=14)
        close.clicked.connect(self.dismiss)
        self._close = close
        row.addWidget(close)

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
        self._row.insertWidget(self._row.count() - 1, button)
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
