"""`llama-desk bench`: measure a model's decode speed and time to first token on this machine."""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("bench", help="measure decode speed and time to first token",
                       description="Load a model and measure tokens/s and time to first token.")
    p.add_argument("-m", "--model", help="installed model name or .gguf path (default: current)")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--tokens", type=int, default=128, help="new tokens per run")
    p.add_argument("--ctx", type=int, default=None)
    p.add_argument("--gpu-layers", type=int, default=None)
    p.add_argument("--vs-raw", action="store_true",
                   help="also run plain llama-cpp-python alternately (loads the model twice)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from app import settings as app_settings
    from app.commands.chat import _model_path
    from app.engine.bench import decode_bench

    settings = app_settings.load()
    path = _model_path(args, settings.model, None)
    options = settings.load_options(path)
    options = replace(options, n_ctx=args.ctx or options.n_ctx,
                      n_gpu_layers=args.gpu_layers if args.gpu_layers is not None
                      else options.n_gpu_layers)
    result = decode_bench(Path(path), options, runs=max(1, args.runs), max_tokens=args.tokens,
                          vs_raw=args.vs_raw)
    print(f"model: {path}")
    print(f"prompt: {result.prompt_tokens} tokens; runs: {len(result.engine_tps)}")
    print(f"decode: {statistics.median(result.engine_tps):.1f} tokens/s (median)")
    print(f"time to first token: {statistics.median(result.engine_ttft) * 1000:.0f} ms (median)")
    if result.raw_tps:
        print(f"raw llama-cpp-python: {statistics.median(result.raw_tps):.1f} tokens/s; "
              f"engine/raw ratio {result.ratio:.3f}")
    return 0
