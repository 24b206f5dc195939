"""The converted GGUF computes what Meta's model computes (llama.cpp vs a numpy transcription)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.convert import checkpoints as ck

PROMPT = "The llama walks over green hills, eats 12345 grass and asks: why?"


def llama_logits(path: Path, tokens: list[int]) -> np.ndarray:
    import llama_cpp

    llm = llama_cpp.Llama(model_path=str(path), n_ctx=128, n_batch=128, logits_all=True,
                          n_threads=2, verbose=False)
    try:
        llm.eval(tokens)
        return np.array(llm.scores[: len(tokens)], dtype=np.float64)
    finally:
        llm.close()


def agreement(got: np.ndarray, want: np.ndarray) -> tuple[float, float]:
    """(lowest per-position correlation, share of positions with the same argmax)."""
    corr = min(float(np.corrcoef(g, w)[0, 1]) for g, w in zip(got, want, strict=True))
    same = float(np.mean(got.argmax(axis=1) == want.argmax(axis=1)))
    return corr, same


def matches_meta(got: np.ndarray, want: np.ndarray) -> bool:
    corr, same = agreement(got, want)
    return corr > 0.999 and same == 1.0


@pytest.fixture(scope="module")
def prompt(sp: Any) -> list[int]:
    tokens = [sp.bos_id(), *sp.encode(PROMPT)]
    assert len(tokens) > 12
    return tokens


@pytest.fixture(scope="module")
def reference(tiny_model: ck.TinyLlama, prompt: list[int]) -> np.ndarray:
    return ck.reference_logits(tiny_model, prompt)


@pytest.mark.parametrize("layout", ["meta", "hf"])
def test_f16_logits_match_metas_forward_pass_at_every_position(
        layout: str, converted: Callable[..., Path], prompt: list[int], reference: np.ndarray) -> None:
    got = llama_logits(converted(layout), prompt)
    corr, same = agreement(got, reference)
    assert corr > 0.999, corr
    assert same == 1.0
    assert matches_meta(got, reference)


def test_pytorch_model_bin_shards_convert_the_same(tiny_model: ck.TinyLlama, tokenizer_model: Path,
                                                   tmp_path: Path, prompt: list[int],
                                                   reference: np.ndarray) -> None:
    """Older transformers repos ship pytorch_model-*.bin (torch zip) instead of safetensors."""
    from app.convert.layout import find_checkpoint
    from app.convert.pipeline import convert
    from app.convert.progress import Reporter

    folder = ck.write_hf(tmp_path / "bin", tiny_model, tokenizer_model, fmt="bin")
    ckpt = find_checkpoint(folder)
    assert [p.name for p in ckpt.weights] == ["pytorch_model-00001-of-00002.bin",
                                              "pytorch_model-00002-of-00002.bin"]
    out = tmp_path / "bin.gguf"
    convert(ckpt, out, "F16", name="bin", reporter=Reporter())
    assert matches_meta(llama_logits(out, prompt), reference)


def test_a_converter_without_the_qk_permutation_fails_the_check(
        converted: Callable[..., Path], prompt: list[int], reference: np.ndarray) -> None:
    """Proof that the logits test catches a forgotten un-permute of HF's q_proj/k_proj rows."""
    broken = llama_logits(converted("hf", unpermute=False), prompt)
    corr, same = agreement(broken, reference)
    assert not matches_meta(broken, reference)
    assert corr < 0.9 and same < 0.8, (corr, same)


def test_k_permuted_with_the_query_head_count_fails_too(
        hf_folder: Path, tmp_path: Path, prompt: list[int], reference: np.ndarray,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """GQA: k_proj must be un-permuted with the KV head count, not the query head count."""
    from app.convert import model
    from app.convert.layout import find_checkpoint
    from app.convert.pipeline import convert
    from app.convert.progress import Reporter

    real = model.plan_hf

    def wrong_heads(ckpt: Any) -> model.Plan:
        plan = real(ckpt)
        fixed = tuple(
            t.__class__(t.name, t.shape, t.sources, t.axis, plan.hparams.n_head)
            if t.name.endswith("attn_k.weight") else t for t in plan.tensors)
        return model.Plan(plan.hparams, fixed)

    monkeypatch.setattr(model, "plan_hf", wrong_heads)
    out = tmp_path / "wrong-k.gguf"
    convert(find_checkpoint(hf_folder), out, "F16", name="wrong", reporter=Reporter())
    assert not matches_meta(llama_logits(out, prompt), reference)


def test_q8_0_stays_close_to_f16(converted: Callable[..., Path], prompt: list[int]) -> None:
    f16 = llama_logits(converted("meta"), prompt)
    q8 = llama_logits(converted("meta", "Q8_0"), prompt)
    corr, same = agreement(q8, f16)
    assert corr > 0.99 and same >= 0.9, (corr, same)


def test_q4_k_m_loads_and_holds_q4_k_tensors(converted: Callable[..., Path], prompt: list[int],
                                             reference: np.ndarray) -> None:
    from gguf import GGUFReader

    from app.engine.modelfile import check_model_file

    path = converted("hf", "Q4_K_M")
    kinds = Counter(t.tensor_type.name for t in GGUFReader(path).tensors)
    assert kinds["Q4_K"] >= 10, kinds
    assert check_model_file(path).file_type == "Q4_K_M"
    logits = llama_logits(path, prompt)
    assert np.isfinite(logits).all()
    corr, _same = agreement(logits, reference)
    assert corr > 0.8, corr  # coarse 4-bit weights, still the same model
