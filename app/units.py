"""Byte sizes and durations as people read them: the one formatter of each for every face."""

from __future__ import annotations

import math

# Decimal units for files, downloads and speeds (as the Hub and model cards give them), binary
# units for memory (as llama.cpp, the OS and GPU tools report it); decimals per unit.
_DECIMAL = (("B", 0), ("KB", 0), ("MB", 1), ("GB", 2), ("TB", 2))
_BINARY = (("B", 0), ("KiB", 0), ("MiB", 1), ("GiB", 1), ("TiB", 2))
MAX_DURATION_S = 99 * 3600  # an estimate further out than this means nothing


def format_size(n: float | None, *, binary: bool = False, unknown: str = "?") -> str:
    """``n`` bytes in the largest unit that keeps the figure below 1000 (1024 with ``binary``).

    "512 B", "35 KB", "3.2 MB", "4.08 GB"; binary: "72.0 MiB", "16.4 GiB". None or a negative
    or non-finite number is ``unknown``.
    """
    if n is None or not math.isfinite(n) or n < 0:
        return unknown
    step, units = (1024, _BINARY) if binary else (1000, _DECIMAL)
    value = float(n)
    for unit, decimals in units[:-1]:
        if round(value, decimals) < step:
            return f"{value:.{decimals}f} {unit}"
        value /= step
    unit, decimals = units[-1]
    return f"{value:.{decimals}f} {unit}"


def format_estimate(seconds: float) -> str:
    """A rough time that an estimate deserves: "~3 min", "~2.5 h" (never below a minute)."""
    minutes = max(1, round(seconds / 60)) if math.isfinite(seconds) else 1
    return f"~{minutes} min" if minutes < 90 else f"~{minutes / 60:.1f} h"


def format_duration(seconds: float | None, *, unknown: str = "?") -> str:
    """A countdown or elapsed time to the second: "45 s", "3 min 05 s", "2 h 07 min".

    None, a negative or non-finite number, or more than 99 hours is ``unknown``.
    """
    if seconds is None or not math.isfinite(seconds) or seconds < 0 or seconds > MAX_DURATION_S:
        return unknown
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s // 60 % 60:02d} min"
