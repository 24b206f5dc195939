"""`llama-desk serve` in a subprocess: the URL line, the key from stdin, refusals, a clean stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx2
import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
KEY = "serve-test-key-0123456789"


def start(home: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "LLAMA_DESK_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "main.py", "serve", "--port", "0", "--ctx", "512",
                             *args], cwd=ROOT, env=env, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def stop(proc: subprocess.Popen[str], sig: int = signal.SIGINT) -> tuple[int, str]:
    proc.send_signal(sig)
    if proc.stdin is not None and proc.stdin.closed:
        proc.stdin = None
    try:
        _, err = proc.communicate(timeout=30)
    except BaseException:
        proc.kill()
        proc.wait(10)
        raise
    return proc.returncode, err


def test_prints_the_url_serves_and_stops_on_ctrl_c(llama_desk_home: Path) -> None:
    proc = start(llama_desk_home)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/v1")
        models = httpx2.get(url + "/models", timeout=10).json()
        assert models["data"][0]["id"] == "Starter (SmolLM2 135M)"
        answer = httpx2.post(url + "/chat/completions", timeout=60, json={
            "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4, "seed": 1})
        assert answer.status_code == 200 and answer.json()["usage"]["completion_tokens"] >= 1
    finally:
        code, err = stop(proc)
    assert code == 0, err
    assert "Traceback" not in err


def test_the_key_from_stdin_and_sigterm(llama_desk_home: Path) -> None:
    proc = start(llama_desk_home, "--api-key-stdin", "--cors-origin", "http://localhost:3000")
    try:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(KEY + "\n")
        proc.stdin.close()
        url = proc.stdout.readline().strip()
        assert httpx2.get(url + "/models", timeout=10).status_code == 401
        ok = httpx2.get(url + "/models", timeout=10, headers={
            "Authorization": f"Bearer {KEY}", "Origin": "http://localhost:3000"})
        assert ok.status_code == 200
        assert ok.headers["access-control-allow-origin"] == "http://localhost:3000"
    finally:
        code, err = stop(proc, signal.SIGTERM)
    assert code == 0, err
    assert KEY not in err


@pytest.mark.parametrize(("args", "message"), [
    (("--host", "0.0.0.0"), "needs an API key"),
    (("--cors-origin", "*"), "needs an API key"),
    (("--cors-origin", "localhost:3000"), "is not a web origin"),
    (("--api-key-stdin",), "--api-key-stdin read no key"),
    (("--port", "70000"), "out of range"),
])
def test_refusals_are_one_line(llama_desk_home: Path, args: tuple[str, ...], message: str
                               ) -> None:
    proc = start(llama_desk_home, *args)
    out, err = proc.communicate(input="", timeout=60)
    assert proc.returncode == 1
    assert out == ""
    assert err.strip().startswith("llama-desk: error:") and message in err
    assert len(err.strip().splitlines()) == 1
