"""PyTorch .pth / .bin checkpoints read as what they are (a zip of raw storages plus a pickle).

Nothing here imports torch or runs ``torch.load``: the pickle is read by an unpickler that
knows only the globals a plain tensor state dict uses and refuses every other one, so a
checkpoint cannot run code. Tensor data is read later, one tensor at a time, straight from the
zip entries (torch stores them uncompressed).
"""

from __future__ import annotations

import collections
import io
import pickle
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.convert.errors import ConvertError
from app.convert.tensors import DTYPES, TensorRef

STORAGES = {"BFloat16Storage": "BF16", "HalfStorage": "F16", "FloatStorage": "F32"}
_LOCAL_HEADER = struct.Struct("<4s5H3I2H")  # zip local file header, 30 bytes
LEGACY_MAGIC = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8"  # torch.save before 1.6: pickled magic number


@dataclass(frozen=True)
class _StorageType:
    """A storage class the pickle names (torch.BFloat16Storage ...), as its dtype."""

    dtype: str


@dataclass(frozen=True)
class _Storage:
    """One storage: its zip entry ``data/<key>`` holding ``numel`` elements of ``dtype``.

    Several tensors may view one storage (hence a separate object, as in torch's format).
    """

    dtype: str
    key: str
    numel: int


@dataclass(frozen=True)
class _Tensor:
    """A tensor as ``_rebuild_tensor_v2`` describes it: a view into a storage."""

    storage: _Storage
    offset: int
    shape: tuple[int, ...]
    strides: tuple[int, ...]


def _rebuild_tensor_v2(storage: Any, storage_offset: Any, size: Any, stride: Any,
                       requires_grad: Any = False, backward_hooks: Any = None,
                       metadata: Any = None) -> _Tensor:
    if not isinstance(storage, _Storage):
        raise pickle.UnpicklingError("tensor without a storage")
    return _Tensor(storage, int(storage_offset), tuple(int(s) for s in size),
                   tuple(int(s) for s in stride))


class _Unpickler(pickle.Unpickler):
    """Accepts torch._utils._rebuild_tensor_v2, three storage types and OrderedDict; nothing else."""

    def __init__(self, data: bytes, path: Path) -> None:
        super().__init__(io.BytesIO(data))
        self.path = path

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor_v2
        if module == "torch" and name in STORAGES:
            return _StorageType(STORAGES[name])
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        raise ConvertError(
            f"{self.path} is not a plain weights checkpoint: its pickle asks for {module}.{name}, "
            "which could run code; Llama Desk only reads tensors and refused the file."
        )

    def persistent_load(self, pid: Any) -> Any:
        if (not isinstance(pid, tuple) or len(pid) != 5 or pid[0] != "storage"
                or not isinstance(pid[1], _StorageType)):
            raise pickle.UnpicklingError(f"unexpected persistent id {type(pid).__name__}")
        return _Storage(pid[1].dtype, str(pid[2]), int(pid[4]))


def _open_zip(path: Path) -> zipfile.ZipFile:
    try:
        with path.open("rb") as fh:
            head = fh.read(len(LEGACY_MAGIC))
    except OSError as err:
        raise ConvertError(f"Cannot read {path}: {err.strerror or err}") from err
    if head == LEGACY_MAGIC:
        raise ConvertError(f"{path} uses PyTorch's pre-1.6 file format, which Llama Desk cannot "
                           "read; use the safetensors or zip-format (.pth) files instead.")
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError):
        raise ConvertError(f"{path} is truncated or not a PyTorch checkpoint (no zip directory "
                           "at its end); download it again.") from None


def _data_offset(fh: Any, info: zipfile.ZipInfo) -> int:
    fh.seek(info.header_offset)
    fields = _LOCAL_HEADER.unpack(fh.read(_LOCAL_HEADER.size))
    if fields[0] != b"PK\x03\x04":
        raise ValueError("bad local header")
    name_len, extra_len = fields[-2], fields[-1]
    return int(info.header_offset + _LOCAL_HEADER.size + name_len + extra_len)


def read_index(path: Path) -> dict[str, TensorRef]:
    """The tensors of a zip-format PyTorch checkpoint, without reading their data."""
    with _open_zip(path) as zf:
        pickles = [n for n in zf.namelist() if n.endswith("/data.pkl") or n == "data.pkl"]
        if len(pickles) != 1:
            raise ConvertError(f"{path} is not a PyTorch checkpoint (no single data.pkl inside).")
        prefix = pickles[0][: -len("data.pkl")]
        byteorder = prefix + "byteorder"
        if byteorder in zf.namelist() and zf.read(byteorder).strip() not in (b"", b"little"):
            raise ConvertError(f"{path} was saved on a big-endian machine; it cannot be read.")
        try:
            obj = _Unpickler(zf.read(pickles[0]), path).load()
        except ConvertError:
            raise
        except Exception as err:
            raise ConvertError(f"{path}: its pickle cannot be read as a tensor state dict "
                               f"({type(err).__name__}: {err}).") from None
        if not isinstance(obj, dict):
            raise ConvertError(f"{path} holds a {type(obj).__name__}, not a state dict of tensors.")
        refs: dict[str, TensorRef] = {}
        with path.open("rb") as fh:
            for name, tensor in obj.items():
                if not isinstance(tensor, _Tensor):
                    continue  # non-tensor entries (none in Llama checkpoints) carry no weights
                refs[str(name)] = _ref(zf, fh, path, prefix, str(name), tensor)
    return refs


def _ref(zf: zipfile.ZipFile, fh: Any, path: Path, prefix: str, name: str, t: _Tensor) -> TensorRef:
    entry = f"{prefix}data/{t.storage.key}"
    try:
        info = zf.getinfo(entry)
    except KeyError:
        raise ConvertError(f"{path} is damaged: storage {entry} of tensor {name} is missing.") from None
    if info.compress_type != zipfile.ZIP_STORED:
        raise ConvertError(f"{path}: storage of {name} is compressed; torch never writes that, "
                           "so the file was repacked: use the original download.")
    item = DTYPES[t.storage.dtype].itemsize
    ref = TensorRef(name, t.storage.dtype, t.shape, path, 0, t.strides)
    if t.offset + ref.span > t.storage.numel or info.file_size < t.storage.numel * item:
        raise ConvertError(f"{path} is damaged: tensor {name} reaches past its storage.")
    try:
        start = _data_offset(fh, info)
    except (ValueError, struct.error):
        raise ConvertError(f"{path} is damaged (bad zip entry for {name}).") from None
    return TensorRef(name, t.storage.dtype, t.shape, path, start + t.offset * item, t.strides)
