"""`llama-desk bench`: measure a model's decode and prompt speed and time to first token here."""

from __future__ import annotations

import argparse
import statistics
from typing import Any


def register(sub: Any) -> None:
    from app.commands.chat import add_engine_flags, add_load_flags

    p = sub.add_parser("bench", help="measure decode speed and time to first token",
                       description="Load a model and measure tokens/s and time to first token, "
                       "through the same chat service every face uses.")
    p.add_argument("-m", "--model", help="installed model name or .gguf path (default: current)")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--tokens", type=int, default=128, help="new tokens per run")
    add_load_flags(p)
    add_engine_flags(p)
    p.add_argument("--prompt", action="store_true",
                   help="also measure prompt reading speed (a 512-token prompt)")
    p.add_argument("--vs-raw", action="store_true",
                   help="also run plain llama-cpp-python alternately (loads the model twice)")
    p.add_argument("--vs-llama-bench", action="store_true",
                   help="also run llama.cpp's llama-bench (from `make tools`) at 1..N threads")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from app import settings as app_settings
    from app.chat.bench import decode_bench, prompt_bench
    from app.chat.models import choose_model
    from app.chat.native import find_llama_bench, llama_bench
    from app.commands.chat import load_overrides
    from app.engine.threads import usable_cpus
    from app.errors import UserError

    settings = app_settings.load()
    choice = choose_model(args.model, last_used=settings.model)
    overrides = load_overrides(args)
    result = decode_bench(choice.path, overrides, runs=max(1, args.runs),
                          max_tokens=args.tokens, vs_raw=args.vs_raw, settings=settings)
    print(f"model: {result.model}")
    print(f"threads: {result.threads}")
    print(f"prompt: {result.prompt_tokens} tokens; runs: {len(result.engine_tps)}")
    print(f"decode: {statistics.median(result.engine_tps):.1f} tokens/s (median)")
    print(f"time to first token: {statistics.median(result.engine_ttft) * 1000:.0f} ms (median)")
    if result.raw_tps:
        print(f"raw llama-cpp-python: {statistics.median(result.raw_tps):.1f} tokens/s; "
              f"app/raw ratio {result.ratio:.3f}")
    app_pp = 0.0
    if args.prompt or args.vs_llama_bench:
        speeds, n = prompt_bench(choice.path, overrides, runs=max(1, args.runs), settings=settings)
        app_pp = statistics.median(speeds)
        print(f"prompt reading: {app_pp:.1f} tokens/s ({n} tokens, median)")
    if args.vs_llama_bench:
        exe = find_llama_bench()
        if exe is None:
            raise UserError("llama.cpp's llama-bench is not built; run `make tools` first.")
        counts = sorted({1, *range(2, len(usable_cpus()) + 1, max(1, len(usable_cpus()) // 4))})
        ref = llama_bench(exe, choice.path, result.info, counts, n_gen=args.tokens)
        pt, pp, gt, tg = ref.best()
        app_tg = statistics.median(result.engine_tps)
        print(f"llama-bench: pp512 {pp:.1f} tokens/s at {pt} threads, tg{args.tokens} {tg:.1f} "
              f"tokens/s at {gt} threads")
        print(f"app/llama-bench: prompt {app_pp / pp:.3f}, decode {app_tg / tg:.3f}")
    return 0
