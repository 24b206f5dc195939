"""Engine fixtures: the starter model loaded once per module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from app.engine.engine import LlamaEngine, LoadOptions


@pytest.fixture(scope="module")
def starter_engine(starter_model: Path) -> Iterator[LlamaEngine]:
    """The real starter model loaded once per module (CPU, 4,096-token context)."""
    engine = LlamaEngine()
    engine.load(starter_model, LoadOptions(n_ctx=4096, n_gpu_layers=0))
    yield engine
    engine.close()
