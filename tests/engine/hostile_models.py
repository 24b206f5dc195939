"""A hostile-model corpus: the tiny Llama GGUF with header values patched (zero, huge, wrong types).

``read_gguf`` splits a GGUF into its key/values (kept as raw bytes), tensor infos and data;
``write_gguf`` puts one back together after a patch, re-padding the data to its alignment, so
a key may change type or size, vanish, or be renamed without rewriting the tensors.
``VARIANTS`` maps a name to a patch; ``write_variant`` writes one next to the original.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gguf import GGUFValueType as T

_FIXED = {T.UINT8: "<B", T.INT8: "<b", T.UINT16: "<H", T.INT16: "<h", T.UINT32: "<I",
          T.INT32: "<i", T.FLOAT32: "<f", T.BOOL: "<?", T.UINT64: "<Q", T.INT64: "<q",
          T.FLOAT64: "<d"}


@dataclass
class RawGGUF:
    """A GGUF as parts: ``kv`` maps key -> (value type, raw value bytes), in file order."""

    version: int
    kv: dict[str, tuple[int, bytes]]
    tensors: list[bytes]  # each tensor info, raw (name, dims, type, offset)
    data: bytes  # the tensor data, from the aligned start
    alignment_override: int | None = field(default=None)


def _string(value: str | bytes) -> bytes:
    raw = value.encode("utf-8") if isinstance(value, str) else value
    return struct.pack("<Q", len(raw)) + raw


def encode(kind: int, value: Any) -> bytes:
    """The raw bytes of a value of GGUF type ``kind`` (arrays: ``(element type, items)``)."""
    if kind == T.STRING:
        return _string(value)
    if kind == T.ARRAY:
        sub, items = value
        return struct.pack("<IQ", sub, len(items)) + b"".join(encode(sub, v) for v in items)
    return struct.pack(_FIXED[T(kind)], value)


def decode(kind: int, raw: bytes) -> Any:
    if kind == T.STRING:
        return raw[8:].decode("utf-8", "replace")
    if kind == T.ARRAY:
        return struct.unpack_from("<Q", raw, 4)[0]  # arrays stand for their length
    return struct.unpack(_FIXED[T(kind)], raw)[0]


def _skip(buf: bytes, pos: int, kind: int) -> int:
    if kind == T.STRING:
        return pos + 8 + struct.unpack_from("<Q", buf, pos)[0]
    if kind == T.ARRAY:
        sub, count = struct.unpack_from("<IQ", buf, pos)
        pos += 12
        if sub in _FIXED:
            return pos + count * struct.calcsize(_FIXED[T(sub)])
        for _ in range(count):
            pos = _skip(buf, pos, sub)
        return pos
    return pos + struct.calcsize(_FIXED[T(kind)])


def read_gguf(path: Path) -> RawGGUF:
    buf = path.read_bytes()
    version, n_tensors, n_kv = struct.unpack_from("<IQQ", buf, 4)
    pos = 24
    kv: dict[str, tuple[int, bytes]] = {}
    for _ in range(n_kv):
        end = pos + 8 + struct.unpack_from("<Q", buf, pos)[0]
        key = buf[pos + 8:end].decode()
        kind = struct.unpack_from("<I", buf, end)[0]
        start = end + 4
        pos = _skip(buf, start, kind)
        kv[key] = (kind, buf[start:pos])
    tensors = []
    for _ in range(n_tensors):
        start = pos
        pos += 8 + struct.unpack_from("<Q", buf, pos)[0]
        n_dims = struct.unpack_from("<I", buf, pos)[0]
        pos += 4 + 8 * n_dims + 4 + 8
        tensors.append(buf[start:pos])
    align = decode(*kv["general.alignment"]) if "general.alignment" in kv else 32
    pos += -pos % align
    return RawGGUF(version, kv, tensors, buf[pos:])


def write_gguf(raw: RawGGUF, path: Path) -> Path:
    out = bytearray(b"GGUF" + struct.pack("<IQQ", raw.version, len(raw.tensors), len(raw.kv)))
    for key, (kind, value) in raw.kv.items():
        out += _string(key) + struct.pack("<I", kind) + value
    for info in raw.tensors:
        out += info
    align = raw.alignment_override or 32
    out += b"\0" * (-len(out) % align)
    out += raw.data
    path.write_bytes(bytes(out))
    return path


# -- patches ---------------------------------------------------------------------------------
Patch = Callable[[RawGGUF], None]


def put(key: str, kind: int, value: Any) -> Patch:
    def patch(raw: RawGGUF) -> None:
        raw.kv[key] = (kind, encode(kind, value))
    return patch


def drop(key: str) -> Patch:
    def patch(raw: RawGGUF) -> None:
        raw.kv.pop(key, None)
    return patch


def rename_arch(arch: str, *, keys_too: bool) -> Patch:
    """Another architecture's name, its keys renamed (or left as llama's)."""
    def patch(raw: RawGGUF) -> None:
        raw.kv["general.architecture"] = (T.STRING, encode(T.STRING, arch))
        if keys_too:
            raw.kv = {(arch + k[5:] if k.startswith("llama.") else k): v for k, v in raw.kv.items()}
    return patch


def shorten_array(key: str, keep: int) -> Patch:
    """Keep only the first ``keep`` items of an array of fixed-size values."""
    def patch(raw: RawGGUF) -> None:
        kind, value = raw.kv[key]
        sub = struct.unpack_from("<I", value)[0]
        size = struct.calcsize(_FIXED[T(sub)])
        raw.kv[key] = (kind, struct.pack("<IQ", sub, keep) + value[12:12 + keep * size])
    return patch


def retype_array(key: str, sub: int, items: list[Any]) -> Patch:
    return put(key, T.ARRAY, (sub, items))


def duplicate_token(raw: RawGGUF) -> None:
    """The last token's text replaced by the first one's (two ids, one text)."""
    kind, value = raw.kv["tokenizer.ggml.tokens"]
    count = struct.unpack_from("<Q", value, 4)[0]
    pos, items = 12, []
    for _ in range(count):
        n = struct.unpack_from("<Q", value, pos)[0]
        items.append(value[pos + 8:pos + 8 + n])
        pos += 8 + n
    items[-1] = items[3]
    raw.kv["tokenizer.ggml.tokens"] = (kind, encode(T.ARRAY, (T.STRING, items)))


def both(*patches: Patch) -> Patch:
    def patch(raw: RawGGUF) -> None:
        for p in patches:
            p(raw)
    return patch


def bad_alignment(value: int) -> Patch:
    def patch(raw: RawGGUF) -> None:
        raw.kv["general.alignment"] = (T.UINT32, encode(T.UINT32, value))
        raw.alignment_override = value if value > 0 and value & (value - 1) == 0 else 32
    return patch


U32, U64, I32, F32, STR, BOOL = T.UINT32, T.UINT64, T.INT32, T.FLOAT32, T.STRING, T.BOOL
BIG = 2**31 - 1

VARIANTS: dict[str, Patch] = {
    # layers
    "block_count-0": put("llama.block_count", U32, 0),
    "block_count-huge": put("llama.block_count", U32, BIG),
    "block_count-1000": put("llama.block_count", U32, 1000),
    "block_count-3-too-many": put("llama.block_count", U32, 3),
    "block_count-missing": drop("llama.block_count"),
    "block_count-string": put("llama.block_count", STR, "2"),
    "block_count-float": put("llama.block_count", F32, 2.0),
    "block_count-negative-i32": put("llama.block_count", I32, -2),
    # width
    "embedding_length-0": put("llama.embedding_length", U32, 0),
    "embedding_length-huge": put("llama.embedding_length", U32, BIG),
    "embedding_length-missing": drop("llama.embedding_length"),
    "embedding_length-not-multiple-of-heads": put("llama.embedding_length", U32, 66),
    "embedding_length-wrong-vs-tensors": put("llama.embedding_length", U32, 128),
    "feed_forward_length-0": put("llama.feed_forward_length", U32, 0),
    "feed_forward_length-huge": put("llama.feed_forward_length", U32, BIG),
    # heads
    "head_count-0": put("llama.attention.head_count", U32, 0),
    "head_count-missing": drop("llama.attention.head_count"),
    "head_count-3": put("llama.attention.head_count", U32, 3),
    "head_count-huge": put("llama.attention.head_count", U32, BIG),
    "head_count_kv-0": put("llama.attention.head_count_kv", U32, 0),
    "head_count_kv-3-not-dividing": put("llama.attention.head_count_kv", U32, 3),
    "head_count_kv-8-more-than-heads": put("llama.attention.head_count_kv", U32, 8),
    "head_count-array-short": put("llama.attention.head_count", T.ARRAY, (U32, [4])),
    # context and rope
    "context_length-0": put("llama.context_length", U32, 0),
    "context_length-huge": put("llama.context_length", U64, 2**40),
    "context_length-missing": drop("llama.context_length"),
    "rope_dimension-0": put("llama.rope.dimension_count", U32, 0),
    "rope_dimension-7": put("llama.rope.dimension_count", U32, 7),
    "rope_freq_base-nan": put("llama.rope.freq_base", F32, math.nan),
    "rope_freq_base-negative": put("llama.rope.freq_base", F32, -1.0),
    "rope_scaling_type-bogus": put("llama.rope.scaling.type", STR, "bogus"),
    "rope_scaling_factor-inf": put("llama.rope.scaling.factor", F32, math.inf),
    "rms_eps-missing": drop("llama.attention.layer_norm_rms_epsilon"),
    "rms_eps-nan": put("llama.attention.layer_norm_rms_epsilon", F32, math.nan),
    "rms_eps-0": put("llama.attention.layer_norm_rms_epsilon", F32, 0.0),
    # experts
    "expert_count-huge": both(put("llama.expert_count", U32, 100_000),
                              put("llama.expert_used_count", U32, 2)),
    "expert_used-without-experts": put("llama.expert_used_count", U32, 2),
    "expert_used-more-than-experts": both(put("llama.expert_count", U32, 2),
                                          put("llama.expert_used_count", U32, 4)),
    # vocabulary
    "tokens-missing": drop("tokenizer.ggml.tokens"),
    "tokens-ints": retype_array("tokenizer.ggml.tokens", I32, list(range(32000))),
    "tokens-empty": retype_array("tokenizer.ggml.tokens", STR, []),
    "tokens-duplicate": duplicate_token,
    "scores-short": shorten_array("tokenizer.ggml.scores", 10),
    "scores-strings": retype_array("tokenizer.ggml.scores", STR, ["x"] * 32000),
    "token_type-short": shorten_array("tokenizer.ggml.token_type", 10),
    "token_type-floats": retype_array("tokenizer.ggml.token_type", F32, [1.0] * 32000),
    "vocab_size-mismatch": put("llama.vocab_size", U32, 16),
    "tokenizer_model-bogus": put("tokenizer.ggml.model", STR, "bogus"),
    "tokenizer_model-missing": drop("tokenizer.ggml.model"),
    "tokenizer_model-int": put("tokenizer.ggml.model", U32, 1),
    "bos-out-of-range": put("tokenizer.ggml.bos_token_id", U32, 1_000_000),
    "eos-out-of-range": put("tokenizer.ggml.eos_token_id", U32, 32000),
    "unk-out-of-range": put("tokenizer.ggml.unknown_token_id", U32, BIG),
    "pad-out-of-range": put("tokenizer.ggml.padding_token_id", U32, 40_000),
    "bos-string": put("tokenizer.ggml.bos_token_id", STR, "1"),
    "bos-negative": put("tokenizer.ggml.bos_token_id", I32, -5),
    # architecture and other header facts
    "arch-qwen2-with-llama-keys": rename_arch("qwen2", keys_too=False),
    "arch-gemma-keys-renamed": rename_arch("gemma", keys_too=True),
    "arch-falcon-keys-renamed": rename_arch("falcon", keys_too=True),
    "arch-gpt2-with-llama-keys": rename_arch("gpt2", keys_too=False),
    "arch-phi3-keys-renamed": rename_arch("phi3", keys_too=True),
    "arch-unknown": rename_arch("nosucharch", keys_too=True),
    "arch-empty": put("general.architecture", STR, ""),
    "arch-int": put("general.architecture", U32, 7),
    "alignment-0": bad_alignment(0),
    "alignment-3": bad_alignment(3),
    "chat_template-int": put("tokenizer.chat_template", U32, 5),
    "name-array": put("general.name", T.ARRAY, (U32, [1, 2])),
    "file_type-string": put("general.file_type", STR, "Q4"),
}


def write_variant(original: Path, name: str, folder: Path) -> Path:
    """The tiny model with patch ``name`` applied, written as ``folder/<name>.gguf``."""
    raw = read_gguf(original)
    VARIANTS[name](raw)
    return write_gguf(raw, folder / f"{name}.gguf")
