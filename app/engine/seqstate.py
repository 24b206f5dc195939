"""llama.cpp sequence state: copy one context's KV cache out and back, keyed by what it depends on."""

from __future__ import annotations

import ctypes
import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SEQ_ID = 0  # the engine runs one sequence per context
STATE_FORMAT = 1  # bump when what save() returns changes meaning


def state_key(path: Path, *, n_ctx: int, kv_type: str, flash_attn: bool, gpu_layers: int,
              prompt_format: str) -> str:
    """What a saved state must match to be restored: the model file's identity (resolved path,
    size, modification time), the context size, the KV cache type and layout (flash attention
    stores V differently), the GPU layers, the prompt format, and the llama.cpp build and state
    format (its binary layout changes between versions)."""
    import llama_cpp

    stat = path.stat()
    return (f"kvstate {STATE_FORMAT} | llama-cpp-python {llama_cpp.__version__} | "
            f"{path.resolve()} | {stat.st_size} bytes | mtime {stat.st_mtime_ns} | "
            f"ctx {n_ctx} | kv {kv_type} | fa {int(flash_attn)} | gpu {gpu_layers} | "
            f"format {prompt_format}")


def save(llm: Any) -> bytearray:
    """The KV cache of the context's sequence (llama_state_seq_get_data): only the cells in use,
    without the logits buffer and the scores copy that ``Llama.save_state()`` adds. Copied once,
    straight into the returned buffer."""
    import llama_cpp

    ctx = llm._ctx.ctx
    size = int(llama_cpp.llama_state_seq_get_size(ctx, SEQ_ID))
    out = bytearray(size)
    buf = (ctypes.c_uint8 * size).from_buffer(out)
    written = int(llama_cpp.llama_state_seq_get_data(ctx, buf, size, SEQ_ID))
    del buf  # releases the export of ``out`` so it can be resized
    if written <= 0 or written > size:
        raise RuntimeError(f"llama.cpp returned {written} of {size} state bytes")
    del out[written:]
    return out


def _pointer(data: bytes | bytearray) -> Any:
    """A uint8 pointer to ``data``'s own memory (llama.cpp only reads it): no copy."""
    if isinstance(data, bytearray):
        return (ctypes.c_uint8 * len(data)).from_buffer(data)
    return ctypes.cast(ctypes.c_char_p(data), ctypes.POINTER(ctypes.c_uint8))


def restore(llm: Any, tokens: list[int], data: bytes | bytearray) -> bool:
    """Put ``data`` (from ``save``) back as the context's sequence covering ``tokens``.

    On failure the context is left empty (never half restored) and False is returned.
    """
    import llama_cpp

    ctx = llm._ctx.ctx
    if not tokens or len(tokens) > llm.n_ctx():
        return False
    llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(ctx), True)
    llm.n_tokens = 0
    if int(llama_cpp.llama_state_seq_set_data(ctx, _pointer(data), len(data), SEQ_ID)) <= 0:
        log.warning("llama.cpp refused a kept state (%d bytes); reading the prompt instead",
                    len(data))
        llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(ctx), True)
        return False
    n = len(tokens)
    last = int(llama_cpp.llama_memory_seq_pos_max(llama_cpp.llama_get_memory(ctx), SEQ_ID))
    if last != n - 1:  # the state covers other positions than the tokens it came with
        log.warning("a kept state ends at position %d, not %d; reading the prompt instead",
                    last, n - 1)
        llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(ctx), True)
        return False
    llm.input_ids[:n] = tokens
    llm.n_tokens = n
    llm._requires_eval = True  # logits are not part of the state: the next token is evaluated
    return True
