"""The app against llama.cpp's own llama-bench (same sdist), interleaved round by round."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.chat.bench import _service, decode_run, describe_threads, prompt_run, prompt_text
from app.engine.engine import LlamaEngine
from app.engine.types import LoadOptions
from app.settings import AppSettings


def find_llama_bench() -> Path | None:
    """llama.cpp's llama-bench built from the same sdist (`make tools`), if it is there."""
    import importlib

    try:  # app.engine.tools (the `make tools` branch) knows every place it may be
        found = importlib.import_module("app.engine.tools").find_tool("llama-bench")
        return Path(found) if found else None
    except ImportError:
        pass
    root = Path(os.environ.get("LLAMA_DESK_BUILD_CACHE", "")
                or Path.home() / ".cache" / "llama-desk-build")
    import llama_cpp

    builds = sorted(root.glob(f"{llama_cpp.__version__}-*/bin/llama-bench"),
                    key=lambda p: -p.stat().st_mtime)
    return builds[0] if builds else None


@dataclass
class LlamaBench:
    """llama-bench's figures (tokens/s) per thread count."""

    pp: dict[int, float] = field(default_factory=dict)
    tg: dict[int, float] = field(default_factory=dict)
    command: list[str] = field(default_factory=list)

    def best(self) -> tuple[int, float, int, float]:
        """(threads, pp tok/s, threads, tg tok/s) at the best thread count of each."""
        pt = max(self.pp, key=lambda t: self.pp[t])
        gt = max(self.tg, key=lambda t: self.tg[t])
        return pt, self.pp[pt], gt, self.tg[gt]


def llama_bench(exe: Path, model: str | Path, info: Any, threads: Sequence[int], *,
                n_prompt: int = 512, n_gen: int = 128, reps: int = 3,
                timeout: float = 1800) -> LlamaBench:
    """Run llama-bench (pp ``n_prompt``, tg ``n_gen``) at each thread count with the app's
    other settings (GPU layers, batch size, KV type, flash attention)."""
    from app.engine.engine import uses_flash_attn

    options = LoadOptions(n_ctx=info.n_ctx, kv_type=info.kv_type)
    cmd = [str(exe), "-m", str(model), "-p", str(n_prompt), "-n", str(n_gen),
           "-t", ",".join(str(t) for t in threads), "-r", str(reps), "-o", "json",
           "-ngl", str(info.n_gpu_layers if info.n_gpu_layers >= 0 else 999),
           "-b", str(options.n_batch), "-ub", str(options.n_batch),
           "-ctk", info.kv_type, "-ctv", info.kv_type,
           "-fa", "1" if uses_flash_attn(options) else "0"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"llama-bench failed ({done.returncode}): {done.stderr[-500:]}")
    out = LlamaBench(command=cmd)
    for row in json.loads(done.stdout):
        speed, t = float(row["avg_ts"]), int(row["n_threads"])
        if row.get("n_prompt") and not row.get("n_gen"):
            out.pp[t] = speed
        elif row.get("n_gen") and not row.get("n_prompt"):
            out.tg[t] = speed
    return out


@dataclass
class NativeComparison:
    """Tokens/s of the app and of llama-bench (per thread count), measured in turns."""

    app_tg: list[float] = field(default_factory=list)
    app_pp: list[float] = field(default_factory=list)
    ref_tg: dict[int, list[float]] = field(default_factory=dict)
    ref_pp: dict[int, list[float]] = field(default_factory=dict)
    threads: str = ""
    prompt_tokens: int = 0
    command: list[str] = field(default_factory=list)

    def best(self) -> tuple[int, float, int, float]:
        """llama-bench's best (threads, median pp) and (threads, median tg)."""
        pp = {t: statistics.median(v) for t, v in self.ref_pp.items()}
        tg = {t: statistics.median(v) for t, v in self.ref_tg.items()}
        pt, gt = max(pp, key=lambda t: pp[t]), max(tg, key=lambda t: tg[t])
        return pt, pp[pt], gt, tg[gt]

    def ratios(self) -> tuple[float, float]:
        """(app/llama-bench prompt, app/llama-bench decode), medians, at llama-bench's best."""
        _, pp, _, tg = self.best()
        return statistics.median(self.app_pp) / pp, statistics.median(self.app_tg) / tg


def native_comparison(exe: Path, model: str | Path, threads: Sequence[int],
                      overrides: Mapping[str, Any] | None = None, *, rounds: int = 5,
                      n_gen: int = 128, n_prompt: int = 512,
                      settings: AppSettings | None = None) -> NativeComparison:
    """Each round: one app decode run, one app prompt run, then llama-bench once at every
    thread count; on a machine shared with other work both sides see the same load."""
    service = _service(settings)
    info = service.load_model(str(model), overrides=overrides)
    engine = service.engine
    assert isinstance(engine, LlamaEngine)
    out = NativeComparison(threads=describe_threads(info))
    try:
        text = prompt_text(engine, n_prompt)
        for _ in range(rounds):
            out.app_tg.append(decode_run(service, n_gen))
            speed, out.prompt_tokens = prompt_run(service, text)
            out.app_pp.append(speed)
            ref = llama_bench(exe, info.path, info, threads, n_prompt=n_prompt, n_gen=n_gen,
                              reps=1)
            out.command = ref.command
            for t, v in ref.pp.items():
                out.ref_pp.setdefault(t, []).append(v)
            for t, v in ref.tg.items():
                out.ref_tg.setdefault(t, []).append(v)
    finally:
        service.close()
    return out
