"""Hyperparameter checks: every GGUF header value llama.cpp asserts on, refused before it sees it.

llama.cpp validates some header values with exceptions (which the engine turns into a message)
but asserts on others: a ``block_count`` of 0 or above 512, an unknown rope scaling type, a NaN
norm epsilon, impossible expert counts or two tokens with the same text abort the whole process
(SIGABRT), on every start if that model is the default. These checks refuse such files, and the
plainly impossible values behind the exceptions too, with one line naming the key and the value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from app.engine.gguf_header import FLOATS, INTEGERS, STRING, TYPE_NAMES, GGUFArray, Header
from app.errors import ModelFileError

MAX_LAYERS = 512  # LLAMA_MAX_LAYERS
MAX_EXPERTS = 512  # LLAMA_MAX_EXPERTS
MAX_WIDTH = 262_144  # embedding / key length: the largest real models are under 20,000
MAX_HEADS = 16_384
MAX_FF = 1 << 20
MAX_CTX = 1 << 24  # 16,777,216 tokens (the longest published context is 10M)
MAX_VOCAB = 1 << 24
TOKENIZERS = ("llama", "gpt2", "bert", "t5", "rwkv", "ugm", "plamo2", "none", "no_vocab")
ROPE_SCALING_TYPES = ("none", "linear", "yarn", "longrope")
# Special tokens the chat formats rely on: out of range means a damaged header. Others (padding,
# unknown, separator...) out of range are common in real files, and llama.cpp ignores them.
NEEDED_SPECIAL = ("bos", "eos")


@dataclass(frozen=True)
class Shape:
    """The validated numbers the rest of the app uses (zeros for a vocabulary-only file)."""

    n_layers: int = 0
    n_ctx_train: int = 0
    n_embd: int = 0
    n_head: int = 0
    n_head_kv: int = 0
    n_vocab: int = 0


class _Check:
    def __init__(self, header: Header, shown: str, arch: str) -> None:
        self.fields = header.fields
        self.types = header.types
        self.header = header
        self.shown = shown
        self.arch = arch

    def fail(self, problem: str) -> ModelFileError:
        return ModelFileError(
            f"Model file {self.shown} cannot be used: {problem}. Its header is damaged or was "
            "written wrongly; download the model again or convert it with a current llama.cpp."
        )

    def kind(self, key: str) -> str:
        return TYPE_NAMES.get(self.types[key], f"type {self.types[key]}")

    def missing(self, key: str) -> ModelFileError:
        suffix = key.removeprefix(f"{self.arch}.")
        others = sorted({k.split(".")[0] for k in self.fields
                         if k.endswith(f".{suffix}") and not k.startswith(f"{self.arch}.")})
        if others:
            return self.fail(
                f"general.architecture is {self.arch!r} but its settings are written for "
                f"{others[0]!r} ({key} is missing, {others[0]}.{suffix} is there)"
            )
        return self.fail(f"{key} is missing")

    def integer(self, key: str, low: int, high: int, *, required: bool = False) -> int | None:
        if key not in self.fields:
            if required:
                raise self.missing(key)
            return None
        value = self.fields[key]
        if self.types[key] not in INTEGERS:
            raise self.fail(f"{key} must be a whole number but is a {self.kind(key)}")
        if not low <= value <= high:
            raise self.fail(f"{key} is {value:,}; a usable model has {low:,} to {high:,}")
        return int(value)

    def raw_int(self, key: str) -> int:
        """A whole number as written, 0 when absent or of another type."""
        return int(self.fields[key]) if self.types.get(key) in INTEGERS else 0

    def per_layer(self, key: str, n_layers: int, low: int, high: int, *,
                  required: bool = False) -> list[int] | None:
        """A value given once for all layers, or as an array with one value per layer."""
        value = self.fields.get(key)
        if not isinstance(value, GGUFArray):
            one = self.integer(key, low, high, required=required)
            return None if one is None else [one] * n_layers
        if value.kind not in INTEGERS or value.values is None:
            raise self.fail(f"{key} must be whole numbers, one per layer")
        if value.count != n_layers:
            raise self.fail(f"{key} has {value.count:,} values for {n_layers:,} layers")
        for item in value.values:
            if not low <= item <= high:
                raise self.fail(f"{key} holds {item:,}; a usable model has {low:,} to {high:,}")
        return [int(v) for v in value.values]

    def number(self, key: str, low: float, high: float) -> float | None:
        if key not in self.fields:
            return None
        value = self.fields[key]
        if self.types[key] not in FLOATS | INTEGERS:
            raise self.fail(f"{key} must be a number but is a {self.kind(key)}")
        if not math.isfinite(value) or not low <= value <= high:
            raise self.fail(f"{key} is {value}; a usable model has {low:g} to {high:g}")
        return float(value)

    def string(self, key: str, *, required: bool = False) -> str | None:
        if key not in self.fields:
            if required:
                raise self.missing(key)
            return None
        if self.types[key] != STRING:
            raise self.fail(f"{key} must be text but is a {self.kind(key)}")
        return str(self.fields[key])

    # -- the parts ---------------------------------------------------------------------------
    def vocabulary(self) -> int:
        tokens = self.fields.get("tokenizer.ggml.tokens")
        if tokens is None:
            raise self.fail("it has no vocabulary (tokenizer.ggml.tokens is missing)")
        if not isinstance(tokens, GGUFArray) or tokens.kind != STRING:
            raise self.fail("tokenizer.ggml.tokens must be a list of texts")
        n_vocab = tokens.count
        if not 1 <= n_vocab <= MAX_VOCAB:
            raise self.fail(f"its vocabulary has {n_vocab:,} tokens")
        if tokens.duplicate is not None:
            raise self.fail(f"the token {tokens.duplicate[:40]!r} appears twice in the vocabulary")
        model = self.string("tokenizer.ggml.model", required=True)
        if model not in TOKENIZERS:
            raise self.fail(f"tokenizer.ggml.model is {str(model)[:40]!r}; llama.cpp knows "
                            f"{', '.join(TOKENIZERS)}")
        for key, kinds, what in (
            ("tokenizer.ggml.scores", FLOATS, "numbers"),
            ("tokenizer.ggml.token_type", INTEGERS, "whole numbers"),
        ):
            value = self.fields.get(key)
            if value is None:
                continue
            if not isinstance(value, GGUFArray) or value.kind not in kinds:
                raise self.fail(f"{key} must be a list of {what}")
            if value.count != n_vocab:
                raise self.fail(f"{key} has {value.count:,} entries for {n_vocab:,} tokens")
        merges = self.fields.get("tokenizer.ggml.merges")
        if merges is not None and (not isinstance(merges, GGUFArray) or merges.kind != STRING):
            raise self.fail("tokenizer.ggml.merges must be a list of texts")
        for key in [k for k in self.fields if k.startswith("tokenizer.ggml.")
                    and k.endswith("_token_id")]:
            needed = key.removeprefix("tokenizer.ggml.").removesuffix("_token_id") in NEEDED_SPECIAL
            self.integer(key, 0, n_vocab - 1 if needed else 2**32 - 1)
        self.string("tokenizer.chat_template")
        return n_vocab

    def model(self, n_vocab: int) -> Shape:
        a = f"{self.arch}."
        n_layers = self.integer(a + "block_count", 1, MAX_LAYERS, required=True) or 0
        n_embd = self.integer(a + "embedding_length", 1, MAX_WIDTH, required=True) or 0
        n_ctx = self.integer(a + "context_length", 1, MAX_CTX, required=True) or 0
        heads = self.per_layer(a + "attention.head_count", n_layers, 1, MAX_HEADS, required=True)
        assert heads is not None
        kv_heads = self.per_layer(a + "attention.head_count_kv", n_layers, 1, MAX_HEADS) or heads
        for head, kv in zip(heads, kv_heads, strict=True):
            if head % kv:
                raise self.fail(f"{a}attention.head_count_kv {kv:,} does not divide "
                                f"{a}attention.head_count {head:,}")
        key_length = self.integer(a + "attention.key_length", 1, MAX_WIDTH)
        self.integer(a + "attention.value_length", 1, MAX_WIDTH)
        if key_length is None:
            for head in heads:
                if n_embd % head:
                    raise self.fail(f"{a}embedding_length {n_embd:,} is not a multiple of "
                                    f"{a}attention.head_count {head:,}")
        head_dim = key_length or n_embd // heads[0]
        rope = self.integer(a + "rope.dimension_count", 1, head_dim)
        if self.arch == "llama":  # llama.cpp requires these two of Llama files only
            if rope is not None and rope != head_dim:
                raise self.fail(f"{a}rope.dimension_count is {rope}; a Llama model with head size "
                                f"{head_dim} needs {head_dim}")
            if a + "attention.layer_norm_rms_epsilon" not in self.fields:
                raise self.missing(a + "attention.layer_norm_rms_epsilon")
        if isinstance(self.fields.get(a + "feed_forward_length"), GGUFArray):
            self.per_layer(a + "feed_forward_length", n_layers, 0, MAX_FF)
        else:
            self.integer(a + "feed_forward_length", 1, MAX_FF)
        self.experts(a)
        self.floats(a)
        self.tensors(n_layers, n_embd, n_vocab)
        return Shape(n_layers, n_ctx, n_embd, heads[0], max(kv_heads), n_vocab)

    def experts(self, a: str) -> None:
        n_expert = self.integer(a + "expert_count", 0, MAX_EXPERTS) or 0
        used = self.integer(a + "expert_used_count", 0, MAX_EXPERTS) or 0
        if n_expert == 0 and used:
            raise self.fail(f"{a}expert_used_count is {used} but the model has no experts")
        if n_expert and not 1 <= used <= n_expert:
            raise self.fail(f"{a}expert_used_count is {used}; with {n_expert} experts use "
                            f"1 to {n_expert}")

    def floats(self, a: str) -> None:
        """Every number of the model's settings is finite; the ones llama.cpp asserts on, sane."""
        for key, kind in self.types.items():
            if not key.startswith(a):
                continue
            value: Any = self.fields[key]
            values = value.values if isinstance(value, GGUFArray) else (value,)
            if (kind in FLOATS or (isinstance(value, GGUFArray) and value.kind in FLOATS)) \
                    and values and not all(math.isfinite(v) for v in values):
                raise self.fail(f"{key} is not a finite number")
        self.number(a + "rope.freq_base", 1e-6, 1e12)
        self.number(a + "rope.scaling.factor", 0.0, 1e6)
        self.number(a + "attention.layer_norm_rms_epsilon", 0.0, 1.0)
        self.number(a + "attention.layer_norm_epsilon", 0.0, 1.0)
        scaling = self.string(a + "rope.scaling.type")
        if scaling is not None and scaling not in ROPE_SCALING_TYPES:
            raise self.fail(f"{a}rope.scaling.type is {scaling[:40]!r}; llama.cpp knows "
                            f"{', '.join(ROPE_SCALING_TYPES)}")

    def tensors(self, n_layers: int, n_embd: int, n_vocab: int) -> None:
        blocks = {int(parts[1]) for t in self.header.tensors
                  if len(parts := t.name.split(".")) > 2 and parts[0] == "blk" and parts[1].isdigit()}
        if blocks and n_layers > len(blocks):
            raise self.fail(f"{self.arch}.block_count is {n_layers:,} but the file has weights "
                            f"for {len(blocks):,} layers")
        for tensor in self.header.tensors:
            if tensor.name in ("token_embd.weight", "output.weight") and len(tensor.dims) == 2:
                width, rows = tensor.dims
                if width != n_embd:
                    raise self.fail(f"{self.arch}.embedding_length is {n_embd:,} but "
                                    f"{tensor.name} is {width:,} wide")
                if rows != n_vocab:
                    raise self.fail(f"the vocabulary has {n_vocab:,} tokens but {tensor.name} "
                                    f"has {rows:,} rows")


def check(header: Header, shown: str, arch: str, *, vocab_only: bool) -> Shape:
    """Validate the header's vocabulary and (unless ``vocab_only``) the model's hyperparameters.

    Raises ModelFileError naming the file, the key and the value.
    """
    checker = _Check(header, shown, arch)
    for key in ("general.name", "general.architecture"):
        checker.string(key)
    checker.integer("general.file_type", 0, 1 << 16)
    n_vocab = checker.vocabulary()
    if vocab_only:  # nothing will run on it: the values are reported as they are
        a = f"{arch}."
        raw = [checker.raw_int(a + key) for key in (
            "block_count", "context_length", "embedding_length", "attention.head_count",
            "attention.head_count_kv")]
        return Shape(raw[0], raw[1], raw[2], raw[3], raw[4] or raw[3], n_vocab)
    return checker.model(n_vocab)
