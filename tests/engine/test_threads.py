"""Thread choice: physical performance cores for decode, every usable CPU for prompt batches."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.engine import threads
from app.engine.threads import choose_threads, linux_performance_cores, parse_cpu_list


def fake_sysfs(root: Path, siblings: dict[int, str], perf_cores: str | None = None) -> Path:
    """/sys/devices/system/cpu with one topology folder per CPU (and cpu_core/cpus if hybrid)."""
    sys_cpu = root / "devices" / "system" / "cpu"
    for cpu, text in siblings.items():
        topo = sys_cpu / f"cpu{cpu}" / "topology"
        topo.mkdir(parents=True)
        (topo / "core_cpus_list").write_text(text + "\n")
    if perf_cores is not None:
        (root / "devices" / "cpu_core").mkdir(parents=True)
        (root / "devices" / "cpu_core" / "cpus").write_text(perf_cores + "\n")
    return sys_cpu


def test_parse_cpu_list() -> None:
    assert parse_cpu_list("0-3,8,10-11\n") == {0, 1, 2, 3, 8, 10, 11}
    assert parse_cpu_list("") == set() and parse_cpu_list("x,2") == {2}


def test_hyperthreads_count_once(tmp_path: Path) -> None:
    # 4 cores with 2 threads each: cpu n and n+4 are siblings.
    sys_cpu = fake_sysfs(tmp_path, {c: f"{c % 4},{c % 4 + 4}" for c in range(8)})
    assert linux_performance_cores(list(range(8)), sys_cpu) == 4
    # The affinity mask limits the count: cpus 0, 4 (one core) and 1.
    assert linux_performance_cores([0, 4, 1], sys_cpu) == 2


def test_efficiency_cores_are_left_out(tmp_path: Path) -> None:
    # Intel hybrid: P-cores 0-3 (2 cores × 2 threads), E-cores 4-7 (one thread each).
    siblings = {0: "0-1", 1: "0-1", 2: "2-3", 3: "2-3", 4: "4", 5: "5", 6: "6", 7: "7"}
    sys_cpu = fake_sysfs(tmp_path, siblings, perf_cores="0-3")
    assert linux_performance_cores(list(range(8)), sys_cpu) == 2
    # Pinned to E-cores only: those are what there is.
    assert linux_performance_cores([5, 6], sys_cpu) == 2


def test_unknown_topology_gives_none(tmp_path: Path) -> None:
    sys_cpu = tmp_path / "devices" / "system" / "cpu"
    sys_cpu.mkdir(parents=True)
    assert linux_performance_cores([0, 1], sys_cpu) is None


def test_choice_respects_settings_and_affinity(monkeypatch: pytest.MonkeyPatch) -> None:
    threads._auto.cache_clear()
    monkeypatch.setattr(threads, "usable_cpus", lambda: [0, 1, 2, 5, 6, 7])
    monkeypatch.setattr(threads, "linux_performance_cores", lambda cpus: 3)
    monkeypatch.setattr(threads.sys, "platform", "linux")
    try:
        auto = choose_threads()
        assert (auto.decode, auto.batch) == (3, 6) and "3 " in auto.why and "6 usable" in auto.why
        assert auto.short() == "3 + 6 threads"
        assert (choose_threads(2).decode, choose_threads(2).batch) == (2, 6)
        fixed = choose_threads(4, 4)
        assert (fixed.decode, fixed.batch, fixed.why) == (4, 4, "set in Settings")
        assert fixed.short() == "4 threads"
    finally:
        threads._auto.cache_clear()


def test_this_machine() -> None:
    choice = choose_threads()
    usable = len(threads.usable_cpus())
    assert 1 <= choice.decode <= usable and choice.batch == usable
