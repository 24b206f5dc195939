"""The composer box on its own: it grows with its text and shrinks back."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt

from app.ui.composer import Composer


def test_the_box_shrinks_back_when_its_text_is_deleted_at_once(qtbot: Any) -> None:
    composer = Composer()
    qtbot.add_widget(composer)
    composer.resize(600, 200)
    composer.show()
    one_line = composer.edit.height()
    qtbot.keyClicks(composer.edit, "one")
    qtbot.keyClick(composer.edit, Qt.Key.Key_Return, Qt.KeyboardModifier.ShiftModifier)
    qtbot.keyClicks(composer.edit, "two")
    assert composer.edit.height() > one_line
    qtbot.keyClick(composer.edit, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClick(composer.edit, Qt.Key.Key_Backspace)  # the whole selection at once
    assert composer.text() == ""
    assert composer.edit.height() == one_line
