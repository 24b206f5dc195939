"""Hardware probing: backend names, Metal's working set, NVML with and without a GPU."""

from __future__ import annotations

import sys
import types
from typing import Any

import pytest

from app.engine import hardware
from app.engine.hardware import GIB, Gpu, Hardware


def test_backend_names_from_system_info() -> None:
    assert hardware.backend_from_system_info("CUDA : ARCHS = 890 | USE_GRAPHS = 1 | CPU : AVX2 = 1") == "CUDA"
    assert hardware.backend_from_system_info("Metal : EMBED_LIBRARY = 1 | CPU : NEON = 1") == "Metal"
    assert hardware.backend_from_system_info("Vulkan : | CPU : AVX = 1") == "Vulkan"
    assert hardware.backend_from_system_info("CPU : SSE3 = 1 | AVX = 1 | OPENMP = 1") == "CPU"


def test_metal_working_set() -> None:
    assert hardware.metal_working_set(16 * GIB, None) == int(16 * GIB * 2 / 3)
    assert hardware.metal_working_set(64 * GIB, None) == int(64 * GIB * 0.75)
    assert hardware.metal_working_set(64 * GIB, 60_000) == 60_000 * 1024 * 1024


def test_detect_on_this_machine_is_sane() -> None:
    hw = hardware.detect()
    assert hw.ram_total > 0
    assert 0 < hw.ram_available <= hw.ram_total
    assert hw.backend in {"CPU", "CUDA", "Metal", "Vulkan", "ROCm", "SYCL"}
    assert "RAM" in hw.describe() and "llama.cpp" in hw.describe()


def test_free_memory_is_read_at_each_call(monkeypatch: Any) -> None:
    """Static facts are probed once; free memory is what is free now (the window runs for days)."""
    import psutil

    first = hardware.detect()
    real = psutil.virtual_memory()

    class Squeezed:
        total, available = real.total, 1 * GIB

    monkeypatch.setattr(psutil, "virtual_memory", lambda: Squeezed())
    later = hardware.detect()
    assert later.ram_available == 1 * GIB
    assert later.ram_total == first.ram_total and later.backend == first.backend


class _Mem:
    total, free = 24 * GIB, 20 * GIB


def _fake_nvml(**overrides: Any) -> types.ModuleType:
    mod = types.ModuleType("pynvml")
    calls: dict[str, Any] = {
        "nvmlInit": lambda: None, "nvmlShutdown": lambda: None,
        "nvmlDeviceGetCount": lambda: 1, "nvmlDeviceGetHandleByIndex": lambda i: i,
        "nvmlDeviceGetMemoryInfo": lambda h: _Mem(),
        "nvmlDeviceGetName": lambda h: b"NVIDIA GeForce RTX 4090",
    }
    calls.update(overrides)
    for name, fn in calls.items():
        setattr(mod, name, fn)
    return mod


def test_nvml_gpu_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", _fake_nvml())
    assert hardware._nvidia_gpus() == (Gpu("NVIDIA GeForce RTX 4090", 24 * GIB, 20 * GIB),)


def test_no_nvidia_driver_is_not_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail() -> None:
        raise RuntimeError("NVML Shared Library Not Found")

    monkeypatch.setitem(sys.modules, "pynvml", _fake_nvml(nvmlInit=fail))
    assert hardware._nvidia_gpus() == ()
    monkeypatch.setitem(sys.modules, "pynvml", None)  # not installed at all
    assert hardware._nvidia_gpus() == ()


def test_gpu_budget_rules() -> None:
    card = (Gpu("A", 24 * GIB, 20 * GIB), Gpu("B", 12 * GIB, 11 * GIB))
    assert Hardware(8 * GIB, 8 * GIB, card, offload_supported=True).gpu_budget == 20 * GIB
    assert Hardware(8 * GIB, 8 * GIB, card, offload_supported=False).gpu_budget == 0
    assert Hardware(8 * GIB, 8 * GIB, (), offload_supported=True).gpu_budget == 0
    mac = Hardware(16 * GIB, 6 * GIB, unified_memory=True, metal_working_set=10 * GIB,
                   offload_supported=True)
    assert mac.gpu_budget == 6 * GIB  # never more than what is free right now
