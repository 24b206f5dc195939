"""Switching conversations in the window (run with `make bench`): time to first token of the next
turn after switching back to a long conversation vs a warm turn, on the real starter model."""

from __future__ import annotations

import statistics
import time
from typing import Any

import pytest

from app.store import Store
from tests.chat.long_chat import store_long_chat

pytestmark = pytest.mark.qt_log_ignore(r"This plugin does not support (propagateSizeHints|raise)\(\)")
SYSTEM = "You are a patient assistant who answers in one short sentence."


@pytest.mark.timeout(1800)
def test_switch_back_ttft_vs_warm_turn(qtbot: Any, make_window: Any) -> None:
    with Store.open() as store:  # two ~1,900-token conversations, different from the start
        a = store_long_chat(store, 80, SYSTEM)
        b = store_long_chat(store, 80, "You are a terse assistant; answer in five words.")
    window = make_window()
    window.settings.sampling = {**window.settings.sampling, "max_tokens": 12, "seed": 7,
                                "temperature": 0.0}
    first: dict[int, float] = {}
    window.host.chunk.connect(  # the model thread: when the first text of each reply left it
        lambda mid, _text: first.setdefault(mid, time.perf_counter()))

    def turn(conv: int, text: str) -> tuple[float, Any]:
        if window.conv_id != conv:
            window.open_conversation(conv)
        started = time.perf_counter()
        with qtbot.waitSignal(window.reply_done, timeout=300_000) as blocker:
            window.send(text)
        done = blocker.args[0]
        return first[done.message.id] - started, done.result

    turn(a, "Hello.")  # cold: each conversation's first turn reads it all
    turn(b, "Hello.")
    switch, warm, notes = [], [], []
    for i in range(5):
        for conv in (a, b):
            ttft_s, result_s = turn(conv, f"Question {i}: and then?")  # switched to it
            ttft_w, result_w = turn(conv, f"Question {i}: why?")  # the next turn: warm
            switch.append(ttft_s)
            warm.append(ttft_w)
            notes.append(f"switch {ttft_s * 1000:.0f} ms (service {result_s.ttft_s * 1000:.0f}; "
                         f"prompt {result_s.prompt_tokens}, restored {result_s.restored_tokens}) "
                         f"/ warm {ttft_w * 1000:.0f} ms (service {result_w.ttft_s * 1000:.0f}; "
                         f"reused {result_w.reused_tokens})")
            assert result_s.restored_tokens > 0.8 * result_s.prompt_tokens
    ratio = statistics.median(switch) / statistics.median(warm)
    print("\n[switch] " + "\n[switch] ".join(notes))
    print(f"[switch] time to first token after switching back: {statistics.median(switch) * 1000:.0f}"
          f" ms vs a warm turn {statistics.median(warm) * 1000:.0f} ms: ratio {ratio:.2f} "
          "(goal <= 1.5)")
    assert ratio <= 1.5
