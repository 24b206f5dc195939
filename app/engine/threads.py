"""CPU threads for llama.cpp, chosen as llama.cpp does: performance cores for decode, all for batches."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

SYS_CPU = Path("/sys/devices/system/cpu")


@dataclass(frozen=True)
class ThreadChoice:
    """Threads for decoding one token at a time, and for reading prompt batches.

    ``why`` says in a few words where the numbers come from ("auto: 4 performance cores of 8
    usable CPUs", "set: 3"), for ``bench`` and the status line.
    """

    decode: int
    batch: int
    why: str

    def short(self) -> str:
        """'2 threads' or '4 + 8 threads' (decode + prompt batches)."""
        if self.decode == self.batch:
            return f"{self.decode} thread{'s' if self.decode != 1 else ''}"
        return f"{self.decode} + {self.batch} threads"


def usable_cpus() -> list[int]:
    """The logical CPUs this process may run on (its affinity mask, where the OS has one)."""
    getter = getattr(os, "sched_getaffinity", None)
    if getter is not None:
        try:
            return sorted(getter(0))
        except OSError:
            pass
    return list(range(os.cpu_count() or 1))


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return ""


def parse_cpu_list(text: str) -> set[int]:
    """'0-3,8,10-11' -> {0, 1, 2, 3, 8, 10, 11} (the kernel's cpulist format)."""
    out: set[int] = set()
    for part in text.replace("\n", ",").split(","):
        part = part.strip()
        if not part:
            continue
        low, _, high = part.partition("-")
        try:
            out.update(range(int(low), int(high or low) + 1))
        except ValueError:
            continue
    return out


def linux_performance_cores(cpus: list[int], sys_cpu: Path = SYS_CPU) -> int | None:
    """Physical performance cores among ``cpus`` from sysfs; None when sysfs cannot tell.

    Hyper-threads of one core count once (``topology/core_cpus_list``, or the older
    ``thread_siblings_list``). On Intel hybrid CPUs the efficiency cores are left out, as
    llama.cpp's ``cpu_get_num_math`` does: the kernel lists the performance cores in
    ``/sys/devices/cpu_core/cpus``.
    """
    perf = parse_cpu_list(_read(sys_cpu.parent.parent / "cpu_core" / "cpus"))
    chosen = [c for c in cpus if c in perf] if perf else list(cpus)
    if not chosen:  # the affinity mask holds only efficiency cores: use them
        chosen = list(cpus)
    cores: set[frozenset[int]] = set()
    for cpu in chosen:
        topo = sys_cpu / f"cpu{cpu}" / "topology"
        siblings = parse_cpu_list(_read(topo / "core_cpus_list")
                                  or _read(topo / "thread_siblings_list"))
        if not siblings:
            return None
        cores.add(frozenset(siblings))
    return len(cores) or None


def _mac_performance_cores() -> int | None:
    import subprocess

    for name in ("hw.perflevel0.physicalcpu", "hw.physicalcpu"):
        try:
            out = subprocess.run(["sysctl", "-n", name], capture_output=True, text=True,
                                 timeout=2, check=False).stdout.strip()
            if out.isdigit() and int(out) > 0:
                return int(out)
        except (OSError, subprocess.SubprocessError):
            continue
    return None


def _physical_cores_psutil() -> int | None:
    try:
        import psutil

        return psutil.cpu_count(logical=False) or None
    except Exception:  # psutil missing or unable to tell on this OS
        return None


@lru_cache(maxsize=1)
def _auto() -> tuple[int, int, str]:
    cpus = usable_cpus()
    usable = len(cpus)
    cores: int | None = None
    if sys.platform.startswith("linux"):
        cores = linux_performance_cores(cpus)
    elif sys.platform == "darwin":
        cores = _mac_performance_cores()
    if cores is None:
        physical = _physical_cores_psutil()
        total = os.cpu_count() or usable
        # Scale the machine's physical cores to the share of CPUs this process may use.
        cores = max(1, round(physical * usable / total)) if physical else max(1, usable // 2)
    cores = max(1, min(cores, usable))
    kind = "performance cores" if sys.platform == "darwin" or \
        Path("/sys/devices/cpu_core/cpus").exists() else "physical cores"
    return cores, usable, f"{cores} {kind} of {usable} usable CPU{'s' if usable != 1 else ''}"


def choose_threads(decode: int | None = None, batch: int | None = None) -> ThreadChoice:
    """The threads a model is loaded with: ``decode`` / ``batch`` when set, else automatic.

    Automatic: one decode thread per physical performance core the process may use (decoding
    is memory-bound, and a hyper-thread or an efficiency core slows the whole team down), and
    every usable logical CPU for prompt batches (compute-bound, where extra threads help).
    """
    cores, usable, why = _auto()
    auto_decode, auto_batch = decode is None, batch is None
    d = decode if decode is not None else cores
    b = batch if batch is not None else max(usable, d)
    if auto_decode and auto_batch:
        text = f"auto: {why}"
    elif not auto_decode and not auto_batch:
        text = "set in Settings"
    else:
        text = f"{'decode' if not auto_decode else 'prompt'} set, the other auto ({why})"
    return ThreadChoice(d, b, text)
