"""Model file checks before llama.cpp sees a file, and the GGUF facts the rest of the app needs."""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.errors import ModelFileError

GGUF_MAGIC = b"GGUF"
# Architectures of chat models this app is built and tested for (llama.cpp knows more; a file
# outside this list is refused with a clear message rather than failing deep inside llama.cpp).
SUPPORTED_ARCHITECTURES = frozenset({
    "llama", "mistral", "mixtral", "qwen2", "qwen3", "phi2", "phi3", "gemma", "gemma2", "gemma3",
    "falcon", "gpt2", "stablelm", "starcoder2", "command-r", "deepseek2", "olmo", "granite",
})
# llama.cpp's file types (general.file_type) by number, for display.
FILE_TYPES = {
    0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K",
    11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S",
    17: "Q5_K_M", 18: "Q6_K", 19: "IQ2_XXS", 20: "IQ2_XS", 21: "Q2_K_S", 22: "IQ3_XS",
    23: "IQ3_XXS", 24: "IQ1_S", 25: "IQ4_NL", 26: "IQ3_S", 27: "IQ3_M", 28: "IQ2_S", 29: "IQ2_M",
    30: "IQ4_XS", 31: "IQ1_M", 32: "BF16",
}


@dataclass(frozen=True)
class ModelFileInfo:
    """What a valid GGUF header says about a model."""

    path: Path
    size_bytes: int
    architecture: str
    name: str
    n_layers: int
    n_ctx_train: int
    n_embd: int
    n_head: int
    n_head_kv: int
    n_vocab: int
    file_type: str
    chat_template: str | None
    bos_token_id: int | None
    eos_token_id: int | None
    vocab_only: bool
    tensor_bytes: int


def check_model_file(path: str | Path, *, allow_vocab_only: bool = False) -> ModelFileInfo:
    """Validate ``path`` as a loadable GGUF model and return its header facts.

    Raises ``ModelFileError`` naming the file and the problem when it is missing, not a file,
    empty, not GGUF, truncated, unreadable, or of an unsupported architecture.
    """
    p = Path(path).expanduser()
    shown = str(p)
    if not p.exists():
        raise ModelFileError(f"Model file not found: {shown}")
    if not p.is_file():
        raise ModelFileError(f"Not a file: {shown}")
    size = p.stat().st_size
    if size == 0:
        raise ModelFileError(f"Model file is empty (0 bytes): {shown}; download it again.")
    try:
        with p.open("rb") as fh:
            head = fh.read(8)
    except OSError as err:
        raise ModelFileError(f"Cannot read model file {shown}: {err.strerror or err}") from err
    if head[:4] != GGUF_MAGIC:
        hint = " (it looks like text)" if head[:4].decode("latin-1").isprintable() else ""
        raise ModelFileError(
            f"Not a GGUF model file{hint}: {shown}; Llama Desk needs a .gguf model "
            "(for example from TheBloke/Llama-2-7B-Chat-GGUF)."
        )
    if len(head) < 8:
        raise ModelFileError(f"Model file is truncated (only {size} bytes): {shown}")
    version = struct.unpack("<I", head[4:8])[0]
    if version not in (2, 3):
        raise ModelFileError(
            f"Unsupported GGUF version {version} in {shown}; expected version 2 or 3."
        )

    return _read_header(p, shown, size, allow_vocab_only)


_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q",
            11: "<q", 12: "<d"}  # GGUF value types with a fixed size
_STRING, _ARRAY = 8, 9


class _Header:
    """A lean GGUF header parser: scalars and strings are kept, arrays only counted.

    ``gguf.GGUFReader`` builds a numpy memmap per field part (some 240,000 objects for a 49k-token
    vocabulary, over two seconds); the cyclic GC passes that triggers hold the GIL for up to
    200 ms, freezing the window while the model picker works out its fit verdicts.
    """

    def __init__(self, buf: Any) -> None:
        self.buf = buf
        self.pos = 0

    def unpack(self, fmt: str) -> Any:
        value = struct.unpack_from(fmt, self.buf, self.pos)[0]
        self.pos += struct.calcsize(fmt)
        return value

    def string(self) -> str:
        n = self.unpack("<Q")
        if self.pos + n > len(self.buf):
            raise ValueError("string past the end of the file")
        self.pos += n
        return bytes(self.buf[self.pos - n:self.pos]).decode("utf-8", errors="replace")

    def value(self, kind: int) -> Any:
        if kind == _STRING:
            return self.string()
        if kind == _ARRAY:
            return self.skip_array()
        return self.unpack(_SCALARS[kind])

    def skip_array(self) -> int:
        """Step over an array; its length stands for it (only the vocabulary's is used)."""
        kind, count = int(self.unpack("<I")), int(self.unpack("<Q"))
        if kind in _SCALARS:
            size = struct.calcsize(_SCALARS[kind])
            if self.pos + count * size > len(self.buf):
                raise ValueError("array past the end of the file")
            self.pos += count * size
        elif kind == _STRING:
            if self.pos + count * 8 > len(self.buf):
                raise ValueError("array past the end of the file")
            for _ in range(count):
                self.pos += 8 + struct.unpack_from("<Q", self.buf, self.pos)[0]
        else:
            for _ in range(count):
                self.value(kind)
        return count


def _parse(buf: Any) -> tuple[dict[str, Any], list[tuple[int, int, int]]]:
    """Key/values and (offset in the file, elements, ggml type) of each tensor."""
    hdr = _Header(buf)
    hdr.pos = 8
    n_tensors, n_kv = hdr.unpack("<Q"), hdr.unpack("<Q")
    fields: dict[str, Any] = {}
    for _ in range(n_kv):
        key = hdr.string()
        fields[key] = hdr.value(hdr.unpack("<I"))
    tensors = []
    for _ in range(n_tensors):
        hdr.string()
        elements = 1
        for _ in range(hdr.unpack("<I")):
            elements *= hdr.unpack("<Q")
        kind, offset = hdr.unpack("<I"), hdr.unpack("<Q")
        tensors.append((offset, elements, kind))
    align = int(fields.get("general.alignment") or 32)
    start = hdr.pos + (-hdr.pos % align)
    return fields, [(start + off, n, kind) for off, n, kind in tensors]


def _read_header(p: Path, shown: str, size: int, allow_vocab_only: bool) -> ModelFileInfo:
    from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType

    try:
        with p.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            fields, tensors = _parse(buf)
        tensor_bytes = 0
        data_end = 0
        for offset, elements, kind in tensors:
            block, type_size = GGML_QUANT_SIZES[GGMLQuantizationType(kind)]
            n_bytes = elements * type_size // block
            tensor_bytes += n_bytes
            data_end = max(data_end, offset + n_bytes)
    except Exception as err:
        raise ModelFileError(
            f"Model file is truncated or corrupt: {shown} ({type(err).__name__}: {err}); "
            "download it again."
        ) from err
    if data_end > size:
        raise ModelFileError(
            f"Model file is truncated: {shown} has {size:,} bytes but its tensors need "
            f"{data_end:,}; the download is incomplete, fetch it again."
        )
    arch = fields.get("general.architecture")
    if not isinstance(arch, str) or not arch:
        raise ModelFileError(f"GGUF header has no general.architecture: {shown}")
    vocab_only = not tensors
    if vocab_only and not allow_vocab_only:
        raise ModelFileError(f"GGUF file holds only a vocabulary, no weights: {shown}")
    if arch not in SUPPORTED_ARCHITECTURES:
        raise ModelFileError(
            f"Unsupported model architecture {arch!r} in {shown}; Llama Desk runs Llama-family "
            "chat models such as Llama-2-chat."
        )
    file_type = fields.get("general.file_type")
    return ModelFileInfo(
        path=p.resolve(),
        size_bytes=size,
        architecture=arch,
        name=str(fields.get("general.name") or p.stem),
        n_layers=int(fields.get(f"{arch}.block_count") or 0),
        n_ctx_train=int(fields.get(f"{arch}.context_length") or 0),
        n_embd=int(fields.get(f"{arch}.embedding_length") or 0),
        n_head=int(fields.get(f"{arch}.attention.head_count") or 0),
        n_head_kv=int(
            fields.get(f"{arch}.attention.head_count_kv")
            or fields.get(f"{arch}.attention.head_count")
            or 0
        ),
        n_vocab=int(fields.get("tokenizer.ggml.tokens") or 0),
        file_type=FILE_TYPES.get(int(file_type), str(file_type)) if file_type is not None else "",
        chat_template=fields.get("tokenizer.chat_template"),
        bos_token_id=fields.get("tokenizer.ggml.bos_token_id"),
        eos_token_id=fields.get("tokenizer.ggml.eos_token_id"),
        vocab_only=vocab_only,
        tensor_bytes=tensor_bytes,
    )
