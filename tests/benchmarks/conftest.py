"""Benchmark fixtures: the window fixture of the UI tests, for the window benchmarks."""

from tests.ui.conftest import make_window  # noqa: F401
