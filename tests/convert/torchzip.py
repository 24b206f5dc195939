"""Write PyTorch's zip checkpoint format without torch: a protocol-2 pickle by hand + raw storages.

The pickle has exactly the shape torch.save gives a state dict: an OrderedDict whose values are
``torch._utils._rebuild_tensor_v2((persistent 'storage' id), offset, size, stride, False,
OrderedDict())``, each storage a ``data/<key>`` entry of the zip.
"""

from __future__ import annotations

import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

STORAGE_OF = {"BF16": "BFloat16Storage", "F16": "HalfStorage", "F32": "FloatStorage"}


@dataclass
class RawTensor:
    """A tensor to store: ``data`` is the storage (bf16 as uint16 bits), viewed with these args."""

    dtype: str
    data: np.ndarray
    shape: tuple[int, ...]
    stride: tuple[int, ...]
    offset: int = 0

    @classmethod
    def of(cls, dtype: str, data: np.ndarray) -> RawTensor:
        shape = tuple(data.shape)
        stride, step = [], 1
        for n in reversed(shape):
            stride.append(step)
            step *= n
        return cls(dtype, np.ascontiguousarray(data).reshape(-1), shape, tuple(reversed(stride)))


def _global(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _str(text: str) -> bytes:
    raw = text.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw


def _int(n: int) -> bytes:
    if -(2**31) <= n < 2**31:
        return b"J" + struct.pack("<i", n)
    raw = n.to_bytes((n.bit_length() + 8) // 8, "little", signed=True)
    return b"\x8a" + bytes([len(raw)]) + raw


def _tuple(items: list[bytes]) -> bytes:
    return b"(" + b"".join(items) + b"t"


def _ordered_dict() -> bytes:
    return _global("collections", "OrderedDict") + b")R"


def state_dict_pickle(tensors: dict[str, RawTensor], extra_global: tuple[str, str] | None = None) -> bytes:
    """The data.pkl bytes; ``extra_global`` adds a call to another global (hostile-file tests)."""
    out = [b"\x80\x02", _ordered_dict(), b"("]
    for key, (name, t) in enumerate(tensors.items()):
        pid = _tuple([_str("storage"), _global("torch", STORAGE_OF[t.dtype]), _str(str(key)),
                      _str("cpu"), _int(t.data.size)])
        args = _tuple([pid + b"Q", _int(t.offset), _tuple([_int(s) for s in t.shape]),
                       _tuple([_int(s) for s in t.stride]), b"\x89", _ordered_dict()])
        out += [_str(name), _global("torch._utils", "_rebuild_tensor_v2"), args, b"R"]
    if extra_global is not None:
        out += [_str("payload"), _global(*extra_global), _tuple([_str("touch /tmp/llama-desk-pwned")]),
                b"R"]
    out += [b"u."]
    return b"".join(out)


def write_pth(path: Path, tensors: dict[str, RawTensor],
              extra_global: tuple[str, str] | None = None) -> Path:
    """Write ``tensors`` as a torch zip checkpoint (stored, like torch.save) at ``path``."""
    prefix = path.name.removesuffix(".pth").removesuffix(".bin")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr(f"{prefix}/data.pkl", state_dict_pickle(tensors, extra_global))
        zf.writestr(f"{prefix}/byteorder", "little")
        for key, t in enumerate(tensors.values()):
            zf.writestr(f"{prefix}/data/{key}", t.data.tobytes())
        zf.writestr(f"{prefix}/version", "3\n")
    return path
