"""A lean GGUF header parser: typed key/values, array lengths, tensor infos; no numpy objects."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q",
           11: "<q", 12: "<d"}  # GGUF value types with a fixed size
INTEGERS = frozenset({0, 1, 2, 3, 4, 5, 10, 11})
FLOATS = frozenset({6, 12})
BOOL, STRING, ARRAY = 7, 8, 9
TYPE_NAMES = {0: "uint8", 1: "int8", 2: "uint16", 3: "int16", 4: "uint32", 5: "int32",
              6: "float32", 7: "bool", 8: "string", 9: "array", 10: "uint64", 11: "int64",
              12: "float64"}
MAX_DIMS = 4  # GGML_MAX_DIMS
KEEP_VALUES = 4096  # numeric arrays up to this length keep their values (per-layer settings)
TOKENS_KEY = "tokenizer.ggml.tokens"
_U64 = struct.Struct("<Q")


@dataclass(frozen=True)
class GGUFArray:
    """An array value: its element type, its length, and small numeric arrays' values."""

    kind: int
    count: int
    values: tuple[Any, ...] | None = None
    duplicate: str | None = None  # the vocabulary only: the first text that appears twice


@dataclass(frozen=True)
class TensorInfo:
    name: str
    dims: tuple[int, ...]
    kind: int
    offset: int  # from the start of the file


@dataclass
class Header:
    """What a GGUF header holds: ``fields`` by key and each key's GGUF value type."""

    fields: dict[str, Any]
    types: dict[str, int]
    tensors: list[TensorInfo]
    alignment: int


class _Reader:
    """Scalars and strings are kept, arrays counted. ``gguf.GGUFReader`` builds a numpy memmap per
    field part (some 240,000 objects for a 49k-token vocabulary, over two seconds); the cyclic GC
    passes that triggers hold the GIL for up to 200 ms, freezing the window."""

    def __init__(self, buf: Any) -> None:
        self.buf = buf
        self.pos = 0

    def unpack(self, fmt: str) -> Any:
        value = struct.unpack_from(fmt, self.buf, self.pos)[0]
        self.pos += struct.calcsize(fmt)
        return value

    def raw_string(self) -> bytes:
        n = self.unpack("<Q")
        if self.pos + n > len(self.buf):
            raise ValueError("string past the end of the file")
        self.pos += n
        return bytes(self.buf[self.pos - n:self.pos])

    def string(self) -> str:
        return self.raw_string().decode("utf-8", errors="replace")

    def value(self, kind: int, key: str = "") -> Any:
        if kind == STRING:
            return self.string()
        if kind == ARRAY:
            return self.array(key)
        if kind not in SCALARS:
            raise ValueError(f"unknown value type {kind} for {key or 'an array item'}")
        return self.unpack(SCALARS[kind])

    def array(self, key: str) -> GGUFArray:
        kind, count = self.unpack("<I"), self.unpack("<Q")
        if kind in SCALARS:
            size = struct.calcsize(SCALARS[kind])
            if self.pos + count * size > len(self.buf):
                raise ValueError(f"array {key} past the end of the file")
            values = None
            if count <= KEEP_VALUES:
                values = struct.unpack_from(f"<{count}{SCALARS[kind][1]}", self.buf, self.pos)
            self.pos += count * size
            return GGUFArray(kind, count, values)
        if kind == STRING:
            if self.pos + count * 8 > len(self.buf):
                raise ValueError(f"array {key} past the end of the file")
            if key == TOKENS_KEY:
                return GGUFArray(kind, count, None, self._tokens(count))
            for _ in range(count):
                self.pos += 8 + struct.unpack_from("<Q", self.buf, self.pos)[0]
            if self.pos > len(self.buf):
                raise ValueError(f"array {key} past the end of the file")
            return GGUFArray(kind, count)
        for _ in range(count):  # nested arrays: walked, not kept
            self.value(kind, key)
        return GGUFArray(kind, count)

    def _tokens(self, count: int) -> str | None:
        """Walk the vocabulary; llama.cpp aborts on a text that two token ids share."""
        buf, pos, unpack = self.buf, self.pos, _U64.unpack_from
        texts: list[bytes] = []
        append = texts.append
        for _ in range(count):  # the tightest loop here: 49k tokens in ~15 ms
            n = unpack(buf, pos)[0]
            pos += 8
            append(buf[pos:pos + n])
            pos += n
        if pos > len(buf):
            raise ValueError("the vocabulary runs past the end of the file")
        self.pos = pos
        if len(set(texts)) == count:
            return None
        seen: set[bytes] = set()
        for text in texts:
            if text in seen:
                return bytes(text).decode("utf-8", "replace")
            seen.add(text)
        return None


def parse(buf: Any) -> Header:
    """Parse the header in ``buf`` (a mmap or bytes); ValueError/struct.error when damaged."""
    hdr = _Reader(buf)
    hdr.pos = 8
    n_tensors, n_kv = hdr.unpack("<Q"), hdr.unpack("<Q")
    fields: dict[str, Any] = {}
    types: dict[str, int] = {}
    for _ in range(n_kv):
        key = hdr.string()
        if key in fields:
            raise ValueError(f"key {key} appears twice")
        kind = hdr.unpack("<I")
        types[key] = kind
        fields[key] = hdr.value(kind, key)
    raw: list[tuple[str, tuple[int, ...], int, int]] = []
    for _ in range(n_tensors):
        name = hdr.string()
        n_dims = hdr.unpack("<I")
        if not 1 <= n_dims <= MAX_DIMS:
            raise ValueError(f"tensor {name} has {n_dims} dimensions (at most {MAX_DIMS})")
        dims = tuple(hdr.unpack("<Q") for _ in range(n_dims))
        kind, offset = hdr.unpack("<I"), hdr.unpack("<Q")
        raw.append((name, dims, kind, offset))
    align = fields.get("general.alignment", 32)
    if (types.get("general.alignment", 4) not in INTEGERS or isinstance(align, GGUFArray)
            or align <= 0 or align & (align - 1)):
        raise ValueError(f"general.alignment {align!r} is not a power of two")
    start = hdr.pos + (-hdr.pos % align)
    tensors = [TensorInfo(name, dims, kind, start + off) for name, dims, kind, off in raw]
    return Header(fields, types, tensors, align)
