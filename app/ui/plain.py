"""User and model data shown as plain text: labels that never interpret HTML, literal tooltips."""

from __future__ import annotations

import html

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QWidget


def plain_label(text: str = "", parent: QWidget | None = None) -> QLabel:
    """A QLabel that shows ``text`` literally (QLabel's default guesses HTML from the text)."""
    label = QLabel(parent)
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setText(text)
    return label


def plain_tip(text: str) -> str:
    """A tooltip that shows ``text`` literally.

    Qt guesses whether a tooltip is rich text (``Qt::mightBeRichText``); escaping alone would
    show ``&lt;`` whenever the guess is plain, so the escaped text is wrapped as rich text.
    """
    return f"<p style='white-space:pre-wrap'>{html.escape(text)}</p>"
