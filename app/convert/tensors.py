"""Tensor references into checkpoint files, streaming reads, dtype conversion, q/k un-permute."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.convert.errors import ConvertError

# Source element types: numpy has no bfloat16, so bf16 is read as its raw uint16 bits.
DTYPES: dict[str, np.dtype] = {
    "F16": np.dtype("<f2"), "BF16": np.dtype("<u2"), "F32": np.dtype("<f4"),
}
F16_MAX = 65504.0


@dataclass(frozen=True)
class TensorRef:
    """Where one tensor's bytes are: ``file`` at byte ``offset``, C order unless ``strides``."""

    name: str
    dtype: str  # "F16", "BF16" or "F32"
    shape: tuple[int, ...]
    file: Path
    offset: int
    strides: tuple[int, ...] | None = None  # in elements, when not C-contiguous (.pth only)

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.numel * DTYPES[self.dtype].itemsize

    @property
    def span(self) -> int:
        """Elements from the first to one past the last one the tensor touches."""
        if self.strides is None or not self.shape:
            return self.numel
        if self.numel == 0:
            return 0
        return 1 + sum((n - 1) * s for n, s in zip(self.shape, self.strides, strict=True))


def contiguous_strides(shape: tuple[int, ...]) -> tuple[int, ...]:
    strides, step = [], 1
    for n in reversed(shape):
        strides.append(step)
        step *= n
    return tuple(reversed(strides))


def read(ref: TensorRef) -> np.ndarray:
    """The tensor as a C-contiguous array in its source dtype (bf16 as uint16 bits)."""
    dtype = DTYPES[ref.dtype]
    count = ref.span
    out = np.empty(count, dtype)
    with ref.file.open("rb") as fh:
        fh.seek(ref.offset)
        got = fh.readinto(out.view(np.uint8).data)
    if got != out.nbytes:
        raise ConvertError(
            f"{ref.file} is truncated: tensor {ref.name} needs {out.nbytes:,} bytes at offset "
            f"{ref.offset:,} but only {max(0, got or 0):,} are there; download the file again."
        )
    if ref.strides is None or ref.strides == contiguous_strides(ref.shape):
        return out[: ref.numel].reshape(ref.shape)
    view = np.lib.stride_tricks.as_strided(
        out, ref.shape, tuple(s * dtype.itemsize for s in ref.strides), writeable=False)
    return np.ascontiguousarray(view)


def bf16_to_f32(bits: np.ndarray) -> np.ndarray:
    """bfloat16 bit patterns (uint16) to float32, exactly: bf16 is the top half of an f32."""
    return (bits.astype(np.uint32) << 16).view(np.float32)


def to_float32(data: np.ndarray, dtype: str) -> np.ndarray:
    if dtype == "BF16":
        return bf16_to_f32(data)
    return data.astype(np.float32, copy=False)


CHUNK = 1 << 17  # elements per conversion step: small enough to stay in the CPU cache


def _too_big(name: str, peak: float) -> ConvertError:
    return ConvertError(
        f"Tensor {name} holds values float16 cannot represent (max |x| = {peak:g}); "
        "this checkpoint cannot be converted to an F16 GGUF."
    )


_F16_MIN_NORMAL = (127 - 14) << 7  # bfloat16 magnitude bits (exponent, mantissa) of 2**-14
_F16_OVERFLOW = (127 + 16) << 7  # of 2**16, the first value past float16's largest exponent


def _bf16_chunk_to_f16(bits: np.ndarray, out: np.ndarray, name: str) -> None:
    """bfloat16 -> float16 bits by re-biasing the exponent: exact wherever float16 is normal.

    Exponent and mantissa sit side by side in both formats, so ``(magnitude - 112 << 7) << 3``
    is the float16 magnitude; the sign bit moves from bit 15 to bit 15.
    """
    mag = bits & 0x7FFF
    lo, hi = int(mag.min()), int(mag.max())
    if hi >= _F16_OVERFLOW:  # past float16's range, inf and nan included
        raise _too_big(name, float(np.max(np.abs(bf16_to_f32(bits)))))
    small = mag < _F16_MIN_NORMAL if lo < _F16_MIN_NORMAL else None
    np.subtract(mag, (127 - 15) << 7, out=out)  # wraps for the small ones: redone below
    out <<= 3
    out |= bits & 0x8000
    if small is not None:  # zeros and float16 subnormals: round as numpy does
        out[small] = bf16_to_f32(bits[small]).astype(np.float16).view(np.uint16)


def to_float16(data: np.ndarray, dtype: str, name: str) -> np.ndarray:
    """The tensor as float16 (bf16 exactly where float16 can hold it); refuses values past
    float16's range instead of writing inf. Works in cache-sized steps."""
    if dtype == "F16":
        return data
    flat_in = data.reshape(-1)
    out = np.empty(flat_in.size, np.float16)
    bits_out = out.view(np.uint16)
    for i in range(0, flat_in.size, CHUNK):
        piece = flat_in[i:i + CHUNK]
        if dtype == "BF16":
            _bf16_chunk_to_f16(piece, bits_out[i:i + CHUNK], name)
        else:
            peak = float(np.max(np.abs(piece))) if piece.size else 0.0
            if not math.isfinite(peak) or peak > F16_MAX:
                raise _too_big(name, peak)
            out[i:i + CHUNK] = piece
    return out.reshape(data.shape)


def unpermute_rotary(weight: np.ndarray, n_head: int) -> np.ndarray:
    """Undo the Hugging Face q/k_proj row order (rotary halves) back to Meta's interleaved pairs.

    transformers' convert_llama_weights_to_hf.py regrouped each head's rows from pairs
    (0,1),(2,3).. into two halves; llama.cpp's rope expects Meta's order. ``n_head`` is the
    query head count for q_proj and the key/value head count for k_proj.
    """
    rows = weight.shape[0]
    if rows % (2 * n_head):
        raise ConvertError(f"Cannot split {rows} rows into {n_head} rotary heads.")
    return (weight.reshape(n_head, 2, rows // n_head // 2, *weight.shape[1:])
            .swapaxes(1, 2).reshape(weight.shape))
