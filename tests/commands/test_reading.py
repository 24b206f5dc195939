"""The CLI's prompt-reading line: silent under a second, then read/total, speed and time left."""

from __future__ import annotations

import io

from app.commands.reading import PromptProgress


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_quick_prompt_prints_nothing() -> None:
    out, clock = io.StringIO(), Clock()
    progress = PromptProgress(out, clock)
    progress(0, 500)
    clock.now += 0.4
    progress(250, 500)
    clock.now += 0.4
    progress(500, 500)
    assert out.getvalue() == ""


def test_a_slow_prompt_shows_tokens_speed_and_time_left() -> None:
    out, clock = io.StringIO(), Clock()
    progress = PromptProgress(out, clock)
    progress(0, 4000)
    clock.now += 1.5
    progress(600, 4000)  # 400 tokens/s: 3,400 left -> 9 s
    clock.now += 0.5
    progress(800, 4000)  # too soon for another plain line
    clock.now += 2.0
    progress(1600, 4000)
    clock.now += 6.0
    progress(4000, 4000)
    lines = out.getvalue().splitlines()
    assert lines[0] == "Reading the prompt: 600 / 4,000 tokens, 400 tokens/s, 8 s left"
    assert lines[1].startswith("Reading the prompt: 1,600 / 4,000 tokens, 400 tokens/s")
    assert lines[2] == "Read the prompt (4,000 tokens) in 10 s."
    assert len(lines) == 3


def test_on_a_terminal_one_line_is_updated_then_erased() -> None:
    out, clock = Tty(), Clock()
    progress = PromptProgress(out, clock)
    progress(0, 1000)
    for read in (200, 400, 600):
        clock.now += 1.0
        progress(read, 1000)
    progress(1000, 1000)
    text = out.getvalue()
    assert "\n" not in text and text.count("\r") == 3 + 2  # three updates, then erased
    assert "600 / 1,000 tokens" in text and text.endswith("\r")
    # A new prompt starts afresh.
    progress(0, 10)
    progress(10, 10)
    assert out.getvalue() == text
