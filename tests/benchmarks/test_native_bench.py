"""Native speed (run with `make bench`): the app's defaults vs llama.cpp's own llama-bench built
from the same sdist, at llama-bench's best thread count on this machine, in one run."""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest

from app.chat.bench import decode_bench, find_llama_bench, llama_bench, prompt_bench
from app.engine.threads import usable_cpus

OPTIONS = {"n_gpu_layers": 0}  # the app's defaults otherwise (threads, context, batch, KV type)


def test_decode_and_prompt_speed_vs_llama_bench(starter_model: Path) -> None:
    exe = find_llama_bench()
    if exe is None:
        pytest.fail("llama-bench is not built: run `make tools` (the tools branch) first")
    decode = decode_bench(starter_model, OPTIONS, runs=7, max_tokens=128, vs_raw=False)
    pp, pp_tokens = prompt_bench(starter_model, OPTIONS, runs=5, n_prompt=512)
    counts = list(range(1, len(usable_cpus()) + 1))
    ref = llama_bench(exe, starter_model, decode.info, counts, reps=5)
    ref_pt, ref_pp, ref_gt, ref_tg = ref.best()
    app_tg, app_pp = statistics.median(decode.engine_tps), statistics.median(pp)
    print(f"\n[native] app threads: {decode.threads}")
    print(f"[native] llama-bench: {' '.join(ref.command[1:])}")
    print(f"[native] llama-bench tg128 by threads: {ref.tg}; pp512 by threads: {ref.pp}")
    print(f"[native] decode: app {app_tg:.1f} tok/s (runs {[round(x, 1) for x in decode.engine_tps]})"
          f" vs llama-bench {ref_tg:.1f} at {ref_gt} threads: ratio {app_tg / ref_tg:.3f} "
          "(goal >= 0.9)")
    print(f"[native] prompt: app {app_pp:.1f} tok/s ({pp_tokens} tokens, runs "
          f"{[round(x, 1) for x in pp]}) vs llama-bench {ref_pp:.1f} at {ref_pt} threads: ratio "
          f"{app_pp / ref_pp:.3f} (goal >= 0.9)")
    assert app_tg / ref_tg >= 0.9 and app_pp / ref_pp >= 0.9
