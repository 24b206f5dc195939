"""Context budget: oldest exchanges go first; the system prompt and newest message always stay."""

from __future__ import annotations

from typing import Any

import pytest

from app.engine.budget import TokenCounts, fit_prompt, split_history
from app.engine.formats import Llama2Format, TemplateFormat
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


# -- walking back from the newest message: bounded work, the same prompt as a render of the tail

CHATML = ("{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
          "<|im_start|>system\nYou are a helpful AI assistant.<|im_end|>\n{% endif %}"
          "<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n{% endfor %}"
          "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


class CountingVocab:
    """The real vocabulary, counting how many texts it tokenizes."""

    def __init__(self, vocab: Any) -> None:
        self._vocab = vocab
        self.bos_id, self.eos_id = vocab.bos_id, vocab.eos_id
        self.bos_text, self.eos_text, self.add_bos = vocab.bos_text, vocab.eos_text, vocab.add_bos
        self.calls = 0

    def encode(self, text: str, *, special: bool) -> list[int]:
        self.calls += 1
        return list(self._vocab.encode(text, special=special))


def generated_chat(exchanges: int, system: bool = True) -> list[Message]:
    msgs = [Message("system", "Answer briefly.")] if system else []
    for i in range(exchanges):
        msgs += [Message("user", f"Question {i}: " + "word " * (5 + i % 13)),
                 Message("assistant", f"Answer {i}: " + "mot " * (3 + i % 17))]
    return [*msgs, Message("user", "And the last question?")]


def tail_by_hand(msgs: list[Message], fmt: Any, tok: Any, budget: int) -> tuple[int, Any]:
    """The most exchanges kept (rendering every candidate tail in full), and that prompt."""
    head, exchanges, newest = split_history(msgs)
    best = None
    for keep in range(len(exchanges) + 1):
        kept = [m for ex in exchanges[len(exchanges) - keep:] for m in ex]
        prompt = fmt.render([*head, *kept, newest], tok)
        if len(prompt.tokens) > budget:
            break
        best = (sum(len(ex) for ex in exchanges[: len(exchanges) - keep]), prompt)
    assert best is not None
    return best


@pytest.mark.parametrize("fmt", [Llama2Format(), TemplateFormat(CHATML)], ids=["llama-2", "chatml"])
def test_a_20000_message_turn_costs_what_a_20_message_one_does(spm_vocab: Any, fmt: Any) -> None:
    # A context the 20-message conversation just fills: the long one keeps as much of its tail.
    budget = len(fmt.render(generated_chat(10), spm_vocab).tokens) + 5
    work = {}
    for exchanges in (10, 10_000):  # 20 and 20,000 messages (+ system + the new question)
        msgs = generated_chat(exchanges)
        tok = CountingVocab(spm_vocab)
        counts = TokenCounts()
        first = fit_prompt(msgs, fmt, tok, budget, 4096, counts=counts, model_id="m")
        cold = tok.calls
        again = fit_prompt(msgs, fmt, tok, budget, 4096, counts=counts, model_id="m")
        work[exchanges] = (cold, tok.calls - cold, counts.tokenized)
        dropped, by_hand = tail_by_hand(msgs, fmt, spm_vocab, budget)
        for prompt in (first, again):
            assert prompt.tokens == by_hand.tokens and prompt.text == by_hand.text
            assert prompt.dropped_messages == dropped
    (small_cold, small_warm, small_counted), (cold, warm, counted) = work[10], work[10_000]
    assert counted <= small_counted + 3  # exchanges tokenized for counting: the kept tail only
    assert cold <= 1.5 * small_cold + 6  # first turn (nothing cached yet)
    assert warm <= 1.5 * small_warm + 6  # next turn: only the kept prompt is tokenized again


def test_counts_are_per_model_and_format(spm_vocab: Any) -> None:
    counts = TokenCounts()
    msgs = generated_chat(40)
    fit_prompt(msgs, Llama2Format(), spm_vocab, 600, 1024, counts=counts, model_id="a")
    seen = counts.tokenized
    fit_prompt(msgs, Llama2Format(), spm_vocab, 600, 1024, counts=counts, model_id="a")
    assert counts.tokenized == seen  # nothing new to count
    fit_prompt(msgs, Llama2Format(), spm_vocab, 600, 1024, counts=counts, model_id="b")
    assert counts.tokenized > seen  # another model counts its own
    seen = counts.tokenized
    fit_prompt(msgs, TemplateFormat(CHATML), spm_vocab, 600, 1024, counts=counts, model_id="a")
    assert counts.tokenized > seen  # and so does another format


def test_reply_less_turns_and_no_system_still_match_the_tail(spm_vocab: Any) -> None:
    msgs = generated_chat(60, system=False)
    msgs[41:43] = [Message("user", "A question whose reply failed."), Message("assistant", "")]
    msgs[80:80] = [Message("user", "Two in a row")]
    for fmt in (Llama2Format(), TemplateFormat(CHATML)):
        for budget in (300, 700, 1100):
            dropped, by_hand = tail_by_hand(msgs, fmt, spm_vocab, budget)
            prompt = fit_prompt(msgs, fmt, spm_vocab, budget, 2048, counts=TokenCounts())
            assert prompt.tokens == by_hand.tokens and prompt.dropped_messages == dropped
