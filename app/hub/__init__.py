"""Hugging Face Hub access: catalogue, token, resumable verified downloads, installed models."""

import os

# No telemetry, and never a token picked up implicitly from HF_TOKEN or ~/.cache/huggingface.
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_DISABLE_IMPLICIT_TOKEN", "1")
