"""Write the F16 GGUF tensor by tensor: peak memory stays near one merged tensor."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from app.convert.model import Plan, PlannedTensor
from app.convert.progress import Reporter
from app.convert.tensors import read, to_float16, to_float32, unpermute_rotary
from app.convert.vocab import Vocab

FILE_TYPE_F16 = 1  # llama_ftype LLAMA_FTYPE_MOSTLY_F16


def materialize(t: PlannedTensor, unpermute: bool = True) -> np.ndarray:
    """The GGUF tensor's data: 1-D as float32, matrices as float16 (shards merged in place)."""
    if len(t.shape) == 1:
        first = t.sources[0]
        return np.ascontiguousarray(to_float32(read(first), first.dtype))
    if t.axis is None:
        ref = t.sources[0]
        out = to_float16(read(ref), ref.dtype, ref.name)
    else:
        out = np.empty(t.shape, np.float16)
        pos = 0
        for ref in t.sources:  # one shard piece in memory at a time, besides the result
            piece = to_float16(read(ref), ref.dtype, ref.name)
            n = piece.shape[t.axis]
            if t.axis == 0:
                out[pos:pos + n] = piece
            else:
                out[:, pos:pos + n] = piece
            pos += n
            del piece
    if t.permute_heads and unpermute:
        out = unpermute_rotary(out, t.permute_heads)
    return np.ascontiguousarray(out)


def _add_keys(w: Any, name: str, plan: Plan, vocab: Vocab) -> None:
    """The GGUF header keys llama.cpp reads for a Llama model with a SentencePiece vocab."""
    hp = plan.hparams
    keys: list[tuple[str, Any]] = [
        ("name", name), ("context_length", hp.n_ctx), ("embedding_length", hp.n_embd),
        ("block_count", hp.n_layer), ("feed_forward_length", hp.n_ff),
        ("rope_dimension_count", hp.head_dim), ("head_count", hp.n_head),
        ("head_count_kv", hp.n_head_kv), ("layer_norm_rms_eps", hp.norm_eps),
        ("rope_freq_base", hp.rope_theta), ("vocab_size", hp.n_vocab),
        ("file_type", FILE_TYPE_F16), ("tokenizer_model", "llama"), ("tokenizer_pre", "default"),
        ("token_list", vocab.tokens), ("token_scores", vocab.scores),
        ("token_types", vocab.types), ("bos_token_id", vocab.bos_id),
        ("eos_token_id", vocab.eos_id), ("unk_token_id", vocab.unk_id),
        ("pad_token_id", vocab.pad_id), ("add_bos_token", vocab.add_bos),
        ("add_eos_token", vocab.add_eos), ("chat_template", vocab.chat_template or None),
    ]
    for key, value in keys:
        if value is not None:  # an optional key (pad id, chat template) is left out
            getattr(w, f"add_{key}")(value)


def write_f16(plan: Plan, vocab: Vocab, out: Path, name: str, reporter: Reporter,
              *, unpermute: bool = True) -> None:
    """Write ``plan`` as an F16 GGUF at ``out`` (norms F32), checking for cancel between tensors.

    ``unpermute=False`` exists only so the tests can prove that skipping the q/k fix is caught.
    """
    from gguf import GGUFWriter

    writer = GGUFWriter(str(out), "llama")
    try:
        _add_keys(writer, name, plan, vocab)
        for t in plan.tensors:
            dtype = np.dtype(np.float32 if len(t.shape) == 1 else np.float16)
            writer.add_tensor_info(t.name, t.shape, dtype, math.prod(t.shape) * dtype.itemsize)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        reporter.stage("convert", plan.source_bytes)
        for t in plan.tensors:
            reporter.check()
            data = materialize(t, unpermute)
            writer.write_tensor_data(data)
            del data
            reporter.advance(t.source_bytes)
        writer.close()
    except BaseException:
        writer.close()
        raise
