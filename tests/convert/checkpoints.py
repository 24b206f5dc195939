"""Tiny random Llama-2-style checkpoints in both layouts, and Meta's forward pass in numpy.

The tokenizer is a SentencePiece BPE model trained here with Llama's settings (byte fallback,
split digits, identity normalization); the weights use grouped-query attention (fewer KV heads
than heads); Meta's layout is written as two bfloat16 model-parallel shards in torch's zip
format, the Hugging Face one as float16 safetensors with q/k rows permuted as transformers'
convert_llama_weights_to_hf.py does.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import random
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tests.convert.torchzip import RawTensor, write_pth

LLAMA2_TEMPLATE = (
    "{% if messages[0]['role'] == 'system' %}{% set system_message = '<<SYS>>\\n' + "
    "messages[0]['content'] | trim + '\\n<</SYS>>\\n\\n' %}{% set messages = messages[1:] %}"
    "{% else %}{% set system_message = '' %}{% endif %}{% for message in messages %}"
    "{% if loop.index0 == 0 %}{% set content = system_message + message['content'] %}"
    "{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}"
    "{{ bos_token + '[INST] ' + content | trim + ' [/INST]' }}{% elif message['role'] == "
    "'assistant' %}{{ ' ' + content | trim + ' ' + eos_token }}{% endif %}{% endfor %}"
)
_TEXT = ("the llama walks over green hills and eats grass while people watch from far away river "
         "mountain city model token weights convert shard tensor value quick brown fox jumps lazy "
         "dog café naïve résumé über straße coffee tea bread cheese apple banana orange number "
         "seven eleven hundred thousand question answer chat desk window")
WORDS = tuple(_TEXT.split())


def corpus(n_lines: int = 3000, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    lines = []
    for _ in range(n_lines):
        words = [rng.choice(WORDS) for _ in range(rng.randint(3, 14))]
        if rng.random() < 0.3:
            words.insert(rng.randrange(len(words)), str(rng.randint(0, 99999)))
        if rng.random() < 0.2:
            words.insert(rng.randrange(len(words)), rng.choice(",.;:!?()"))
        sep = "  " if rng.random() < 0.1 else " "
        lines.append(sep.join(words).capitalize())
    return lines


def train_tokenizer(path: Path, vocab_size: int = 600) -> Path:
    """A SentencePiece BPE tokenizer.model trained with Llama-2's normalizer settings."""
    import sentencepiece as spm

    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus()), model_writer=buf, model_type="bpe",
        vocab_size=vocab_size, byte_fallback=True, split_digits=True,
        normalization_rule_name="identity", remove_extra_whitespaces=False, add_dummy_prefix=True,
        allow_whitespace_only_pieces=True, character_coverage=0.9995, unk_id=0, bos_id=1,
        eos_id=2, pad_id=-1, hard_vocab_limit=False, num_threads=1, minloglevel=2,
        train_extremely_large_corpus=False,
    )
    path.write_bytes(buf.getvalue())
    return path


@dataclass
class TinyLlama:
    """Meta-named float32 weights (every value exactly representable in bfloat16)."""

    params: dict[str, object]
    weights: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def n_kv_heads(self) -> int:
        return int(self.params.get("n_kv_heads") or self.params["n_heads"])  # type: ignore[call-overload]


def bf16_bits(x: np.ndarray) -> np.ndarray:
    """float32 -> bfloat16 bit patterns, round to nearest even (as torch does)."""
    bits = np.ascontiguousarray(x, np.float32).view(np.uint32)
    rounded = bits + 0x7FFF + ((bits >> 16) & 1)
    return (rounded >> 16).astype(np.uint16)


def from_bf16(bits: np.ndarray) -> np.ndarray:
    return (bits.astype(np.uint32) << 16).view(np.float32)


def meta_ffn_dim(dim: int, multiple_of: int) -> int:
    hidden = int(2 * (4 * dim) / 3)
    return multiple_of * ((hidden + multiple_of - 1) // multiple_of)


def random_llama(n_vocab: int, *, dim: int = 256, n_layers: int = 2, n_heads: int = 4,
                 n_kv_heads: int = 2, multiple_of: int = 256, seed: int = 0) -> TinyLlama:
    rng = np.random.default_rng(seed)
    params: dict[str, object] = {"dim": dim, "multiple_of": multiple_of, "n_heads": n_heads,
                                 "n_kv_heads": n_kv_heads, "n_layers": n_layers, "norm_eps": 1e-05,
                                 "vocab_size": -1}
    hd = dim // n_heads
    ff = meta_ffn_dim(dim, multiple_of)
    model = TinyLlama(params)

    def put(name: str, *shape: int, scale: float = 0.0, ones: bool = False) -> None:
        data = (1.0 + 0.1 * rng.standard_normal(shape)) if ones else rng.standard_normal(shape) * scale
        model.weights[name] = from_bf16(bf16_bits(data.astype(np.float32)))

    put("tok_embeddings.weight", n_vocab, dim, scale=1.0)
    put("norm.weight", dim, ones=True)
    put("output.weight", n_vocab, dim, scale=1 / math.sqrt(dim))
    put("rope.freqs", hd // 2, scale=1.0)  # Meta's shards carry it; converters skip it
    for i in range(n_layers):
        p = f"layers.{i}."
        put(p + "attention_norm.weight", dim, ones=True)
        put(p + "attention.wq.weight", dim, dim, scale=2 / math.sqrt(dim))
        put(p + "attention.wk.weight", n_kv_heads * hd, dim, scale=2 / math.sqrt(dim))
        put(p + "attention.wv.weight", n_kv_heads * hd, dim, scale=1 / math.sqrt(dim))
        put(p + "attention.wo.weight", dim, dim, scale=1 / math.sqrt(dim))
        put(p + "ffn_norm.weight", dim, ones=True)
        put(p + "feed_forward.w1.weight", ff, dim, scale=1 / math.sqrt(dim))
        put(p + "feed_forward.w2.weight", dim, ff, scale=1 / math.sqrt(ff))
        put(p + "feed_forward.w3.weight", ff, dim, scale=1 / math.sqrt(dim))
    return model


# ---- Meta's layout ----------------------------------------------------------------------------
AXIS1 = ("tok_embeddings.weight", ".attention.wo.weight", ".feed_forward.w2.weight")


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()


def write_meta(root: Path, model: TinyLlama, tokenizer: Path, *, name: str = "llama-2-tiny-chat",
               n_shards: int = 2) -> Path:
    """A download.sh-style tree: ROOT/tokenizer.model(+checklist), ROOT/NAME/consolidated.NN.pth."""
    folder = root / name
    folder.mkdir(parents=True)
    (root / "tokenizer.model").write_bytes(tokenizer.read_bytes())
    (root / "tokenizer_checklist.chk").write_text(f"{md5(root / 'tokenizer.model')}  tokenizer.model\n")
    for shard in range(n_shards):
        tensors = {}
        for key, value in model.weights.items():
            if value.ndim == 1:
                piece = value
            else:
                axis = 1 if key.endswith(AXIS1) or key in AXIS1 else 0
                piece = np.array_split(value, n_shards, axis=axis)[shard]
            tensors[key] = RawTensor.of("BF16", bf16_bits(piece))
        write_pth(folder / f"consolidated.{shard:02d}.pth", tensors)
    (folder / "params.json").write_text(json.dumps(model.params))
    sums = [f"{md5(p)}  {p.name}" for p in sorted(folder.iterdir())]
    (folder / "checklist.chk").write_text("\n".join(sums) + "\n")
    return folder


# ---- Hugging Face layout ------------------------------------------------------------------------
def hf_permute(w: np.ndarray, n_heads: int) -> np.ndarray:
    """transformers' convert_llama_weights_to_hf.py permute (Meta pairs -> rotary halves)."""
    rows, cols = w.shape
    return w.reshape(n_heads, rows // n_heads // 2, 2, cols).transpose(0, 2, 1, 3).reshape(rows, cols)


def hf_tensors(model: TinyLlama) -> dict[str, np.ndarray]:
    p, w = model.params, model.weights
    n_heads = int(p["n_heads"])  # type: ignore[call-overload]
    out = {"model.embed_tokens.weight": w["tok_embeddings.weight"],
           "model.norm.weight": w["norm.weight"], "lm_head.weight": w["output.weight"]}
    for i in range(int(p["n_layers"])):  # type: ignore[call-overload]
        m, h = f"layers.{i}.", f"model.layers.{i}."
        out |= {
            h + "input_layernorm.weight": w[m + "attention_norm.weight"],
            h + "self_attn.q_proj.weight": hf_permute(w[m + "attention.wq.weight"], n_heads),
            h + "self_attn.k_proj.weight": hf_permute(w[m + "attention.wk.weight"], model.n_kv_heads),
            h + "self_attn.v_proj.weight": w[m + "attention.wv.weight"],
            h + "self_attn.o_proj.weight": w[m + "attention.wo.weight"],
            h + "post_attention_layernorm.weight": w[m + "ffn_norm.weight"],
            h + "mlp.gate_proj.weight": w[m + "feed_forward.w1.weight"],
            h + "mlp.up_proj.weight": w[m + "feed_forward.w3.weight"],
            h + "mlp.down_proj.weight": w[m + "feed_forward.w2.weight"],
        }
    return out


def write_safetensors(path: Path, tensors: dict[str, np.ndarray], dtype: str = "F16") -> Path:
    """A .safetensors file; ``dtype`` F16, F32 or BF16 (from float32 arrays)."""
    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    blobs, pos = [], 0
    for name, value in tensors.items():
        if dtype == "BF16":
            raw = bf16_bits(value).tobytes()
        else:
            raw = value.astype(np.float16 if dtype == "F16" else np.float32).tobytes()
        header[name] = {"dtype": dtype, "shape": list(value.shape), "data_offsets": [pos, pos + len(raw)]}
        blobs.append(raw)
        pos += len(raw)
    head = json.dumps(header).encode()
    head += b" " * (-len(head) % 8)
    with path.open("wb") as fh:
        fh.write(struct.pack("<Q", len(head)) + head)
        for raw in blobs:
            fh.write(raw)
    return path


def write_hf(folder: Path, model: TinyLlama, tokenizer: Path, *, n_shards: int = 2,
             fmt: str = "safetensors") -> Path:
    """config.json, model-0000k-of-0000n.safetensors (+ index), tokenizer files; ``fmt="bin"``
    writes pytorch_model-0000k-of-0000n.bin (torch zip, float16) instead, as older repos have."""
    folder.mkdir(parents=True)
    p = model.params
    tensors = hf_tensors(model)
    names = list(tensors)
    groups = np.array_split(np.arange(len(names)), n_shards)
    weight_map = {}
    for k, group in enumerate(groups, 1):
        part = {names[i]: tensors[names[i]] for i in group}
        if fmt == "bin":
            shard = f"pytorch_model-{k:05d}-of-{n_shards:05d}.bin"
            write_pth(folder / shard, {n: RawTensor.of("F16", v.astype(np.float16))
                                       for n, v in part.items()})
        else:
            shard = f"model-{k:05d}-of-{n_shards:05d}.safetensors"
            write_safetensors(folder / shard, part)
        weight_map |= {names[i]: shard for i in group}
    index = {"metadata": {}, "weight_map": weight_map}
    index_name = "pytorch_model.bin.index.json" if fmt == "bin" else "model.safetensors.index.json"
    (folder / index_name).write_text(json.dumps(index))
    dim = int(p["dim"])  # type: ignore[call-overload]
    config = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": dim,
        "intermediate_size": model.weights["layers.0.feed_forward.w1.weight"].shape[0],
        "num_attention_heads": p["n_heads"], "num_hidden_layers": p["n_layers"],
        "num_key_value_heads": model.n_kv_heads, "rms_norm_eps": p["norm_eps"],
        "vocab_size": model.weights["tok_embeddings.weight"].shape[0],
        "max_position_embeddings": 4096, "rope_theta": 10000.0, "rope_scaling": None,
        "torch_dtype": "float16", "tie_word_embeddings": False, "bos_token_id": 1, "eos_token_id": 2,
    }
    (folder / "config.json").write_text(json.dumps(config, indent=1))
    (folder / "tokenizer.model").write_bytes(tokenizer.read_bytes())
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "add_bos_token": True, "add_eos_token": False, "bos_token": "<s>", "eos_token": "</s>",
        "unk_token": "<unk>", "chat_template": LLAMA2_TEMPLATE}))
    (folder / "generation_config.json").write_text(json.dumps({"bos_token_id": 1, "eos_token_id": 2}))
    return folder


# ---- Meta's llama/model.py forward pass, in numpy -----------------------------------------------
def reference_logits(model: TinyLlama, tokens: list[int]) -> np.ndarray:
    """Logits at every position: RMSNorm, interleaved rotary, GQA (repeat_kv), SwiGLU."""
    p, w = model.params, model.weights
    dim, n_heads, n_kv = int(p["dim"]), int(p["n_heads"]), model.n_kv_heads  # type: ignore[call-overload]
    hd, eps, n = dim // n_heads, float(p["norm_eps"]), len(tokens)  # type: ignore[arg-type]
    freqs = 1.0 / (10000.0 ** (np.arange(0, hd, 2)[: hd // 2] / hd))
    angles = np.outer(np.arange(n), freqs)
    cos, sin = np.cos(angles)[:, None, :], np.sin(angles)[:, None, :]

    def f64(name: str) -> np.ndarray:
        return w[name].astype(np.float64)

    def rms(x: np.ndarray, weight: str) -> np.ndarray:
        return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * f64(weight)

    def rotary(x: np.ndarray) -> np.ndarray:  # view_as_complex over adjacent pairs
        pairs = x.reshape(n, x.shape[1], hd // 2, 2)
        a, b = pairs[..., 0], pairs[..., 1]
        return np.stack([a * cos - b * sin, a * sin + b * cos], axis=-1).reshape(x.shape)

    mask = np.triu(np.full((n, n), -np.inf), 1)
    h = f64("tok_embeddings.weight")[tokens]
    for i in range(int(p["n_layers"])):  # type: ignore[call-overload]
        pre = f"layers.{i}."
        x = rms(h, pre + "attention_norm.weight")
        q = rotary((x @ f64(pre + "attention.wq.weight").T).reshape(n, n_heads, hd))
        k = rotary((x @ f64(pre + "attention.wk.weight").T).reshape(n, n_kv, hd))
        v = (x @ f64(pre + "attention.wv.weight").T).reshape(n, n_kv, hd)
        k, v = np.repeat(k, n_heads // n_kv, axis=1), np.repeat(v, n_heads // n_kv, axis=1)
        scores = np.einsum("thd,shd->hts", q, k) / math.sqrt(hd) + mask
        scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
        scores /= scores.sum(axis=-1, keepdims=True)
        out = np.einsum("hts,shd->thd", scores, v).reshape(n, dim)
        h = h + out @ f64(pre + "attention.wo.weight").T
        x = rms(h, pre + "ffn_norm.weight")
        gate = x @ f64(pre + "feed_forward.w1.weight").T
        up = x @ f64(pre + "feed_forward.w3.weight").T
        h = h + (gate / (1 + np.exp(-gate)) * up) @ f64(pre + "feed_forward.w2.weight").T
    return rms(h, "norm.weight") @ f64("output.weight").T
