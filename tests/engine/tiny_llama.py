"""Write a tiny random-weight Llama-architecture GGUF around the real Llama SPM vocabulary.

Its header looks like TheBloke's 2023 Llama-2-chat GGUFs: ``general.name`` "LLaMA v2" and no
``tokenizer.chat_template``, so the engine must choose the exact Llama-2-chat format for it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from gguf import GGUFReader, GGUFValueType, GGUFWriter

N_EMBD, N_FF, N_HEAD, N_LAYER, N_CTX = 64, 128, 4, 2, 4096


def _copy_tokenizer(reader: GGUFReader, writer: GGUFWriter) -> int:
    n_vocab = 0
    for name, field in reader.fields.items():
        if not name.startswith("tokenizer."):
            continue
        value = field.contents()
        vtype = field.types[0]
        if vtype == GGUFValueType.ARRAY:
            sub = field.types[-1]
            writer.add_array(name, value) if sub != GGUFValueType.STRING else writer.add_array(
                name, [str(v) for v in value])
            if name == "tokenizer.ggml.tokens":
                n_vocab = len(value)
        elif vtype == GGUFValueType.STRING:
            writer.add_string(name, value)
        elif vtype == GGUFValueType.BOOL:
            writer.add_bool(name, bool(value))
        elif vtype in (GGUFValueType.FLOAT32, GGUFValueType.FLOAT64):
            writer.add_float32(name, float(value))
        else:
            writer.add_uint32(name, int(value))
    return n_vocab


def write_tiny_llama(vocab_path: Path, out: Path, seed: int = 0) -> Path:
    """Write the model to ``out`` and return it."""
    reader = GGUFReader(vocab_path)
    writer = GGUFWriter(str(out), "llama")
    writer.add_name("LLaMA v2")
    writer.add_context_length(N_CTX)
    writer.add_embedding_length(N_EMBD)
    writer.add_feed_forward_length(N_FF)
    writer.add_block_count(N_LAYER)
    writer.add_head_count(N_HEAD)
    writer.add_head_count_kv(N_HEAD)
    writer.add_rope_dimension_count(N_EMBD // N_HEAD)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_file_type(1)
    n_vocab = _copy_tokenizer(reader, writer)
    rng = np.random.default_rng(seed)

    def tensor(name: str, *shape: int, ones: bool = False) -> None:
        data = np.ones(shape, np.float32) if ones else rng.normal(0, 0.02, shape).astype(np.float32)
        writer.add_tensor(name, data.astype(np.float16) if len(shape) > 1 else data)

    tensor("token_embd.weight", n_vocab, N_EMBD)
    tensor("output_norm.weight", N_EMBD, ones=True)
    tensor("output.weight", n_vocab, N_EMBD)
    for i in range(N_LAYER):
        tensor(f"blk.{i}.attn_norm.weight", N_EMBD, ones=True)
        for part in ("q", "k", "v", "output"):
            tensor(f"blk.{i}.attn_{part}.weight", N_EMBD, N_EMBD)
        tensor(f"blk.{i}.ffn_norm.weight", N_EMBD, ones=True)
        tensor(f"blk.{i}.ffn_gate.weight", N_FF, N_EMBD)
        tensor(f"blk.{i}.ffn_up.weight", N_FF, N_EMBD)
        tensor(f"blk.{i}.ffn_down.weight", N_EMBD, N_FF)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out
