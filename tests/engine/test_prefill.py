"""Prompt reading in batches on the real starter model: progress and Stop at batch boundaries,
and batch splits that do not change a single bit of the reply."""

from __future__ import annotations

import itertools
import threading
from typing import Any

import numpy as np
import pytest

from app.engine.engine import LlamaEngine
from app.engine.prefill import FIRST_BATCH, read_prompt
from app.engine.types import Message, Sampling

pytestmark = pytest.mark.slow
LONG = " ".join(f"The {w} sailed past the {v} at dawn." for w, v in
                zip(["clipper", "schooner", "ketch", "junk", "dhow"] * 30,
                    ["lighthouse", "harbour", "reef", "island", "cape", "fort"] * 25, strict=False))


def test_progress_comes_at_every_batch_boundary(starter_engine: LlamaEngine) -> None:
    starter_engine.reset_context()
    seen: list[tuple[int, int]] = []
    gen = starter_engine.generate([Message("user", LONG)], Sampling(max_tokens=2, seed=1),
                                  on_progress=lambda read, total: seen.append((read, total)))
    gen.text()
    total = gen.result.prompt_tokens
    assert total > 2 * 512
    assert seen[0] == (0, total) and seen[-1] == (total, total)
    reads = [read for read, _ in seen]
    assert reads[1] == FIRST_BATCH and reads == sorted(reads)
    steps = [b - a for a, b in itertools.pairwise(reads) if b > a]
    assert len(steps) >= 3 and all(2 <= s <= 512 for s in steps)


def test_stop_at_a_batch_boundary_keeps_what_was_read(starter_engine: LlamaEngine) -> None:
    starter_engine.reset_context()
    msgs = [Message("user", LONG)]

    def stop_after_first(read: int, _total: int) -> None:
        if read:
            threading.Thread(target=starter_engine.cancel).start()
            threading.Event().wait(0.05)

    gen = starter_engine.generate(msgs, Sampling(max_tokens=8, seed=1), on_progress=stop_after_first)
    assert gen.text() == ""
    assert gen.result.finish_reason == "cancelled" and gen.result.generated_tokens == 0
    again = starter_engine.generate(msgs, Sampling(max_tokens=2, seed=1))
    again.text()
    assert again.result.finish_reason == "length"
    assert again.result.reused_tokens >= FIRST_BATCH  # the batches read before Stop stay


def logits_of(llm: Any) -> Any:
    import llama_cpp

    ptr = llama_cpp.llama_get_logits_ith(llm._ctx.ctx, -1)
    return np.ctypeslib.as_array(ptr, shape=(llm.n_vocab(),)).copy()


def test_any_split_into_batches_gives_the_same_bits(starter_engine: LlamaEngine) -> None:
    """What kept states rely on: a prompt read from a kept prefix gives exactly the logits of
    a cold read (llama.cpp's CPU backend), as long as no batch holds a single token."""
    llm = starter_engine._llm
    tokens = llm.tokenize(LONG.encode(), add_bos=False)[:700]
    stop = threading.Event()
    results = []
    for starts in ([0], [0, 300], [0, 129, 131, 400], [0, 512, 698]):
        starter_engine.reset_context()
        for start, end in zip(starts, [*starts[1:], len(tokens)], strict=False):
            assert read_prompt(llm, tokens[:end], start, None, stop)
        results.append(logits_of(llm))
    for other in results[1:]:
        assert np.array_equal(other, results[0])
