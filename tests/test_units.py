"""The shared byte-size and duration formatters."""

from __future__ import annotations

import pytest

from app.units import format_duration, format_size


@pytest.mark.parametrize(("n", "text"), [
    (0, "0 B"), (999, "999 B"), (1000, "1 KB"), (35_400, "35 KB"), (999_499, "999 KB"),
    (999_500, "1.0 MB"), (3_200_000, "3.2 MB"), (4_080_000_000, "4.08 GB"),
    (41_420_000_000, "41.42 GB"), (2.5e12, "2.50 TB"), (7e15, "7000.00 TB"),
])
def test_sizes_in_decimal_units(n: float, text: str) -> None:
    assert format_size(n) == text


@pytest.mark.parametrize(("n", "text"), [
    (512, "512 B"), (2048, "2 KiB"), (72 * 1024**2, "72.0 MiB"), (1023.96 * 1024**2, "1.0 GiB"),
    (int(16.4 * 1024**3), "16.4 GiB"), (3 * 1024**4, "3.00 TiB"),
])
def test_memory_in_binary_units(n: float, text: str) -> None:
    assert format_size(n, binary=True) == text


@pytest.mark.parametrize("n", [None, -1, float("nan"), float("inf")])
def test_unknown_sizes(n: float | None) -> None:
    assert format_size(n) == "?"
    assert format_size(n, unknown="") == ""


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0 s"), (0.4, "0 s"), (45.2, "45 s"), (59.6, "1 min 00 s"), (185, "3 min 05 s"),
    (3599, "59 min 59 s"), (3600, "1 h 00 min"), (7620, "2 h 07 min"), (99 * 3600, "99 h 00 min"),
])
def test_durations(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize("seconds", [None, -3, float("nan"), float("inf"), 99 * 3600 + 1])
def test_unknown_durations(seconds: float | None) -> None:
    assert format_duration(seconds) == "?"
    assert format_duration(seconds, unknown="--:--") == "--:--"
