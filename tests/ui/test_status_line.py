"""The status line: the model state gives way first and ends in "…"; the meter stays whole."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from PySide6.QtWidgets import QApplication

from app.ui.plain import plain_tip
from app.ui.sizing import ElidedLabel
from tests.ui.fakes import FakeEngine
from tests.ui.test_window import send


def test_a_narrow_window_elides_the_model_state_and_keeps_the_meter(
        qtbot: Any, make_window: Any) -> None:
    window = make_window(FakeEngine(["Hi."]))
    send(qtbot, window, "hello")  # the meter counts something
    # what a local llama.cpp engine reports (the fake has no threads)
    window.model_info = replace(window.model_info, threads=2, batch_threads=2,
                                threads_why="auto: 2 physical cores", format_name="template")
    window.show_model_state()
    state = window.state_label
    full = state.text()
    assert full.startswith("Ready: ") and "2 threads" in full and window.meter.text()
    window.resize(1400, 780)
    QApplication.processEvents()
    assert not state.is_elided() and full not in state.toolTip()
    assert "threads decode" in state.toolTip()
    for width in (820, 700, 560):
        window.resize(width, 600)
        QApplication.processEvents()
        assert state.text() == full  # the whole text stays the label's text
        room = state.contentsRect().width()
        fits = state.fontMetrics().horizontalAdvance(full) <= room
        assert state.is_elided() == (not fits), width
        if width <= 700:  # offscreen fonts are narrower than the reviewer's X server's
            assert not fits, width
        if not fits:
            shown = state.elided_text()
            assert shown.endswith("…") and full.startswith(shown[:-1]), shown
            assert state.fontMetrics().horizontalAdvance(shown) <= room
            assert full in state.toolTip() and "threads decode" in state.toolTip()
        bar = window.statusBar()
        assert state.geometry().right() <= window.meter.geometry().left()
        for label in (window.meter, window.backend_label, window.api.label):
            if label.isVisibleTo(window):  # the permanent items are never cut
                assert label.width() >= label.sizeHint().width(), (width, label.text())
                assert label.geometry().right() <= bar.width(), (width, label.text())
    window.resize(1400, 780)
    QApplication.processEvents()
    assert not state.is_elided() and full not in state.toolTip()


def test_the_elided_label_keeps_its_own_tooltip_and_shrinks_first(qtbot: Any) -> None:
    label = ElidedLabel("Ready: a model with a rather long name (CPU, 4 threads)")
    qtbot.addWidget(label)
    label.show()
    label.setToolTip("4 threads decode")
    label.resize(label.sizeHint())
    assert not label.is_elided() and label.toolTip() == plain_tip("4 threads decode")
    assert label.minimumSizeHint().width() < label.sizeHint().width() // 4
    label.resize(label.sizeHint().width() // 2, label.sizeHint().height())
    assert label.is_elided()
    assert label.toolTip() == plain_tip(f"{label.text()}\n4 threads decode")
    label.setText("Loading…")
    label.resize(label.sizeHint())
    assert label.toolTip() == plain_tip("4 threads decode")
