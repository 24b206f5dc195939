"""Context budget: oldest exchanges go first; the system prompt and newest message always stay."""

from __future__ import annotations

from typing import Any

import pytest

from app.engine.budget import fit_prompt, split_history
from app.engine.formats import Llama2Format
from app.engine.types import Message
from app.errors import ContextOverflowError


def long_chat(exchanges: int) -> list[Message]:
    msgs = [Message("system", "Always answer in French.")]
    for i in range(exchanges):
        msgs += [Message("user", f"Question {i}: " + "word " * 40),
                 Message("assistant", f"Answer {i}: " + "mot " * 40)]
    return [*msgs, Message("user", "Final question?")]


def test_fits_untouched_when_small(spm_vocab: Any) -> None:
    prompt = fit_prompt(long_chat(2), Llama2Format(), spm_vocab, budget=4000, n_ctx=4096)
    assert prompt.dropped_messages == 0
    assert "Question 0" in prompt.text


def test_drops_oldest_exchanges_keeps_system_and_newest(spm_vocab: Any) -> None:
    msgs = long_chat(30)
    full = Llama2Format().render(msgs, spm_vocab)
    budget = len(full.tokens) // 3
    prompt = fit_prompt(msgs, Llama2Format(), spm_vocab, budget=budget, n_ctx=budget + 512)
    assert len(prompt.tokens) <= budget
    assert prompt.dropped_messages > 0 and prompt.dropped_messages % 2 == 0
    assert "<<SYS>>\nAlways answer in French.\n<</SYS>>" in prompt.text
    assert prompt.text.endswith("[INST] Final question? [/INST]")
    kept = 30 - prompt.dropped_messages // 2
    assert f"Question {30 - kept}:" in prompt.text and f"Question {29 - kept}:" not in prompt.text
    # Dropping one exchange fewer would not have fitted: the cut is as small as possible.
    fewer = [msgs[0], *msgs[1 + prompt.dropped_messages - 2:]]
    assert len(Llama2Format().render(fewer, spm_vocab).tokens) > budget


def test_message_too_long_even_alone_names_both_numbers(spm_vocab: Any) -> None:
    msgs = [Message("system", "sys"), Message("user", "token " * 600)]
    with pytest.raises(ContextOverflowError) as err:
        fit_prompt(msgs, Llama2Format(), spm_vocab, budget=300, n_ctx=512)
    text = str(err.value)
    assert "300" in text and "needs 6" in text and "512-token context" in text


def test_split_history_groups_exchanges() -> None:
    head, exchanges, newest = split_history(
        [Message("system", "s"), Message("user", "a"), Message("assistant", "b"),
         Message("assistant", "b2"), Message("user", "c")])
    assert head == [Message("system", "s")]
    assert exchanges == [[Message("user", "a"), Message("assistant", "b"), Message("assistant", "b2")]]
    assert newest == Message("user", "c")
