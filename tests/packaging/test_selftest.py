"""`--self-test` from the source tree: every step passes, and a failure names its step."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.selftest import STEPS, run_self_test

ROOT = Path(__file__).resolve().parents[2]
# Qt's offscreen platform says this when a window is shown; it is not a problem.
pytestmark = pytest.mark.qt_log_ignore("does not support propagateSizeHints")


def check_passed(output: str) -> None:
    lines = output.splitlines()
    oks = [line.split(" (")[0] for line in lines if line.startswith("ok ")]
    assert oks == [f"ok {step}" for step in STEPS], output
    assert not any(line.startswith("FAILED") for line in lines), output
    assert lines[-1].startswith("self-test passed in "), output


@pytest.mark.slow
def test_main_py_self_test_passes(tmp_path: Path) -> None:
    env = dict(os.environ, LLAMA_DESK_HOME=str(tmp_path / "users-home"))
    env.pop("QT_QPA_PLATFORM", None)  # the self-test must go offscreen by itself
    done = subprocess.run([sys.executable, str(ROOT / "main.py"), "--self-test"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    check_passed(done.stdout)
    assert "MainWindow shown on the offscreen platform" in done.stdout
    # The user's own home was never used: the self-test worked in a temporary one.
    assert not (tmp_path / "users-home" / "data").exists()


def test_missing_starter_model_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                        llama_desk_home: Path) -> None:
    monkeypatch.setenv("LLAMA_DESK_STARTER", str(tmp_path / "gone.gguf"))
    lines: list[str] = []
    assert run_self_test(lines.append) == 1
    assert [line.split(" (")[0] for line in lines[:2]] == ["ok home", "ok window"]
    assert lines[-1].startswith("FAILED starter model: the starter model is not installed")
    assert os.environ["LLAMA_DESK_HOME"] == str(llama_desk_home)  # restored
    temp_home = Path(lines[0].split("LLAMA_DESK_HOME ")[1].rstrip(")"))
    assert not temp_home.exists()  # removed even after a failure


def test_broken_model_fails_the_load_step(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF" + b"\x00" * 60)
    monkeypatch.setenv("LLAMA_DESK_STARTER", str(bad))
    lines: list[str] = []
    assert run_self_test(lines.append) == 1
    assert lines[-1].startswith("FAILED load: ")
    assert "Traceback" not in "\n".join(lines)
