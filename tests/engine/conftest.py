"""Engine fixtures: the starter model loaded once per module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from app.engine.engine import LlamaEngine, LoadOptions


def loaded_engine(model: Path, n_ctx: int) -> Iterator[LlamaEngine]:
    """A LlamaEngine with ``model`` loaded on the CPU, closed afterwards (for fixtures)."""
    engine = LlamaEngine()
    engine.load(model, LoadOptions(n_ctx=n_ctx, n_gpu_layers=0))
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def starter_engine(starter_model: Path) -> Iterator[LlamaEngine]:
    """The real starter model loaded once per module (CPU, 4,096-token context)."""
    yield from loaded_engine(starter_model, 4096)
