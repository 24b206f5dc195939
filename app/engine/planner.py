"""Memory-fit planner: weights + KV cache + compute buffer against RAM/VRAM, with a verdict."""

from __future__ import annotations

import contextlib
import json
import logging
import math
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app import fileio, paths
from app.engine import modelfile
from app.engine.hardware import Hardware
from app.errors import UserError
from app.units import format_size

if TYPE_CHECKING:
    from app.engine.modelfile import ModelFileInfo
    from app.engine.rpc import WorkerInfo

MIB = 1024**2
# Kept free on the GPU for the driver's context and fragmentation, and in RAM for the app itself.
GPU_RESERVE = 512 * MIB
RAM_RESERVE = 512 * MIB
WORKER_RESERVE = 512 * MIB  # per RPC worker: its own process, its compute buffer's slack
COMPUTE_BASE = 64 * MIB
DEFAULT_BATCH = 512

# Effective bits per weight of llama.cpp quantizations (whole-file averages of Llama-2 files).
QUANT_BITS: dict[str, float] = {
    "Q2_K": 3.35, "Q3_K_S": 3.50, "Q3_K_M": 3.91, "Q3_K_L": 4.27, "Q4_0": 4.55, "Q4_K_S": 4.58,
    "Q4_K_M": 4.85, "Q5_0": 5.52, "Q5_K_S": 5.52, "Q5_K_M": 5.68, "Q6_K": 6.56, "Q8_0": 8.50,
    "F16": 16.0, "F32": 32.0,
}


log = logging.getLogger(__name__)


class Verdict(StrEnum):
    """Where a model runs, best first."""

    FITS_GPU = "fits on GPU"
    PARTIAL = "partial offload"
    CPU_ONLY = "CPU only (slow)"
    WONT_FIT = "won't fit"


@dataclass(frozen=True)
class ModelShape:
    """The sizes that decide a model's memory needs."""

    name: str
    n_layers: int
    n_head: int
    n_head_kv: int
    n_embd: int
    weights_bytes: int
    n_vocab: int = 32000
    n_ff: int | None = None
    n_params: int | None = None

    @property
    def head_dim(self) -> int:
        return self.n_embd // max(1, self.n_head)

    @property
    def ff(self) -> int:
        if self.n_ff:
            return self.n_ff
        return 256 * math.ceil(8 * self.n_embd / 3 / 256)  # Llama's SwiGLU width

    def layer_bytes(self) -> int:
        """Weight bytes of one repeating block (attention + feed-forward)."""
        kv_width = self.n_head_kv * self.head_dim
        per_layer = 2 * self.n_embd * self.n_embd + 2 * self.n_embd * kv_width
        per_layer += 3 * self.n_embd * self.ff
        outside = 2 * self.n_vocab * self.n_embd  # token embedding + output head
        layers = self.n_layers * per_layer
        # max(1, ...): a damaged shape (zero width or layers) must give numbers, not a crash
        return int(self.weights_bytes * layers / max(1, layers + outside) / max(1, self.n_layers))

    def outside_bytes(self) -> int:
        """Weight bytes outside the blocks (embedding and output head)."""
        return self.weights_bytes - self.layer_bytes() * self.n_layers

    @classmethod
    def from_file_info(cls, info: ModelFileInfo) -> ModelShape:
        """The shape a GGUF header describes."""
        return cls(
            name=info.name, n_layers=info.n_layers, n_head=info.n_head,
            n_head_kv=info.n_head_kv or info.n_head, n_embd=info.n_embd,
            weights_bytes=info.tensor_bytes or info.size_bytes, n_vocab=info.n_vocab or 32000,
        )

    @classmethod
    def known(cls, size: str, weights_bytes: int | None = None, quant: str = "Q4_K_M") -> ModelShape:
        """Llama-2 7B, 13B or 70B before download; weights from the file size or the quant."""
        try:
            n_layers, n_head, n_kv, n_embd, n_ff, n_params = KNOWN_SHAPES[size.upper()]
        except KeyError:
            raise ValueError(f"unknown Llama-2 size {size!r}; known: 7B, 13B, 70B") from None
        if weights_bytes is None:
            weights_bytes = estimate_weights_bytes(n_params, quant)
        return cls(
            name=f"Llama-2 {size.upper()}", n_layers=n_layers, n_head=n_head, n_head_kv=n_kv,
            n_embd=n_embd, weights_bytes=weights_bytes, n_ff=n_ff, n_params=n_params,
        )


# layers, heads, KV heads, width, feed-forward width, parameters
KNOWN_SHAPES: dict[str, tuple[int, int, int, int, int, int]] = {
    "7B": (32, 32, 32, 4096, 11008, 6_738_415_616),
    "13B": (40, 40, 40, 5120, 13824, 13_015_864_320),
    "70B": (80, 64, 8, 8192, 28672, 68_976_648_192),
}


def estimate_weights_bytes(n_params: int, quant: str) -> int:
    """Approximate file size of ``n_params`` weights in quantization ``quant``."""
    bits = QUANT_BITS.get(quant.upper())
    if bits is None:
        raise ValueError(f"unknown quantization {quant!r}; known: {', '.join(QUANT_BITS)}")
    return int(n_params * bits / 8)


def kv_cache_bytes(shape: ModelShape, n_ctx: int, bytes_per_element: float = 2.0) -> int:
    """context × layers × KV heads × head size × 2 (K and V) × bytes per element."""
    return int(n_ctx * shape.n_layers * shape.n_head_kv * shape.head_dim * 2 * bytes_per_element)


def compute_bytes(shape: ModelShape, n_ctx: int, n_batch: int = DEFAULT_BATCH) -> int:
    """Allowance for llama.cpp's compute buffer: logits, attention scores and scratch."""
    batch = min(n_batch, n_ctx)
    return COMPUTE_BASE + shape.n_vocab * batch * 4 + n_ctx * batch * shape.n_head * 4


@dataclass(frozen=True)
class Plan:
    """Where a model goes at one context size, with the numbers behind the verdict."""

    verdict: Verdict
    gpu_layers: int  # -1 all layers, N partial, 0 CPU only
    n_layers: int
    n_ctx: int
    weights_bytes: int
    kv_bytes: int
    compute_bytes: int
    gpu_budget: int  # GPU + RPC workers
    ram_budget: int
    message: str
    workers: int = 0  # RPC workers counted

    @property
    def total_bytes(self) -> int:
        return self.weights_bytes + self.kv_bytes + self.compute_bytes

    @property
    def short(self) -> str:
        """A table cell: "fits on GPU", "partial 52/80", "CPU only (slow)", "won't fit"."""
        where = "workers" if self.workers else "GPU"
        if self.verdict is Verdict.PARTIAL:
            return f"partial {self.gpu_layers}/{self.n_layers} on {where}"
        if self.verdict is Verdict.FITS_GPU and self.workers:
            return "fits on workers"
        return self.verdict.value


def _mem(n: int | float) -> str:
    return format_size(n, binary=True)


def plan(
    model: ModelShape, n_ctx: int, hardware: Hardware, *, kv_bytes_per_element: float = 2.0,
    workers: Sequence[WorkerInfo] = (),
) -> Plan:
    """Decide GPU / partial / CPU / won't fit for ``model`` at ``n_ctx`` tokens on ``hardware``.

    ``workers`` are llama.cpp RPC workers (what each reported): llama.cpp treats their devices like
    GPUs, so their free memory adds to the offload budget ("GPU" below means GPU + workers).
    """
    n_ctx = max(1, int(n_ctx))
    weights = model.weights_bytes
    kv = kv_cache_bytes(model, n_ctx, kv_bytes_per_element)
    compute = compute_bytes(model, n_ctx)
    total = weights + kv + compute
    local_gpu = max(0, hardware.gpu_budget - GPU_RESERVE) if hardware.gpu_budget else 0
    remote = sum(max(0, w.free_bytes - WORKER_RESERVE) for w in workers)
    gpu = local_gpu + remote
    ram = max(0, hardware.ram_available - RAM_RESERVE)
    n_layers = model.n_layers
    need = (
        f"needs {_mem(total)} (weights {_mem(weights)} + KV cache {_mem(kv)} + compute "
        f"{_mem(compute)}) at {n_ctx:,} tokens"
    )
    where = "GPU"
    usable = f"{_mem(gpu)} GPU memory usable"
    named = f"{len(workers)} RPC worker{'s' if len(workers) != 1 else ''}"
    if workers:
        where = f"GPU + {named}" if local_gpu else named
        usable = f"{_mem(remote)} usable on {named}" + (f" + {_mem(local_gpu)} GPU" if local_gpu else "")

    def make(verdict: Verdict, layers: int, message: str) -> Plan:
        return Plan(verdict, layers, n_layers, n_ctx, weights, kv, compute, gpu, ram, message,
                    len(workers))

    # On unified memory (Apple) what is not on the workers shares RAM with the CPU.
    if gpu and total <= gpu and (not hardware.unified_memory or max(0, total - remote) <= ram):
        return make(Verdict.FITS_GPU, -1, f"Fits on {where}: {need}; {usable}.")
    per_layer = max(1, model.layer_bytes() + kv // max(1, n_layers))
    if gpu > compute + per_layer and n_layers > 0:
        layers = min(n_layers, (gpu - compute) // per_layer)
        on_gpu = layers * per_layer + compute
        cpu_need = model.outside_bytes() + (n_layers - layers) * per_layer + COMPUTE_BASE
        cpu_room = ram - max(0, on_gpu - remote) if hardware.unified_memory else ram
        if cpu_need <= cpu_room:
            return make(
                Verdict.PARTIAL, int(layers),
                f"Partial offload: {layers} of {n_layers} layers on {where} ({_mem(on_gpu)}; "
                f"{usable}), the rest in RAM ({_mem(cpu_need)} of {_mem(cpu_room)} "
                f"free); {need}.",
            )
    if total <= ram:
        why = "no usable GPU" if not gpu else "too little GPU memory for one layer"
        return make(
            Verdict.CPU_ONLY, 0,
            f"CPU only (slow): {need}; {_mem(ram)} RAM free, {why}.",
        )
    room = f"{_mem(ram)} RAM" + (f" + {_mem(local_gpu)} GPU" if local_gpu and not hardware.unified_memory
                                else "")
    room += f" + {_mem(remote)} on {named}" if workers else ""
    return make(
        Verdict.WONT_FIT, 0,
        f"Won't fit: {need}, but only {room} is free; pick a smaller quantization or model, "
        "or a shorter context.",
    )


def plan_for_file(path: str | Path, n_ctx: int, hardware: Hardware | None = None,
                  workers: Sequence[WorkerInfo] = ()) -> Plan:
    """Plan for a local GGUF from its header (parsed once per file version: see shape_of_file)."""
    from app.engine import hardware as hw

    return plan(shape_of_file(Path(path)), n_ctx, hardware or hw.detect(), workers=workers)


_shapes_lock = threading.Lock()
_shapes: dict[str, ModelShape] = {}  # this process's memo of shape_of_file


def shape_of_file(path: Path) -> ModelShape:
    """The planner's view of a GGUF file, cached by path, size and mtime.

    Parsing a GGUF header reads its whole vocabulary (seconds for big vocabularies), so the few
    numbers the planner needs are kept in the cache folder. Raises ModelFileError for bad files.
    """
    path = Path(path)
    try:
        stat = path.stat()
    except OSError:
        modelfile.check_model_file(path)  # names the path problem (missing, a loop...) in one line
        raise
    key = f"{modelfile.real_path(path)}|{stat.st_size}|{stat.st_mtime_ns}"
    if key in _shapes:
        return _shapes[key]
    cache = paths.cache_dir() / "model-shapes.json"
    with _shapes_lock:
        try:
            known = json.loads(cache.read_text("utf-8"))
        except (OSError, ValueError):
            known = {}
        cached = known.get(key) if isinstance(known, dict) else None
        if isinstance(cached, dict) and _plausible_shape(cached):
            with contextlib.suppress(TypeError):
                _shapes[key] = ModelShape(**cached)
                return _shapes[key]
        shape = _shapes[key] = ModelShape.from_file_info(modelfile.check_model_file(path))
        known = known if isinstance(known, dict) else {}
        known[key] = asdict(shape)
        try:
            fileio.write_text(cache, json.dumps(known, indent=1))
        except UserError as err:  # a cache: reading the header again next time is fine
            log.info("model shape cache not written: %s", err)
    return shape


def _plausible_shape(cached: dict[str, Any]) -> bool:
    """A cached shape is used only if its numbers could come from a validated header."""
    counts = ("n_layers", "n_head", "n_head_kv", "n_embd", "weights_bytes", "n_vocab")
    return all(isinstance(cached.get(k), int) and not isinstance(cached.get(k), bool)
               and cached[k] > 0 for k in counts)
