"""argparse value types that refuse what no command can use: negative counts, NaN, absurd sizes."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def whole(low: int, high: int | None = None) -> Callable[[str], int]:
    """A whole number from ``low`` to ``high`` (inclusive), else argparse's one-line error."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < low or (high is not None and value > high):
            limit = f"{low:,} to {high:,}" if high is not None else f"at least {low:,}"
            raise argparse.ArgumentTypeError(f"{value:,} is out of range; use {limit}")
        return value

    return parse


def finite(low: float | None = None, high: float | None = None) -> Callable[[str], float]:
    """A finite number (never NaN or an infinity), optionally within ``low``..``high``."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
        if (low is not None and value < low) or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"{value:g} is out of range; use {low:g} to {high:g}")
        return value

    return parse


# The engine's own limits (LoadOptions), so a bad --ctx fails before anything is loaded.
context_size = whole(256, 1_048_576)
positive = whole(1)
