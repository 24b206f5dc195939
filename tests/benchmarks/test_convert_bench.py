"""Conversion throughput and peak memory on a generated ~400 MB checkpoint, next to a file copy.

llama.cpp's own convert_hf_to_gguf.py imports torch, which is not installed here (and is not a
dependency of Llama Desk), so it cannot run side by side; plain file copy is the floor instead.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.convert import checkpoints as ck

ROOT = Path(__file__).resolve().parents[2]
# Llama-2's 32,000-token vocabulary makes the embedding and output the largest tensors (64 MB
# each as f16), as in the real models; the embedding is merged column-wise from Meta's shards.
SHAPE = {"dim": 1024, "n_layers": 12, "n_heads": 16, "n_kv_heads": 4, "multiple_of": 256}
N_VOCAB = 32000
ROUNDS = 3
# Peak RSS is read in the child (VmHWM): a forked child's ru_maxrss starts at its parent's.
CHILD = """
import os, sys, time
from pathlib import Path
from app.convert.layout import find_checkpoint
from app.convert.pipeline import convert
from app.convert.progress import Reporter
import gguf, numpy, sentencepiece
seconds = 0.0
if sys.argv[1] != "baseline":
    start = time.perf_counter()
    out = Path(sys.argv[2])
    convert(find_checkpoint(sys.argv[1]), out, "F16", name="bench", reporter=Reporter())
    fd = os.open(out, os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)
    seconds = time.perf_counter() - start
hwm = next(l for l in open("/proc/self/status") if l.startswith("VmHWM"))
print(seconds, int(hwm.split()[1]) * 1024)
"""


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    import sentencepiece

    root = tmp_path_factory.mktemp("convert-bench")
    tok = ck.train_tokenizer(root / "tokenizer.model")
    assert sentencepiece.SentencePieceProcessor(model_file=str(tok)).vocab_size() < N_VOCAB
    model = ck.random_llama(N_VOCAB, **SHAPE)  # rows past the tokenizer's pieces become [PADn]
    hf = ck.write_hf(root / "hf", model, tok, n_shards=2)
    meta = ck.write_meta(root / "meta", model, tok, n_shards=2)
    biggest = max(v.size for v in model.weights.values()) * 2  # bytes as f16
    del model
    import gc

    gc.collect()
    return {"root": root, "hf": hf, "meta": meta, "biggest": biggest}


def weights(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix in (".safetensors", ".pth"))


def copy_seconds(files: list[Path], dest: Path) -> float:
    dest.mkdir(exist_ok=True)
    start = time.perf_counter()
    for f in files:
        shutil.copyfile(f, dest / f.name)
    for f in files:  # the converter's output is on disk too: same flush for both
        fd = os.open(dest / f.name, os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)
    elapsed = time.perf_counter() - start
    shutil.rmtree(dest)
    return elapsed


def child(folder: str, out: Path) -> tuple[float, int]:
    """(seconds to convert, peak RSS bytes) of a fresh process."""
    proc = subprocess.Popen([sys.executable, "-c", CHILD, folder, str(out)], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.stdout is not None
    output = proc.stdout.read()
    assert proc.wait() == 0, output
    seconds, peak = output.split()
    return float(seconds), int(peak)


def test_conversion_throughput_and_peak_memory(sources: dict[str, Any]) -> None:
    from app.convert.progress import Reporter
    from app.convert.quantize import quantize

    root: Path = sources["root"]
    results: dict[str, list[float]] = {"copy": [], "hf": [], "meta": [], "meta-md5": []}
    nomd5 = Path(shutil.copytree(sources["meta"].parent, root / "meta-nomd5")) / sources["meta"].name
    (nomd5 / "checklist.chk").unlink()
    (nomd5.parent / "tokenizer_checklist.chk").unlink()
    sources = {**sources, "meta-md5": sources["meta"], "meta": nomd5}
    rss: dict[str, int] = {}
    size = {k: sum(p.stat().st_size for p in weights(sources[k])) for k in ("hf", "meta", "meta-md5")}
    _t, rss["baseline"] = child("baseline", root / "none")
    for _ in range(ROUNDS):  # interleaved, so a busy moment on the shared machine hits all three
        results["copy"].append(copy_seconds(weights(sources["hf"]), root / "copy"))
        for layout in ("hf", "meta", "meta-md5"):
            out = root / f"{layout}.gguf"
            seconds, peak = child(str(sources[layout]), out)
            results[layout].append(seconds)
            rss[layout] = max(rss.get(layout, 0), peak)
    f16 = root / "hf.gguf"
    quant_speed = {}
    for quant in ("Q8_0", "Q4_K_M"):
        start = time.perf_counter()
        quantize(f16, root / f"q.{quant}.gguf", quant, f16.stat().st_size, Reporter(), threads=2)
        quant_speed[quant] = f16.stat().st_size / (time.perf_counter() - start) / 1e6

    def mbps(key: str, nbytes: int) -> float:
        return nbytes / min(results[key]) / 1e6

    copy = mbps("copy", size["hf"])
    torch = importlib.util.find_spec("torch") is not None
    print(f"\nconversion benchmark: {size['hf'] / 1e6:.0f} MB of f16 safetensors (HF layout) / "
          f"{size['meta'] / 1e6:.0f} MB of bf16 .pth in 2 shards (Meta layout), best of {ROUNDS}")
    print(f"  plain file copy (+fsync)            {copy:7.0f} MB/s")
    for layout, label in (("hf", "HF safetensors -> F16 GGUF"), ("meta", "Meta 2x bf16 .pth -> F16 GGUF"),
                          ("meta-md5", "  the same + checklist.chk md5")):
        speed = mbps(layout, size[layout])
        extra = (rss[layout] - rss["baseline"]) / 1e6
        print(f"  {label:<35} {speed:7.0f} MB/s  ({speed / copy:.2f} x copy); peak RSS "
              f"{rss[layout] / 1e6:.0f} MB = {rss['baseline'] / 1e6:.0f} MB imports + "
              f"{extra:.0f} MB (largest tensor {sources['biggest'] / 1e6:.0f} MB as f16)")
    for quant, speed in quant_speed.items():
        print(f"  llama.cpp quantize F16 -> {quant:<8} {speed:7.0f} MB/s of F16 (2 threads)")
    print("  llama.cpp convert_hf_to_gguf.py: " + (
        "torch is installed but not compared" if torch else "not run (it imports torch, which "
        "is not installed and not a dependency)"))
    for layout in ("hf", "meta", "meta-md5"):
        # streaming: the conversion holds about one tensor, never the model (~300 MB here)
        assert rss[layout] - rss["baseline"] < 4 * sources["biggest"] + 100e6
