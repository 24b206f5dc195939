"""Native speed (run with `make bench`): the app's defaults vs llama.cpp's own llama-bench built
from the same sdist, at llama-bench's best thread count on this machine, in one run."""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest

from app.chat.native import find_llama_bench, native_comparison
from app.engine.threads import usable_cpus

OPTIONS = {"n_gpu_layers": 0}  # the app's defaults otherwise (threads, context, batch, KV type)


@pytest.mark.timeout(3600)
def test_decode_and_prompt_speed_vs_llama_bench(starter_model: Path) -> None:
    exe = find_llama_bench()
    if exe is None:
        pytest.fail("llama-bench is not built: run `make tools` first")
    counts = list(range(1, len(usable_cpus()) + 1))
    run = native_comparison(exe, starter_model, counts, OPTIONS, rounds=7)
    ref_pt, ref_pp, ref_gt, ref_tg = run.best()
    pp_ratio, tg_ratio = run.ratios()

    def fmt(values: list[float]) -> str:
        return str([round(v, 1) for v in values])

    print(f"\n[native] app threads: {run.threads}")
    print(f"[native] llama-bench (once per round): {' '.join(run.command[1:])}")
    for t in counts:
        print(f"[native] llama-bench {t} thread(s): tg128 {fmt(run.ref_tg[t])}, "
              f"pp512 {fmt(run.ref_pp[t])}")
    print(f"[native] decode: app {statistics.median(run.app_tg):.1f} tok/s {fmt(run.app_tg)} vs "
          f"llama-bench {ref_tg:.1f} at {ref_gt} threads: ratio {tg_ratio:.3f} (goal >= 0.9)")
    print(f"[native] prompt ({run.prompt_tokens} tokens): app {statistics.median(run.app_pp):.1f}"
          f" tok/s {fmt(run.app_pp)} vs llama-bench {ref_pp:.1f} at {ref_pt} threads: ratio "
          f"{pp_ratio:.3f} (goal >= 0.9)")
    assert tg_ratio >= 0.9 and pp_ratio >= 0.9
