"""The fit planner's arithmetic and verdict boundaries, on synthetic hardware."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.engine.hardware import GIB, Gpu, Hardware
from app.engine.planner import (
    GPU_RESERVE,
    RAM_RESERVE,
    WORKER_RESERVE,
    ModelShape,
    Verdict,
    compute_bytes,
    estimate_weights_bytes,
    kv_cache_bytes,
    plan,
    plan_for_file,
)
from app.engine.rpc import WorkerInfo
from tests.hub.fixtures import tiny_gguf

SEVEN = ModelShape.known("7B", weights_bytes=4_081_004_224)
SEVENTY = ModelShape.known("70B", quant="Q4_K_M")


def cpu(ram: int) -> Hardware:
    return Hardware(ram_total=ram, ram_available=ram)


def gpu(vram: int, ram: int = 64 * GIB) -> Hardware:
    return Hardware(ram_total=ram, ram_available=ram, gpus=(Gpu("Test GPU", vram, vram),),
                    offload_supported=True, backend="CUDA")


def test_kv_cache_matches_the_issue_numbers() -> None:
    assert kv_cache_bytes(SEVEN, 4096) == 2 * GIB
    assert kv_cache_bytes(SEVENTY, 4096) == int(1.25 * GIB)
    assert kv_cache_bytes(ModelShape.known("13B"), 4096) == int(3.125 * GIB)
    assert kv_cache_bytes(SEVEN, 2048) == 1 * GIB
    assert kv_cache_bytes(SEVEN, 4096, bytes_per_element=1) == 1 * GIB


def test_known_shapes_and_quant_estimates() -> None:
    seventy = ModelShape.known("70B")
    assert (seventy.n_layers, seventy.n_head, seventy.n_head_kv, seventy.n_embd) == (80, 64, 8, 8192)
    assert seventy.head_dim == 128
    thirteen = ModelShape.known("13b")
    assert (thirteen.n_layers, thirteen.n_head, thirteen.n_head_kv, thirteen.n_embd) == (
        40, 40, 40, 5120)
    # TheBloke's 7B Q4_K_M is 4.08 GB, 70B Q4_K_M 41.42 GB: the estimate is within 3%.
    assert estimate_weights_bytes(6_738_415_616, "Q4_K_M") == pytest.approx(4.08e9, rel=0.03)
    assert SEVENTY.weights_bytes == pytest.approx(41.42e9, rel=0.03)
    with pytest.raises(ValueError, match="unknown quantization"):
        estimate_weights_bytes(1, "Q9_X")
    with pytest.raises(ValueError, match="known: 7B, 13B, 70B"):
        ModelShape.known("34B")


def test_layer_split_adds_up() -> None:
    assert SEVEN.layer_bytes() * 32 + SEVEN.outside_bytes() == SEVEN.weights_bytes
    # embedding + output head are ~4% of a 7B model
    assert 0.02 < SEVEN.outside_bytes() / SEVEN.weights_bytes < 0.06


def test_fits_on_gpu_boundary() -> None:
    need = plan(SEVEN, 4096, cpu(1)).total_bytes
    exact = plan(SEVEN, 4096, gpu(need + GPU_RESERVE))
    assert exact.verdict is Verdict.FITS_GPU
    assert exact.gpu_layers == -1
    assert "Fits on GPU" in exact.message and "4,096 tokens" in exact.message
    short = plan(SEVEN, 4096, gpu(need + GPU_RESERVE - 1))
    assert short.verdict is Verdict.PARTIAL
    assert 0 < short.gpu_layers <= 32


def test_partial_offload_counts_layers() -> None:
    hw = gpu(24 * GIB, ram=64 * GIB)
    result = plan(SEVENTY, 4096, hw)
    assert result.verdict is Verdict.PARTIAL
    per_layer = SEVENTY.layer_bytes() + result.kv_bytes // 80
    expected = (24 * GIB - GPU_RESERVE - result.compute_bytes) // per_layer
    assert result.gpu_layers == expected
    assert f"{expected} of 80 layers on GPU" in result.message
    assert result.short == f"partial {expected}/80 on GPU"


def test_cpu_only_and_wont_fit_boundary() -> None:
    need = plan(SEVEN, 4096, cpu(1)).total_bytes
    fits = plan(SEVEN, 4096, cpu(need + RAM_RESERVE))
    assert fits.verdict is Verdict.CPU_ONLY
    assert fits.gpu_layers == 0
    assert "slow" in fits.message and "no usable GPU" in fits.message
    nope = plan(SEVEN, 4096, cpu(need + RAM_RESERVE - 1))
    assert nope.verdict is Verdict.WONT_FIT
    assert "smaller quantization" in nope.message


def test_gpu_without_offload_support_plans_cpu() -> None:
    hw = Hardware(ram_total=64 * GIB, ram_available=64 * GIB,
                  gpus=(Gpu("Test GPU", 80 * GIB, 80 * GIB),), offload_supported=False)
    assert hw.gpu_budget == 0
    assert plan(SEVEN, 4096, hw).verdict is Verdict.CPU_ONLY


def test_tiny_gpu_falls_back_to_cpu() -> None:
    result = plan(SEVENTY, 4096, gpu(GPU_RESERVE + 100 * 1024**2, ram=128 * GIB))
    assert result.verdict is Verdict.CPU_ONLY
    assert "too little GPU memory" in result.message


def test_partial_that_leaves_too_much_for_ram_wont_fit() -> None:
    result = plan(SEVENTY, 4096, gpu(12 * GIB, ram=8 * GIB))
    assert result.verdict is Verdict.WONT_FIT
    assert "GPU" in result.message


def test_apple_unified_memory_uses_the_working_set() -> None:
    mac = Hardware(ram_total=32 * GIB, ram_available=28 * GIB, unified_memory=True,
                   metal_working_set=21 * GIB, offload_supported=True, backend="Metal")
    assert mac.gpu_budget == 21 * GIB
    assert plan(SEVEN, 4096, mac).verdict is Verdict.FITS_GPU
    assert plan(SEVENTY, 4096, mac).verdict is Verdict.WONT_FIT
    small_mac = Hardware(ram_total=24 * GIB, ram_available=20 * GIB, unified_memory=True,
                         metal_working_set=14 * GIB, offload_supported=True, backend="Metal")
    big = plan(ModelShape.known("13B", quant="Q8_0"), 4096, small_mac)
    assert big.verdict is Verdict.PARTIAL  # 16.4 GiB: beyond the working set, within RAM
    assert 0 < big.gpu_layers < 40


def test_longer_context_changes_the_verdict() -> None:
    hw = gpu(8 * GIB)
    assert plan(SEVEN, 2048, hw).verdict is Verdict.FITS_GPU
    assert plan(SEVEN, 8192, hw).verdict is Verdict.PARTIAL
    assert compute_bytes(SEVEN, 8192) > compute_bytes(SEVEN, 2048)


def test_shape_from_file_and_its_plan(tmp_path: Path) -> None:
    path = tmp_path / "tiny.gguf"
    tiny_gguf(path, payload_mib=1)
    from app.engine.modelfile import check_model_file

    shape = ModelShape.from_file_info(check_model_file(path))
    assert (shape.n_layers, shape.n_head, shape.n_head_kv, shape.n_embd) == (2, 4, 4, 64)
    assert shape.weights_bytes == 1024 * 1024
    on_gpu = plan(shape, 4096, gpu(8 * GIB))
    assert (on_gpu.verdict, on_gpu.gpu_layers) == (Verdict.FITS_GPU, -1)
    on_cpu = plan(shape, 4096, cpu(8 * GIB))
    assert (on_cpu.verdict, on_cpu.gpu_layers) == (Verdict.CPU_ONLY, 0)
    too_big = plan(shape, 4096, cpu(1))
    assert (too_big.verdict, too_big.gpu_layers) == (Verdict.WONT_FIT, 0)


def test_plan_for_file_parses_each_file_version_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.engine import modelfile

    path = tmp_path / "tiny.gguf"
    tiny_gguf(path, payload_mib=1)
    parsed: list[Path] = []
    real_check = modelfile.check_model_file

    def counting_check(p: Path) -> modelfile.ModelFileInfo:
        parsed.append(Path(p))
        return real_check(p)

    monkeypatch.setattr(modelfile, "check_model_file", counting_check)
    first = plan_for_file(path, 512, cpu(8 * GIB))
    assert first.verdict is Verdict.CPU_ONLY and first.n_layers == 2
    assert plan_for_file(str(path), 512, cpu(8 * GIB)) == first
    assert parsed == [path]  # the second plan used the cached shape


def workers(*gib_free: float) -> list[WorkerInfo]:
    return [WorkerInfo(f"10.0.0.{i + 2}:50052", (7, 0, 0), ((int(g * GIB), int(g * GIB)),))
            for i, g in enumerate(gib_free)]


def test_workers_memory_lets_a_70b_be_planned_across_machines() -> None:
    desktop = cpu(16 * GIB)
    alone = plan(SEVENTY, 4096, desktop)
    assert alone.verdict is Verdict.WONT_FIT
    assert plan(SEVENTY, 4096, desktop, workers=workers(24, 24)).verdict is Verdict.FITS_GPU
    spread = plan(SEVENTY, 4096, desktop, workers=workers(24, 24))
    assert spread.gpu_layers == -1 and spread.workers == 2 and spread.short == "fits on workers"
    assert spread.gpu_budget == 48 * GIB - 2 * WORKER_RESERVE
    assert "2 RPC workers" in spread.message
    # One 24 GiB worker holds part of it; the rest stays in the desktop's RAM.
    partial = plan(SEVENTY, 4096, desktop, workers=workers(32))
    assert partial.verdict is Verdict.PARTIAL and 0 < partial.gpu_layers < 80
    assert partial.short == f"partial {partial.gpu_layers}/80 on workers"
    assert "1 RPC worker" in partial.message and "the rest in RAM" in partial.message
    # Too little everywhere: the message counts the workers too.
    short = plan(SEVENTY, 4096, cpu(8 * GIB), workers=workers(4))
    assert short.verdict is Verdict.WONT_FIT and "on 1 RPC worker" in short.message


def test_workers_add_to_a_local_gpu() -> None:
    both = plan(SEVENTY, 4096, gpu(24 * GIB, ram=16 * GIB), workers=workers(24))
    assert both.verdict is Verdict.FITS_GPU
    assert both.gpu_budget == 48 * GIB - GPU_RESERVE - WORKER_RESERVE
    assert "GPU + 1 RPC worker" in both.message
