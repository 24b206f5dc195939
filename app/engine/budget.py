"""Context budget: keep the newest exchanges that fit, walking back from the newest; system kept."""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable, Sequence

from app.engine.formats import PromptFormat, Tokenizer
from app.engine.types import Message, PreparedPrompt
from app.errors import ContextOverflowError, SettingsError

GUESS_OVERHEAD = 4.0  # tokens a message's markup adds to its text, until measured for a format


def split_history(messages: Sequence[Message]) -> tuple[list[Message], list[list[Message]], Message]:
    """Split into (system messages at the start, exchanges, newest user message).

    An exchange is a user message with the replies that follow it; dropping whole exchanges keeps
    the remaining dialog well formed.
    """
    msgs = list(messages)
    if not msgs or msgs[-1].role != "user":
        raise SettingsError("The last message sent to the model must be from the user.")
    start = 0
    while start < len(msgs) and msgs[start].role == "system":
        start += 1
    head, newest = msgs[:start], msgs[-1]
    exchanges: list[list[Message]] = []
    for msg in msgs[start:-1]:
        if msg.role == "user" or not exchanges:
            exchanges.append([msg])
        else:
            exchanges[-1].append(msg)
    return head, exchanges, newest


class TokenCounts:
    """Token counts of exchanges, per model and format, so each is tokenized once (LRU-capped).

    Keys are a digest of the exchange's roles and text with the model's identity and the format
    name, so the cache serves stored conversations, unsaved chats and API requests alike, and a
    count is never used for another model or format. ``tokenized`` counts the exchanges that had
    to be tokenized (what preparing turns cost), ``hits`` those found here.
    """

    def __init__(self, capacity: int = 200_000) -> None:
        self.capacity = capacity
        self._counts: OrderedDict[tuple[str, str, bytes], tuple[int, bool]] = OrderedDict()
        self._overhead: dict[tuple[str, str], float] = {}
        self.tokenized = 0
        self.hits = 0

    @staticmethod
    def digest(exchange: Sequence[Message]) -> bytes:
        h = hashlib.blake2b(digest_size=16)
        for msg in exchange:
            h.update(msg.role.encode())
            h.update(b"\x00")
            h.update(msg.content.encode("utf-8", "surrogatepass"))
            h.update(b"\x01")
        return h.digest()

    def count(self, model_id: str, fmt: PromptFormat, tok: Tokenizer,
              exchange: Sequence[Message]) -> tuple[int, bool]:
        """``fmt.exchange_tokens`` of ``exchange``, from the cache when it was counted before."""
        key = (model_id, fmt.name, self.digest(exchange))
        found = self._counts.get(key)
        if found is not None:
            self._counts.move_to_end(key)
            self.hits += 1
            return found
        self.tokenized += 1
        found = self._counts[key] = fmt.exchange_tokens(exchange, tok)
        if len(self._counts) > self.capacity:
            self._counts.popitem(last=False)
        return found

    def overhead(self, model_id: str, fmt: PromptFormat) -> float:
        """Markup tokens per message that a text-only count misses (measured, else a guess)."""
        return self._overhead.get((model_id, fmt.name), GUESS_OVERHEAD)

    def learn(self, model_id: str, fmt: PromptFormat, messages: int, text_tokens: int,
              rendered_extra: int) -> None:
        """Remember the markup per message that an exact render showed."""
        if messages > 0:
            self._overhead[(model_id, fmt.name)] = max(0.0, (rendered_extra - text_tokens)
                                                       / messages)


def fit_prompt(
    messages: Sequence[Message], fmt: PromptFormat, tok: Tokenizer, budget: int, n_ctx: int, *,
    counts: TokenCounts | None = None, model_id: str = "",
) -> PreparedPrompt:
    """Render ``messages`` in at most ``budget`` tokens, keeping as many of the newest
    exchanges as fit.

    Walks back from the newest message with each exchange's token count (cached in
    ``counts``), so the work is bounded by the context, not the history; then renders the kept
    tail exactly as ``fmt.render`` renders it alone and checks the total, stepping by whole
    exchanges where a count was only an estimate. The system prompt and the newest user
    message are never dropped. ``dropped_messages`` says how many messages were left out.
    Raises ``ContextOverflowError`` naming both numbers when even the system prompt plus the
    newest message do not fit.
    """
    head, exchanges, newest = split_history(messages)
    counts = counts if counts is not None else TokenCounts()
    n = len(exchanges)
    renders: dict[int, PreparedPrompt] = {}

    def render(keep: int) -> PreparedPrompt:
        if keep not in renders:
            kept = [m for ex in exchanges[n - keep:] for m in ex]
            prompt = fmt.render([*head, *kept, newest], tok)
            prompt.dropped_messages = sum(len(ex) for ex in exchanges[: n - keep])
            renders[keep] = prompt
        return renders[keep]

    def fits(keep: int) -> bool:
        return len(render(keep).tokens) <= budget

    smallest = len(render(0).tokens)
    if smallest > budget:
        reserved = n_ctx - budget
        raise ContextOverflowError(
            f"The message needs {smallest:,} tokens but only {budget:,} fit "
            f"({n_ctx:,}-token context, {reserved:,} reserved for the reply); shorten it, "
            "the system prompt, or max new tokens."
        )
    overhead = counts.overhead(model_id, fmt)
    total, keep, exact = float(smallest), 0, True
    text_tokens = text_messages = 0  # the estimated part: text tokens, and its messages
    for ex in reversed(exchanges):
        tokens, is_exact = counts.count(model_id, fmt, tok, ex)
        estimate = tokens if is_exact else tokens + overhead * len(ex)
        if total + estimate > budget:
            break
        total += estimate
        keep += 1
        if not is_exact:
            exact = False
            text_tokens += tokens
            text_messages += len(ex)
    got = len(render(keep).tokens)
    if not exact and text_messages:
        exact_part = total - smallest - (text_tokens + overhead * text_messages)
        counts.learn(model_id, fmt, text_messages, text_tokens,
                     int(got - smallest - exact_part))
    if got <= budget and (keep == n or (exact and got == int(total))):
        return render(keep)  # exact counts that add up: one more exchange would not fit
    return render(_most_that_fit(keep, n, fits))


def _most_that_fit(guess: int, n: int, fits: Callable[[int], bool]) -> int:
    """The largest k in 0..n with fits(k), given fits(0) and that fits is monotone (keeping
    more exchanges never makes a prompt shorter); searched outward from ``guess``."""
    if fits(guess):
        low, step = guess, 1
        while low + step <= n and fits(low + step):
            low, step = low + step, step * 2
        high = min(n + 1, low + step)  # the first count known (or past the end) not to fit
    else:
        high, step = guess, 1
        while high - step > 0 and not fits(high - step):
            high, step = high - step, step * 2
        low = max(0, high - step)
    while high - low > 1:  # fits(low) and not fits(high)
        mid = (low + high) // 2
        if fits(mid):
            low = mid
        else:
            high = mid
    return low
