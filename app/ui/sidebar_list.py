"""The sidebar's widgets: a list right-clicks do not reselect, a search field Esc clears, Trash buttons."""

from __future__ import annotations

from PySide6.QtCore import QEvent, Qt, QTimer, Signal
from PySide6.QtGui import QKeyEvent, QMouseEvent, QResizeEvent, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from app.ui import icons
from app.ui.theme import set_style_property

_MOUSE = (QEvent.Type.MouseButtonPress, QEvent.Type.MouseButtonRelease,
          QEvent.Type.MouseButtonDblClick)


class SearchField(QLineEdit):
    """Esc empties the field (the window's Esc, Stop, applies once it is empty)."""

    def event(self, event: QEvent) -> bool:
        if (event.type() == QEvent.Type.ShortcutOverride and isinstance(event, QKeyEvent)
                and event.key() == Qt.Key.Key_Escape and self.text()):
            event.accept()  # a key press for this field, not the window's Esc shortcut
            return True
        return super().event(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Escape and self.text():
            self.clear()
            return
        super().keyPressEvent(event)


class ConversationList(QListWidget):
    """The highlighted row is the open chat: the right button does not select (the context
    menu comes from its own event), and bringing a row into view waits for the list to have
    its real size (before that, "ensure visible" would put the row at the top)."""

    navigated = Signal()  # a key moved the current row (not a click, not focus arriving)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._reveal: QListWidgetItem | None = None

    def keyPressEvent(self, event: QKeyEvent) -> None:
        before = self.currentItem()
        super().keyPressEvent(event)
        if self.currentItem() is not None and self.currentItem() is not before:
            self.navigated.emit()

    def viewportEvent(self, event: QEvent) -> bool:
        if (event.type() in _MOUSE and isinstance(event, QMouseEvent)
                and event.button() == Qt.MouseButton.RightButton):
            event.accept()
            return True
        return super().viewportEvent(event)

    def reveal(self, item: QListWidgetItem) -> None:
        """Scroll ``item`` into view when it is not in view (never to the top for its own
        sake); done once the list is shown if it is not yet."""
        if self.isVisible():
            self._reveal = None
            self.scrollToItem(item, QAbstractItemView.ScrollHint.EnsureVisible)
        else:
            self._reveal = item

    def resizeEvent(self, event: QResizeEvent) -> None:
        """A shorter list (the window or a status line grew) keeps the selected row in view
        if it was in view."""
        super().resizeEvent(event)
        item = self.currentItem()
        shrunk = event.oldSize().height() - event.size().height()
        if item is None or shrunk <= 0 or event.oldSize().height() <= 0:
            return
        rect, view = self.visualItemRect(item), self.viewport().rect()
        if rect.top() >= 0 and rect.bottom() <= view.bottom() + shrunk and not view.contains(rect):
            self.scrollToItem(item, QAbstractItemView.ScrollHint.EnsureVisible)

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if self._reveal is not None:  # once the window's layout has settled
            QTimer.singleShot(0, self, self._reveal_pending)

    def _reveal_pending(self) -> None:
        item, self._reveal = self._reveal, None
        if item is not None and self.row(item) >= 0:
            self.scrollToItem(item, QAbstractItemView.ScrollHint.EnsureVisible)


class TrashButtons(QWidget):
    """Restore and Delete forever, one above the other: never wider than the list's own
    minimum, so the sidebar keeps its width in the Trash (side by side they widened it)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.restore = QPushButton(icons.themed("restore", 16), "Restore", self)
        self.restore.setAccessibleName("Restore conversation")
        self.purge = QPushButton(icons.themed("trash", 16), "Delete forever", self)
        self.purge.setAccessibleName("Delete conversation forever")
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(4)
        column.addWidget(self.restore)
        column.addWidget(self.purge)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.set_active(False)

    def set_active(self, on: bool) -> None:
        """Enabled only with a trashed conversation selected; disabled, Delete forever loses
        its red (the style sheet's danger colour would otherwise win over its disabled look)."""
        self.restore.setEnabled(on)
        self.purge.setEnabled(on)
        set_style_property(self.purge, "danger", on)
