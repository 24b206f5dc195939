"""Hyperparameters and the tensor plan: GGUF llama names, shapes, shard merges, q/k un-permute."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

from app.convert import pth, safetensors_file
from app.convert.errors import ConvertError
from app.convert.layout import HF, Checkpoint
from app.convert.tensors import TensorRef
from app.convert.vocab import read_json

LLAMA_ARCHS = {"LlamaForCausalLM"}
_HF_LAYER = {
    "input_layernorm.weight": "attn_norm.weight",
    "self_attn.q_proj.weight": "attn_q.weight",
    "self_attn.k_proj.weight": "attn_k.weight",
    "self_attn.v_proj.weight": "attn_v.weight",
    "self_attn.o_proj.weight": "attn_output.weight",
    "post_attention_layernorm.weight": "ffn_norm.weight",
    "mlp.gate_proj.weight": "ffn_gate.weight",
    "mlp.up_proj.weight": "ffn_up.weight",
    "mlp.down_proj.weight": "ffn_down.weight",
}
_HF_TOP = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
           "lm_head.weight": "output.weight"}
_META_LAYER = {
    "attention_norm.weight": "attn_norm.weight", "attention.wq.weight": "attn_q.weight",
    "attention.wk.weight": "attn_k.weight", "attention.wv.weight": "attn_v.weight",
    "attention.wo.weight": "attn_output.weight", "ffn_norm.weight": "ffn_norm.weight",
    "feed_forward.w1.weight": "ffn_gate.weight", "feed_forward.w3.weight": "ffn_up.weight",
    "feed_forward.w2.weight": "ffn_down.weight",
}
_META_TOP = {"tok_embeddings.weight": "token_embd.weight", "norm.weight": "output_norm.weight",
             "output.weight": "output.weight"}
# Meta's model-parallel shards: column-parallel weights split their rows (dim 0), row-parallel
# ones and the embedding their columns (dim 1); 1-D norms are copies in every shard.
_META_AXIS1 = ("tok_embeddings.weight", ".attention.wo.weight", ".feed_forward.w2.weight")
_SKIP = re.compile(r"(^rope\.freqs$|\.rotary_emb\.inv_freq$)")
_HF_NAME = re.compile(r"^model\.layers\.(\d+)\.(.+)$")
_META_NAME = re.compile(r"^layers\.(\d+)\.(.+)$")


@dataclass(frozen=True)
class Hparams:
    """The llama.* GGUF keys."""

    n_vocab: int
    n_embd: int
    n_layer: int
    n_head: int
    n_head_kv: int
    n_ff: int
    n_ctx: int
    norm_eps: float
    rope_theta: float

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head


@dataclass(frozen=True)
class PlannedTensor:
    """One GGUF tensor and how to make it from the checkpoint."""

    name: str
    shape: tuple[int, ...]
    sources: tuple[TensorRef, ...]  # one, or one per Meta shard
    axis: int | None = None  # concatenate the shards along this axis; None: take the first
    permute_heads: int | None = None  # undo HF's rotary row order with this many heads

    @property
    def source_bytes(self) -> int:
        """Bytes read from the sources (a replicated norm is read once)."""
        return sum(s.nbytes for s in self.sources) if self.axis is not None else self.sources[0].nbytes


@dataclass(frozen=True)
class Plan:
    hparams: Hparams
    tensors: tuple[PlannedTensor, ...]

    @property
    def source_bytes(self) -> int:
        return sum(t.source_bytes for t in self.tensors)

    @property
    def f16_bytes(self) -> int:
        return sum(math.prod(t.shape) * (2 if len(t.shape) > 1 else 4) for t in self.tensors)


def _index(path: Path) -> dict[str, TensorRef]:
    if path.suffix == ".safetensors":
        return safetensors_file.read_index(path)
    return pth.read_index(path)


def _int(config: dict[str, object], key: str, where: Path) -> int:
    value = config.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ConvertError(f"{where} has no valid {key!r}; download it again.")
    return value


def expected_shapes(hp: Hparams) -> dict[str, tuple[int, ...]]:
    kv = hp.n_head_kv * hp.head_dim
    shapes: dict[str, tuple[int, ...]] = {
        "token_embd.weight": (hp.n_vocab, hp.n_embd), "output_norm.weight": (hp.n_embd,),
        "output.weight": (hp.n_vocab, hp.n_embd),
    }
    for i in range(hp.n_layer):
        shapes |= {
            f"blk.{i}.attn_norm.weight": (hp.n_embd,), f"blk.{i}.attn_q.weight": (hp.n_embd, hp.n_embd),
            f"blk.{i}.attn_k.weight": (kv, hp.n_embd), f"blk.{i}.attn_v.weight": (kv, hp.n_embd),
            f"blk.{i}.attn_output.weight": (hp.n_embd, hp.n_embd),
            f"blk.{i}.ffn_norm.weight": (hp.n_embd,), f"blk.{i}.ffn_gate.weight": (hp.n_ff, hp.n_embd),
            f"blk.{i}.ffn_up.weight": (hp.n_ff, hp.n_embd), f"blk.{i}.ffn_down.weight": (hp.n_embd, hp.n_ff),
        }
    return shapes


def _gguf_name(name: str, top: dict[str, str], layer: dict[str, str], pattern: re.Pattern[str]) -> str:
    if name in top:
        return top[name]
    match = pattern.match(name)
    if match and match.group(2) in layer:
        return f"blk.{int(match.group(1))}.{layer[match.group(2)]}"
    raise ConvertError(f"Unexpected tensor {name}: this is not a plain Llama checkpoint.")


def _check(planned: list[PlannedTensor], hp: Hparams, config: Path) -> tuple[PlannedTensor, ...]:
    want = expected_shapes(hp)
    have = {t.name: t for t in planned}
    if "output.weight" not in have:  # tied embeddings: llama.cpp reuses token_embd
        want.pop("output.weight")
    for name, shape in want.items():
        tensor = have.get(name)
        if tensor is None:
            raise ConvertError(f"The checkpoint has no tensor for {name}: a shard is missing or "
                               "the download is incomplete.")
        if tensor.shape != shape:
            raise ConvertError(
                f"Tensor {tensor.sources[0].name} has shape {tensor.shape} but {config.name} "
                f"implies {shape}: the weights and {config.name} do not belong together.")
    extra = sorted(set(have) - set(want))
    if extra:
        raise ConvertError(f"Unexpected tensor {extra[0]}: the checkpoint has more layers than "
                           f"{config.name} says.")
    order = list(want)
    return tuple(sorted(planned, key=lambda t: order.index(t.name)))


def plan_hf(ckpt: Checkpoint) -> Plan:
    """Hugging Face transformers layout: one tensor per name; q/k rows un-permuted."""
    config = read_json(ckpt.config, "model configuration")
    archs = config.get("architectures") or []
    if not (set(archs) & LLAMA_ARCHS) and config.get("model_type") != "llama":
        kind = ", ".join(map(str, archs)) or str(config.get("model_type") or "unknown")
        raise ConvertError(f"{ckpt.folder} holds a {kind} model, not Llama: Llama Desk converts "
                           "Llama checkpoints only.")
    if config.get("rope_scaling"):
        raise ConvertError(f"{ckpt.config} uses rope_scaling, which this converter does not "
                           "support (Llama-2 has none).")
    refs: dict[str, TensorRef] = {}
    for path in ckpt.weights:
        for name, ref in _index(path).items():
            if name in refs:
                raise ConvertError(f"Tensor {name} appears in two shards ({refs[name].file.name}, "
                                   f"{path.name}).")
            refs[name] = ref
    n_head = _int(config, "num_attention_heads", ckpt.config)
    embd = refs.get("model.embed_tokens.weight")
    gate = refs.get("model.layers.0.mlp.gate_proj.weight")
    if embd is None or gate is None:
        raise ConvertError(f"{ckpt.folder} has no model.embed_tokens / layer 0 weights: a shard "
                           "is missing or this is not a Llama checkpoint.")
    hp = Hparams(
        n_vocab=embd.shape[0], n_embd=_int(config, "hidden_size", ckpt.config),
        n_layer=_int(config, "num_hidden_layers", ckpt.config), n_head=n_head,
        n_head_kv=int(config.get("num_key_value_heads") or n_head), n_ff=gate.shape[0],
        n_ctx=int(config.get("max_position_embeddings") or 4096),
        norm_eps=float(config.get("rms_norm_eps") or 1e-5),
        rope_theta=float(config.get("rope_theta") or 10000.0),
    )
    for key, value in (("vocab_size", hp.n_vocab), ("intermediate_size", hp.n_ff)):
        if key in config and config[key] != value:
            raise ConvertError(f"{ckpt.config.name} says {key} {config[key]} but the weights have "
                               f"{value}: the weights and config.json do not belong together.")
    _check_heads(hp, ckpt.config)
    planned = []
    for name, ref in refs.items():
        if _SKIP.search(name):
            continue
        gguf = _gguf_name(name, _HF_TOP, _HF_LAYER, _HF_NAME)
        heads = hp.n_head if gguf.endswith("attn_q.weight") else (
            hp.n_head_kv if gguf.endswith("attn_k.weight") else None)
        planned.append(PlannedTensor(gguf, ref.shape, (ref,), None, heads))
    return Plan(hp, _check(planned, hp, ckpt.config))


def _check_heads(hp: Hparams, config: Path) -> None:
    if hp.n_embd % hp.n_head or hp.n_head % hp.n_head_kv or hp.head_dim % 2:
        raise ConvertError(f"{config} has inconsistent head counts ({hp.n_head} heads, "
                           f"{hp.n_head_kv} KV heads, width {hp.n_embd}).")


def meta_n_ctx(params: dict[str, object]) -> int:
    """params.json has no context length; llama.cpp's legacy converter infers it the same way."""
    if params.get("rope_theta") == 1000000:
        return 16384  # Code Llama
    return 4096 if params.get("norm_eps") == 1e-05 else 2048  # Llama 2, else LLaMA 1


def _meta_ff(params: dict[str, object], dim: int) -> int | None:
    multiple = params.get("multiple_of")
    if not isinstance(multiple, int) or multiple <= 0:
        return None
    hidden = int(2 * (4 * dim) / 3)
    mult = params.get("ffn_dim_multiplier")
    if isinstance(mult, int | float) and not isinstance(mult, bool):
        hidden = int(mult * hidden)
    return multiple * ((hidden + multiple - 1) // multiple)


def plan_meta(ckpt: Checkpoint) -> Plan:
    """Meta's layout: shards merged by Meta's model-parallel rules; no permutation needed."""
    params = read_json(ckpt.config, "model parameters (params.json)")
    shards = [_index(path) for path in ckpt.weights]
    names = list(shards[0])
    for path, shard in zip(ckpt.weights[1:], shards[1:], strict=True):
        if set(shard) != set(names):
            odd = sorted(set(shard) ^ set(names))[0]
            raise ConvertError(f"Shards disagree: {odd} is not in every consolidated.NN.pth "
                               f"(see {path.name}); download them again.")
    planned = []
    for name in names:
        if _SKIP.search(name):
            continue
        gguf = _gguf_name(name, _META_TOP, _META_LAYER, _META_NAME)
        parts = tuple(shard[name] for shard in shards)
        first = parts[0].shape
        if len(first) == 1 or len(parts) == 1:
            axis, shape = None, first
        else:
            axis = 1 if name.endswith(_META_AXIS1) or name in _META_AXIS1 else 0
            other = [p.shape[1 - axis] for p in parts]
            if len(set(other)) != 1 or any(len(p.shape) != 2 for p in parts):
                raise ConvertError(f"Shards of {name} have mismatched shapes; download them again.")
            total = sum(p.shape[axis] for p in parts)
            shape = (total, first[1]) if axis == 0 else (first[0], total)
        planned.append(PlannedTensor(gguf, shape, parts, axis))
    by_name = {t.name: t for t in planned}
    embd, gate = by_name.get("token_embd.weight"), by_name.get("blk.0.ffn_gate.weight")
    if embd is None or gate is None:
        raise ConvertError(f"{ckpt.folder} has no tok_embeddings / layer 0 weights: this is not "
                           "a Llama checkpoint.")
    dim = _int(params, "dim", ckpt.config)
    n_head = _int(params, "n_heads", ckpt.config)
    hp = Hparams(
        n_vocab=embd.shape[0], n_embd=dim, n_layer=_int(params, "n_layers", ckpt.config),
        n_head=n_head, n_head_kv=int(params.get("n_kv_heads") or n_head), n_ff=gate.shape[0],
        n_ctx=meta_n_ctx(params), norm_eps=float(params.get("norm_eps") or 1e-5),
        rope_theta=float(params.get("rope_theta") or 10000.0),
    )
    vocab = params.get("vocab_size")
    if isinstance(vocab, int) and vocab > 0 and vocab != hp.n_vocab:
        raise ConvertError(f"params.json says vocab_size {vocab} but the embedding has "
                           f"{hp.n_vocab} rows: the weights and params.json do not belong together.")
    ff = _meta_ff(params, dim)
    if ff is not None and ff != hp.n_ff:
        raise ConvertError(f"params.json implies a feed-forward width of {ff} but the weights have "
                           f"{hp.n_ff}: a consolidated.NN.pth shard is missing, or the weights and "
                           "params.json do not belong together.")
    _check_heads(hp, ckpt.config)
    if hp.n_head_kv % len(shards):
        raise ConvertError(f"{len(shards)} shards cannot split {hp.n_head_kv} KV heads: a shard "
                           "is missing or extra.")
    return Plan(hp, _check(planned, hp, ckpt.config))


def plan(ckpt: Checkpoint) -> Plan:
    return plan_hf(ckpt) if ckpt.kind == HF else plan_meta(ckpt)


def meta_sizes(params_json: Path, tokenizer_model: Path) -> tuple[int, int]:
    """(bytes of Meta's bfloat16 shards, bytes of the F16 GGUF) that params.json implies.

    Known before the weights are downloaded, for the disk check and the progress total.
    """
    from app.convert.vocab import _processor

    params = read_json(params_json, "model parameters (params.json)")
    dim, n_head = _int(params, "dim", params_json), _int(params, "n_heads", params_json)
    vocab = params.get("vocab_size")
    n_vocab = vocab if isinstance(vocab, int) and vocab > 0 else \
        int(_processor(tokenizer_model).vocab_size())
    ff = _meta_ff(params, dim)
    if ff is None:
        raise ConvertError(f"{params_json} has no valid 'multiple_of'; download it again.")
    hp = Hparams(n_vocab, dim, _int(params, "n_layers", params_json), n_head,
                 int(params.get("n_kv_heads") or n_head), ff, meta_n_ctx(params), 1e-5, 1e4)
    _check_heads(hp, params_json)
    shapes = list(expected_shapes(hp).values())
    source = sum(2 * math.prod(s) for s in shapes)
    return source, sum(math.prod(s) * (2 if len(s) > 1 else 4) for s in shapes)
