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
    hp = plan.hparams
    w.add_name(name)
    w.add_context_length(hp.n_ctx)
    w.add_embedding_length(hp.n_embd)
    w.add_block_count(hp.n_layer)
    w.add_feed_forward_length(hp.n_ff)
    w.add_rope_dimension_count(hp.head_dim)
    w.add_head_count(hp.n_head)
    w.add_head_count_kv(hp.n_head_kv)
    w.add_layer_norm_rms_eps(hp.norm_eps)
    w.add_rope_freq_base(hp.rope_theta)
    w.add_vocab_size(hp.n_vocab)
    w.add_file_type(FILE_TYPE_F16)
    w.add_tokenizer_model("llama")
    w.add_tokenizer_pre("default")
    w.add_token_list(vocab.tokens)
    w.add_token_scores(vocab.scores)
    w.add_token_types(vocab.types)
    w.add_bos_token_id(vocab.bos_id)
    w.add_eos_token_id(vocab.eos_id)
    w.add_unk_token_id(vocab.unk_id)
    if vocab.pad_id is not None:
        w.add_pad_token_id(vocab.pad_id)
    w.add_add_bos_token(vocab.add_bos)
    w.add_add_eos_token(vocab.add_eos)
    if vocab.chat_template:
        w.add_chat_template(vocab.chat_template)


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
