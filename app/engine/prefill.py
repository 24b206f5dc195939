"""Reading a prompt into llama.cpp: keep the KV cache's matching prefix, evaluate the rest in batches."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

# The first batch is small so the first progress report (and a Stop check) comes soon; later
# ones are sized to report about every PROGRESS_INTERVAL_S.
FIRST_BATCH = 128
MIN_BATCH = 32
PROGRESS_INTERVAL_S = 0.5


def keep_prefix(llm: Any, tokens: list[int]) -> int:
    """Keep ``llm``'s KV cache up to the first token where it differs from ``tokens``; the rest
    goes. At least the last prompt token is left to evaluate (the reply is sampled from it).
    Returns the tokens kept."""
    cached = llm.input_ids[: llm.n_tokens].tolist()
    common = 0
    for a, b in zip(cached, tokens, strict=False):
        if a != b:
            break
        common += 1
    reuse = max(0, min(common, len(tokens) - 1))
    if reuse < llm.n_tokens and not llm._ctx.kv_cache_seq_rm(-1, reuse, -1):
        llm.reset()  # this kind of memory cannot drop a tail: start over
        return 0
    llm.n_tokens = reuse
    return reuse


def read_prompt(llm: Any, tokens: list[int], start: int,
                on_progress: Callable[[int, int], None] | None,
                cancel: threading.Event) -> bool:
    """Evaluate ``tokens[start:-1]`` in batches, reporting (read, to read) and checking
    ``cancel`` at every batch boundary (llama.cpp's abort callback also stops a batch midway,
    raising RuntimeError).

    Batches are sized from the speed measured so far so a report comes about every
    PROGRESS_INTERVAL_S, within MIN_BATCH..n_batch tokens: on a GPU that is n_batch at once;
    on a CPU reading for a big model it keeps the progress line and Stop lively. Returns
    False when cancelled (the batches read so far stay in the KV cache).
    """
    end, pos = len(tokens) - 1, start
    total = len(tokens) - start
    size = min(llm.n_batch, FIRST_BATCH)
    while pos < end:
        if cancel.is_set():
            return False
        n = min(size, end - pos)
        began = time.perf_counter()
        llm.eval(tokens[pos:pos + n])
        pos += n
        if on_progress is not None:
            on_progress(pos - start, total)
        rate = n / max(time.perf_counter() - began, 1e-6)
        size = int(min(llm.n_batch, max(MIN_BATCH, rate * PROGRESS_INTERVAL_S)))
    return not cancel.is_set()
