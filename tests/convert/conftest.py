"""Checkpoint fixtures for the converter tests."""

from __future__ import annotations

from tests.convert.fixtures import (  # noqa: F401
    ckpt_root,
    converted,
    hf_folder,
    meta_folder,
    sp,
    tiny_model,
    tokenizer_model,
)
