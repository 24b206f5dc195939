"""What this machine offers a model: RAM, NVIDIA VRAM, Apple unified memory, llama.cpp's backend."""

from __future__ import annotations

import contextlib
import functools
import logging
import platform
import subprocess
import threading
from dataclasses import dataclass, field

from app.units import format_size

log = logging.getLogger(__name__)

GIB = 1024**3


@dataclass(frozen=True)
class Gpu:
    """One GPU as NVML (or Metal) reports it."""

    name: str
    vram_total: int
    vram_free: int


@dataclass(frozen=True)
class Hardware:
    """Memory the planner may use; all sizes in bytes."""

    ram_total: int
    ram_available: int
    gpus: tuple[Gpu, ...] = field(default_factory=tuple)
    unified_memory: bool = False  # Apple Silicon: GPU and CPU share RAM
    metal_working_set: int | None = None  # Metal's recommended max working set (Apple only)
    offload_supported: bool = False  # the installed llama-cpp-python can put layers on a GPU
    backend: str = "CPU"  # "CUDA", "Metal", "Vulkan", "ROCm", "SYCL" or "CPU"

    @property
    def gpu_budget(self) -> int:
        """Bytes llama.cpp may place on the GPU (0 when it cannot offload at all)."""
        if not self.offload_supported:
            return 0
        if self.unified_memory:
            limit = self.metal_working_set or int(self.ram_total * 2 / 3)
            return max(0, min(limit, self.ram_available))
        if not self.gpus:
            return 0
        return max(g.vram_free for g in self.gpus)

    def describe(self) -> str:
        """One line for `llama-desk models` and the model manager."""
        def mem(n: int) -> str:
            return format_size(n, binary=True)

        parts = [f"RAM {mem(self.ram_available)} free of {mem(self.ram_total)}"]
        for gpu in self.gpus:
            parts.append(f"{gpu.name} {mem(gpu.vram_free)} free of {mem(gpu.vram_total)}")
        if self.unified_memory and self.metal_working_set:
            parts.append(f"Metal working set {mem(self.metal_working_set)}")
        offload = "GPU offload" if self.offload_supported else "no GPU offload"
        parts.append(f"llama.cpp {self.backend} ({offload})")
        return "; ".join(parts)


def backend_from_system_info(info: str) -> str:
    """The GPU backend named in ``llama_print_system_info()`` text, else "CPU"."""
    upper = info.upper()
    for name, marker in (
        ("CUDA", "CUDA"), ("Metal", "METAL"), ("Vulkan", "VULKAN"), ("ROCm", "HIP"),
        ("ROCm", "ROCM"), ("SYCL", "SYCL"),
    ):
        if marker in upper:
            return name
    return "CPU"


def _llama_backend() -> tuple[bool, str]:
    try:
        import llama_cpp

        from app import logs

        logs.route_llama_cpp_logs()
        supported = bool(llama_cpp.llama_supports_gpu_offload())
        raw = llama_cpp.llama_print_system_info()
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    except Exception as err:  # llama.cpp missing or broken: plan for the CPU
        log.warning("cannot query llama.cpp backend: %s", err)
        return False, "CPU"
    backend = backend_from_system_info(text)
    # llama_supports_gpu_offload() is also true for a CPU build with RPC (layers can go to
    # workers); the workers' memory is planned apart, so only a local GPU backend counts here.
    return supported and backend != "CPU", backend


def _nvidia_gpus() -> tuple[Gpu, ...]:
    try:
        import pynvml
    except ImportError:
        return ()
    try:
        pynvml.nvmlInit()
    except Exception:  # no driver, no GPU: not an error
        return ()
    gpus: list[Gpu] = []
    try:
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            mem = pynvml.nvmlDeviceGetMemoryInfo(handle)
            name = pynvml.nvmlDeviceGetName(handle)
            if isinstance(name, bytes):
                name = name.decode("utf-8", "replace")
            gpus.append(Gpu(name=str(name), vram_total=int(mem.total), vram_free=int(mem.free)))
    except Exception as err:
        log.warning("NVML query failed: %s", err)
    finally:
        with contextlib.suppress(Exception):
            pynvml.nvmlShutdown()
    return tuple(gpus)


def _sysctl_int(name: str) -> int | None:
    try:
        out = subprocess.run(
            ["sysctl", "-n", name], capture_output=True, text=True, timeout=2, check=False
        ).stdout.strip()
        return int(out) if out else None
    except (OSError, ValueError, subprocess.SubprocessError):
        return None


def metal_working_set(ram_total: int, wired_limit_mb: int | None) -> int:
    """Metal's recommendedMaxWorkingSetSize as macOS sets it (a user's iogpu limit wins).

    macOS lets the GPU wire about two thirds of RAM on machines up to 36 GiB, three quarters
    above; ``sysctl iogpu.wired_limit_mb`` overrides it when a user raised it.
    """
    if wired_limit_mb:
        return wired_limit_mb * 1024 * 1024
    return int(ram_total * (0.75 if ram_total > 36 * GIB else 2 / 3))


@dataclass(frozen=True)
class _Static:
    """What does not change while the app runs: totals, the platform, llama.cpp's backend."""

    ram_total: int
    offload: bool
    backend: str
    apple: bool
    metal_working_set: int | None
    nvidia: bool


_STATIC_LOCK = threading.Lock()


def _static() -> _Static:
    """Probe once; concurrent first callers wait for that one probe (two threads importing
    pynvml and llama_cpp at the same moment under PySide6's import hook aborted the process)."""
    with _STATIC_LOCK:
        return _probe_static()


@functools.lru_cache(maxsize=1)
def _probe_static() -> _Static:
    import psutil

    ram_total = int(psutil.virtual_memory().total)
    offload, backend = _llama_backend()
    apple = platform.system() == "Darwin" and platform.machine() == "arm64"
    working_set = None
    if apple:
        ram_total = _sysctl_int("hw.memsize") or ram_total
        working_set = metal_working_set(ram_total, _sysctl_int("iogpu.wired_limit_mb"))
    return _Static(ram_total, offload, backend, apple, working_set,
                   nvidia=not apple and bool(_nvidia_gpus()))


def detect() -> Hardware:
    """This machine now: the static facts are probed once, free RAM and VRAM on every call
    (a window runs for days; a fit decision must use the memory free at that moment)."""
    import psutil

    static = _static()
    ram_available = int(psutil.virtual_memory().available)
    if static.apple:
        working_set = static.metal_working_set or 0
        return Hardware(
            ram_total=static.ram_total, ram_available=ram_available,
            gpus=(Gpu("Apple GPU", working_set, min(working_set, ram_available)),),
            unified_memory=True, metal_working_set=static.metal_working_set,
            offload_supported=static.offload, backend=static.backend,
        )
    gpus = _nvidia_gpus() if static.nvidia else ()
    return Hardware(
        ram_total=static.ram_total, ram_available=ram_available, gpus=gpus,
        offload_supported=static.offload and bool(gpus or static.backend != "CPU"),
        backend=static.backend,
    )
