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
    goes. At least the last prompt token is left to read (the reply is sampled from it), and
    never exactly one token after a kept prefix: see ``read_prompt``. Returns the tokens kept."""
    cached = llm.input_ids[: llm.n_tokens].tolist()
    common = 0
    for a, b in zip(cached, tokens, strict=False):
        if a != b:
            break
        common += 1
    reuse = max(0, min(common, len(tokens) - 1))
    if reuse and len(tokens) - reuse == 1:
        reuse -= 1  # read two tokens rather than one (a one-token batch computes differently)
    if reuse < llm.n_tokens and not llm._ctx.kv_cache_seq_rm(-1, reuse, -1):
        llm.reset()  # this kind of memory cannot drop a tail: start over
        return 0
    llm.n_tokens = reuse
    return reuse


def read_prompt(llm: Any, tokens: list[int], start: int,
                on_progress: Callable[[int, int], None] | None,
                cancel: threading.Event) -> bool:
    """Evaluate ``tokens[start:]`` in batches, reporting (read, to read) and checking
    ``cancel`` at every batch boundary (llama.cpp's abort callback also stops a batch midway,
    raising RuntimeError); the reply is then sampled from the last batch's logits.

    Batches are sized from the speed measured so far so a report comes about every
    PROGRESS_INTERVAL_S, within MIN_BATCH..n_batch tokens: on a GPU that is n_batch at once;
    on a CPU reading for a big model it keeps the progress line and Stop lively. No batch holds
    a single token (unless the whole prompt is one): on llama.cpp's CPU backend any split of a
    prompt into batches of two or more tokens gives bit-identical KV values, but a one-token
    batch (as in decoding) can differ in the last bit, so prompts read this way can be
    continued from a kept state with exactly the reply a cold read gives. Returns False when
    cancelled (the batches read so far stay in the KV cache).
    """
    end, pos = len(tokens), start
    total = len(tokens) - start
    size = min(llm.n_batch, FIRST_BATCH)
    while pos < end:
        if cancel.is_set():
            return False
        left = end - pos
        n = min(size, left)
        if left - n == 1:  # never leave one token for a batch of its own
            n = left if left <= llm.n_batch else n - 1
        began = time.perf_counter()
        llm.eval(tokens[pos:pos + n])
        pos += n
        if on_progress is not None:
            on_progress(pos - start, total)
        rate = n / max(time.perf_counter() - began, 1e-6)
        size = int(min(llm.n_batch, max(MIN_BATCH, rate * PROGRESS_INTERVAL_S)))
    return not cancel.is_set()
