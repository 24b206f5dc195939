"""The application's start-up probe and its GIL setting."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.ui.application import process_age_s
from app.ui.tasks import GUI_SWITCH_INTERVAL_S, keep_window_responsive


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)")
def test_process_age_counts_from_the_real_start() -> None:
    """A child that sleeps 0.3 s reports an age of 0.3 s and a bit (the interpreter's start),
    never the whole-second error of the boot time psutil adds it to."""
    code = ("import time; time.sleep(0.3); from app.ui.application import process_age_s; "
            "print(process_age_s())")
    launched = time.monotonic()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parents[2]).stdout
    outside = time.monotonic() - launched
    age = float(out.split()[-1])
    assert 0.3 <= age <= outside + 0.02  # 0.02: /proc counts in 10 ms ticks


def test_the_window_shortens_the_switch_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "getswitchinterval", lambda: 0.005)
    chosen: list[float] = []
    monkeypatch.setattr(sys, "setswitchinterval", chosen.append)
    keep_window_responsive()
    assert chosen == [GUI_SWITCH_INTERVAL_S] and GUI_SWITCH_INTERVAL_S < 0.005
    assert process_age_s() > 0
