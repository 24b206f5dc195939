"""Engine benchmarks (run with `make bench`): decode speed vs raw llama-cpp-python, TTFT by turn."""

from __future__ import annotations

import statistics
from pathlib import Path

from app.chat.bench import decode_bench, ttft_by_turn

OPTIONS = {"n_ctx": 4096, "n_gpu_layers": 0}


def test_decode_speed_engine_vs_raw(starter_model: Path) -> None:
    result = decode_bench(starter_model, OPTIONS, runs=7, max_tokens=128, vs_raw=True)
    engine, raw = statistics.median(result.engine_tps), statistics.median(result.raw_tps)
    print(f"\n[engine-decode] prompt {result.prompt_tokens} tokens, {len(result.engine_tps)} "
          f"alternating runs of up to 128 tokens (generated: {sorted(set(result.tokens))})")
    print(f"[engine-decode] engine {engine:.1f} tok/s (runs {[round(x, 1) for x in result.engine_tps]})")
    print(f"[engine-decode] raw    {raw:.1f} tok/s (runs {[round(x, 1) for x in result.raw_tps]})")
    print(f"[engine-decode] ratio engine/raw = {result.ratio:.3f} (target >= 0.97)")
    assert result.ratio >= 0.97


def test_ttft_turn_20_vs_turn_1(starter_model: Path) -> None:
    rounds = [ttft_by_turn(starter_model, OPTIONS, turns=20) for _ in range(3)]
    turn1 = statistics.median(r[0] for r in rounds)
    turn20 = statistics.median(r[19] for r in rounds)
    print(f"\n[ttft] turn 1 {turn1 * 1000:.0f} ms, turn 20 {turn20 * 1000:.0f} ms, "
          f"ratio {turn20 / turn1:.2f} (target <= 1.3); per-turn medians (ms): "
          f"{[round(statistics.median(r[i] for r in rounds) * 1000) for i in range(20)]}")
    assert turn20 / turn1 <= 1.3
