"""A .safetensors reader (8-byte header length, JSON header, raw little-endian tensor bytes)."""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path

from app.convert.errors import ConvertError
from app.convert.tensors import DTYPES, TensorRef

MAX_HEADER = 100 * 1024 * 1024


def read_index(path: Path) -> dict[str, TensorRef]:
    """The tensors of a .safetensors file (no data read); ConvertError for a bad or short file."""
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            head = fh.read(8)
            if len(head) < 8:
                raise ConvertError(f"{path} is truncated or not a .safetensors file "
                                   f"({size} bytes); download it again.")
            (n,) = struct.unpack("<Q", head)
            if n > MAX_HEADER or 8 + n > size:
                raise ConvertError(f"{path} is truncated or not a .safetensors file (its header "
                                   f"claims {n:,} bytes, the file has {size:,}); download it again.")
            raw = fh.read(n)
    except OSError as err:
        raise ConvertError(f"Cannot read {path}: {err.strerror or err}") from err
    try:
        header = json.loads(raw)
        if not isinstance(header, dict):
            raise ValueError("header is not an object")
    except (ValueError, UnicodeDecodeError) as err:
        raise ConvertError(f"{path} is not a valid .safetensors file ({err}).") from None
    base = 8 + n
    refs: dict[str, TensorRef] = {}
    end = base
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype = str(meta["dtype"])
            shape = tuple(int(d) for d in meta["shape"])
            start, stop = (int(x) for x in meta["data_offsets"])
        except (KeyError, TypeError, ValueError):
            raise ConvertError(f"{path}: malformed header entry for tensor {name}.") from None
        if dtype not in DTYPES:
            raise ConvertError(f"{path}: tensor {name} is {dtype}; only F16, BF16 and F32 "
                               "checkpoints can be converted.")
        if stop - start != math.prod(shape) * DTYPES[dtype].itemsize or start < 0:
            raise ConvertError(f"{path}: tensor {name}'s byte range does not match its shape.")
        refs[name] = TensorRef(name, dtype, shape, path, base + start)
        end = max(end, base + stop)
    if end > size:
        raise ConvertError(f"{path} is truncated: its tensors need {end:,} bytes but the file has "
                           f"{size:,}; download it again.")
    return refs
