"""`llama-desk bench`: measure a model's decode speed and time to first token on this machine."""

from __future__ import annotations

import argparse
import statistics
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("bench", help="measure decode speed and time to first token",
                       description="Load a model and measure tokens/s and time to first token, "
                       "through the same chat service every face uses.")
    p.add_argument("-m", "--model", help="installed model name or .gguf path (default: current)")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--tokens", type=int, default=128, help="new tokens per run")
    p.add_argument("--ctx", type=int, default=None)
    p.add_argument("--gpu-layers", type=int, default=None)
    p.add_argument("--vs-raw", action="store_true",
                   help="also run plain llama-cpp-python alternately (loads the model twice)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from app import settings as app_settings
    from app.chat.bench import decode_bench
    from app.chat.models import choose_model
    from app.commands.chat import load_overrides

    settings = app_settings.load()
    choice = choose_model(args.model, last_used=settings.model)
    result = decode_bench(choice.path, load_overrides(args), runs=max(1, args.runs),
                          max_tokens=args.tokens, vs_raw=args.vs_raw, settings=settings)
    print(f"model: {result.model}")
    print(f"prompt: {result.prompt_tokens} tokens; runs: {len(result.engine_tps)}")
    print(f"decode: {statistics.median(result.engine_tps):.1f} tokens/s (median)")
    print(f"time to first token: {statistics.median(result.engine_ttft) * 1000:.0f} ms (median)")
    if result.raw_tps:
        print(f"raw llama-cpp-python: {statistics.median(result.raw_tps):.1f} tokens/s; "
              f"app/raw ratio {result.ratio:.3f}")
    return 0
