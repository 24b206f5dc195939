"""Sampling settings: one range table, checked on every Sampling built."""

from __future__ import annotations

import dataclasses

import pytest

from app.engine.types import SAMPLING_RANGES, Sampling
from app.errors import SettingsError


def test_every_sampling_field_has_a_range_holding_its_default() -> None:
    fields = [f.name for f in dataclasses.fields(Sampling)]
    assert list(SAMPLING_RANGES) == fields
    defaults = Sampling()
    for name, allowed in SAMPLING_RANGES.items():
        value = getattr(defaults, name)
        assert value is None or allowed.low <= value <= allowed.high, name
    assert [n for n, r in SAMPLING_RANGES.items() if r.whole] == ["top_k", "max_tokens", "seed"]


@pytest.mark.parametrize(("values", "message"), [
    ({"temperature": 5.01}, r"temperature=5.01 is out of range; use 0.0 to 5.0"),
    ({"top_p": -0.1}, r"top_p=-0.1 is out of range"),
    ({"max_tokens": 0}, r"max_tokens=0 is out of range; use 1 to 131072"),
    ({"seed": 2**32}, r"seed=4294967296 is out of range; use 0 to 4294967295"),
    ({"top_k": 2.5}, r"top_k must be a whole number, got 2.5"),
    ({"min_p": "a lot"}, r"min_p must be a number, got 'a lot'"),
    ({"repeat_penalty": True}, r"repeat_penalty must be a number, got True"),
])
def test_values_outside_the_table_are_refused(values: dict[str, object], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        Sampling.from_dict(values)


def test_bounds_themselves_are_accepted() -> None:
    low = {n: (int(r.low) if r.whole else r.low) for n, r in SAMPLING_RANGES.items()}
    high = {n: (int(r.high) if r.whole else r.high) for n, r in SAMPLING_RANGES.items()}
    assert Sampling.from_dict(low).to_dict() == low
    assert Sampling.from_dict(high).to_dict() == high
    assert Sampling(seed=None).seed is None
