"""The status line says how many CPU threads the loaded model runs on, and why."""

from __future__ import annotations

from typing import Any

from app.engine.threads import choose_threads


def test_the_status_line_shows_the_thread_choice(make_window: Any) -> None:
    window = make_window()  # the real starter model on llama.cpp
    info = window.model_info
    auto = choose_threads(None, None)
    assert (info.threads, info.batch_threads) == (auto.decode, auto.batch)
    assert f", {auto.short()}, " in window.state_label.text()
    tip = window.state_label.toolTip()
    assert auto.why in tip and "settings.json" in tip
