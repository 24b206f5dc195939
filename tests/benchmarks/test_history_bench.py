"""Long conversations (run with `make bench`): reopening with a kept KV state vs without, and
prompt preparation against history length."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.chat.service import ChatService
from app.engine.engine import LlamaEngine
from app.engine.types import Message
from app.settings import AppSettings
from app.store import Store
from tests.chat.long_chat import store_long_chat

ROOT = Path(__file__).resolve().parents[2]
SYSTEM = "You are a patient assistant who answers in one short sentence."
GREEDY = ["--temperature", "0", "--seed", "1", "--gpu-layers", "0", "--max-tokens", "16"]


def first_byte(home: Path, *args: str) -> tuple[float, str]:
    """Seconds from starting `llama-desk chat ...` to the first byte of its reply; its stderr."""
    env = {**os.environ, "LLAMA_DESK_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "main.py", "chat", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    proc.stdout.read(1)
    elapsed = time.perf_counter() - started
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    return elapsed, err.decode()


@pytest.mark.timeout(3600)
def test_reopen_with_kept_state_vs_cache_removed(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # Every run uses the same home folder (kept states are filed under the database's path),
    # put back each time from a snapshot taken after the first reply.
    home, snapshot = tmp_path / "home", tmp_path / "snapshot"
    monkeypatch.setenv("LLAMA_DESK_HOME", str(home))
    with Store.open() as store:
        conv = store_long_chat(store, 100, SYSTEM)
    # One reply in its own process: the state it keeps covers ~2,000 tokens.
    took, err = first_byte(home, "--continue", str(conv), "--stats", *GREEDY, "Hello again.")
    print(f"\n[reopen] first reply (cold, keeps the state): {took:.2f} s; {err.strip()[-120:]}")
    shutil.copytree(home, snapshot)
    warm, cold, lines = [], [], []
    for _run in range(3):
        for kind, out in (("warm", warm), ("cold", cold)):
            shutil.rmtree(home)
            shutil.copytree(snapshot, home)
            if kind == "cold":
                shutil.rmtree(home / "cache")
            took, err = first_byte(home, "--continue", str(conv), "--stats", *GREEDY,
                                   "What did we talk about?")
            out.append(took)
            lines.append(f"{kind}: {took:.2f} s {err.strip().splitlines()[-1]}")
    ratio = statistics.median(warm) / statistics.median(cold)
    print("[reopen] " + "\n[reopen] ".join(lines))
    print(f"[reopen] time to first byte of `chat --continue` (process start, model load, prompt): "
          f"kept state {statistics.median(warm):.2f} s vs cache removed "
          f"{statistics.median(cold):.2f} s: ratio {ratio:.3f} (goal <= 0.3)")
    assert ratio <= 0.3


@pytest.mark.timeout(1800)
def test_prompt_preparation_is_flat_in_history_length(starter_model: Path, tmp_path: Path
                                                      ) -> None:
    settings = AppSettings(state_cache_gb=0)
    service = ChatService(LlamaEngine(), settings=lambda: settings, db_path=tmp_path / "c.db")
    try:
        service.load_model(str(starter_model), overrides={"n_gpu_layers": 0})
        rows = []
        for size in (20, 2_000, 20_000):
            conv = store_long_chat(service.store, size, SYSTEM)
            record = service.store.get_conversation(conv)
            sampling = service._sampling(record, None)
            times = []
            for _ in range(6):  # the first turn of a process, then the next ones
                began = time.perf_counter()
                service._turn(record, SYSTEM, record.current_leaf_id,
                              [Message("user", "One more question?")], sampling, settle=True)
                service.context_count(conv)
                times.append(time.perf_counter() - began)
            turn = service.last_turn
            assert turn is not None
            rows.append((size, times[0], statistics.median(times[1:]), len(turn.prompt.tokens),
                         turn.prompt.dropped_messages, turn.read))
        for size, first, later, tokens, dropped, read in rows:
            print(f"[prepare] {size:>6,} messages: first {first * 1000:6.1f} ms, then "
                  f"{later * 1000:6.1f} ms per turn (prompt + meter); prompt {tokens:,} tokens, "
                  f"{dropped:,} messages left out, {read} read from the store")
        flat = rows[2][2] / rows[1][2]
        print(f"[prepare] per turn, 20,000 vs 2,000 messages (both fill the context): "
              f"{flat:.2f}x; vs 20 messages (a prompt {rows[2][3] / rows[0][3]:.1f}x longer): "
              f"{rows[2][2] / rows[0][2]:.2f}x (goal: flat)")
        assert flat < 2
    finally:
        service.close()
