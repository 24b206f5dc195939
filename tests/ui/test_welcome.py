"""The welcome's example cards: shown as they read, sent exactly as written."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QTextDocument

from app.ui.welcome import EXAMPLES, Welcome


def test_the_code_example_reads_without_backticks_and_sends_them(qtbot: Any) -> None:
    welcome = Welcome()
    qtbot.addWidget(welcome)
    card = next(c for c in welcome.examples if c.title.text() == "Fix my code")
    prompt = dict(EXAMPLES)["Fix my code"]
    assert "`" in prompt  # the Markdown the model gets
    shown = QTextDocument()
    shown.setHtml(card.body.text())
    assert "`" not in shown.toPlainText() and "`" not in card.toolTip()
    assert "xs.remove(xs[i])" in shown.toPlainText() and "Why does" in shown.toPlainText()
    assert "<code>for i in range(len(xs)): xs.remove(xs[i])</code>" in card.body.text()
    assert "`" not in welcome.text()
    with qtbot.waitSignal(welcome.example_chosen, timeout=1000) as blocker:
        qtbot.mouseClick(card, Qt.MouseButton.LeftButton)
    assert blocker.args == [prompt]  # what is sent keeps its backticks


def test_plain_examples_are_escaped_not_interpreted(qtbot: Any) -> None:
    from app.ui.welcome import prompt_html, readable

    assert prompt_html("a < b & `c<d>`") == "a &lt; b &amp; <code>c&lt;d&gt;</code>"
    assert readable("use `x` and `y`") == "use x and y"
