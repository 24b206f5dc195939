"""Model file checks before llama.cpp sees a file, and the GGUF facts the rest of the app needs."""

from __future__ import annotations

import errno
import math
import mmap
import stat
import struct
from dataclasses import dataclass
from pathlib import Path

from app.engine import hparams
from app.engine.gguf_header import parse
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
    empty, not GGUF, truncated, unreadable, of an unsupported architecture, or when a header
    value would make llama.cpp fail or abort (``app.engine.hparams``). Path problems (a symlink
    loop, a permission, a name too long) are one line too.
    """
    p = Path(path).expanduser()
    shown = str(p)
    try:
        st = p.stat()
    except OSError as err:
        raise ModelFileError(_path_problem(err, shown)) from err
    if not stat.S_ISREG(st.st_mode):
        raise ModelFileError(f"Not a file: {shown}")
    size = st.st_size
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


def _path_problem(err: OSError, shown: str) -> str:
    """One line for a path that cannot be looked at."""
    if err.errno == errno.ENOENT:
        return f"Model file not found: {shown}"
    if err.errno == errno.ELOOP:
        return f"Model file path is a loop of symbolic links: {shown}; point it at the real file."
    if err.errno == errno.ENOTDIR:
        return f"Model file not found: {shown} (a part of the path is not a folder)"
    if err.errno == errno.ENAMETOOLONG:
        return f"Model file path is too long: {shown[:200]}…"
    return f"Cannot open model file {shown}: {err.strerror or err}"


def real_path(path: Path) -> Path:
    """``path`` with symbolic links resolved; a loop or another error keeps it as given."""
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # RuntimeError: a symlink loop before Python 3.13
        return path.absolute()


def _read_header(p: Path, shown: str, size: int, allow_vocab_only: bool) -> ModelFileInfo:
    from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType

    try:
        with p.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            header = parse(buf)
        tensor_bytes = 0
        data_end = 0
        for tensor in header.tensors:
            block, type_size = GGML_QUANT_SIZES[GGMLQuantizationType(tensor.kind)]
            elements = math.prod(tensor.dims)
            n_bytes = elements * type_size // block
            tensor_bytes += n_bytes
            data_end = max(data_end, tensor.offset + n_bytes)
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
    fields = header.fields
    arch = fields.get("general.architecture")
    if not isinstance(arch, str) or not arch:
        raise ModelFileError(f"GGUF header has no general.architecture: {shown}")
    vocab_only = not header.tensors
    if vocab_only and not allow_vocab_only:
        raise ModelFileError(f"GGUF file holds only a vocabulary, no weights: {shown}")
    if arch not in SUPPORTED_ARCHITECTURES:
        raise ModelFileError(
            f"Unsupported model architecture {arch[:60]!r} in {shown}; Llama Desk runs "
            "Llama-family chat models such as Llama-2-chat."
        )
    shape = hparams.check(header, shown, arch, vocab_only=vocab_only)
    file_type = fields.get("general.file_type")
    return ModelFileInfo(
        path=real_path(p),
        size_bytes=size,
        architecture=arch,
        name=str(fields.get("general.name") or p.stem),
        n_layers=shape.n_layers,
        n_ctx_train=shape.n_ctx_train,
        n_embd=shape.n_embd,
        n_head=shape.n_head,
        n_head_kv=shape.n_head_kv,
        n_vocab=shape.n_vocab,
        file_type=FILE_TYPES.get(int(file_type), str(file_type)) if file_type is not None else "",
        chat_template=fields.get("tokenizer.chat_template"),
        bos_token_id=fields.get("tokenizer.ggml.bos_token_id"),
        eos_token_id=fields.get("tokenizer.ggml.eos_token_id"),
        vocab_only=vocab_only,
        tensor_bytes=tensor_bytes,
    )
