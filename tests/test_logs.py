"""llama.cpp's own log lines land in the rotating log file, not on the terminal."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.parametrize("route", [True, False], ids=["cli", "window"])
def test_llama_cpp_lines_go_to_the_log_file(llama_desk_home: Path, starter_model: Path,
                                            route: bool) -> None:
    # The window (route=False) leaves llama_cpp unimported until the engine first uses it.
    code = (
        f"import sys; from app import logs; logs.setup(route_llama={route})\n"
        f"assert ('llama_cpp' in sys.modules) is {route}\n"
        "from app.engine import hardware; hardware._llama_backend()\n"
        "from app.engine.engine import LlamaEngine, LoadOptions\n"
        f"e = LlamaEngine(); e.load({str(starter_model)!r}, LoadOptions(n_ctx=512, n_gpu_layers=0))\n"
        "e.close(); print('loaded')\n"
    )
    env = {**os.environ, "LLAMA_DESK_HOME": str(llama_desk_home)}
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "loaded"
    assert proc.stderr == ""  # nothing from llama.cpp spilled onto the terminal
    log = (llama_desk_home / "logs" / "llama-desk.log").read_text(encoding="utf-8")
    assert "llama_cpp: llama_context" in log or "llama_cpp: llama_model_loader" in log
    assert "app.engine.engine: loaded" in log
