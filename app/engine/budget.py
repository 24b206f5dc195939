"""Context budget: drop the oldest complete exchanges until the prompt fits, keep system + newest."""

from __future__ import annotations

from collections.abc import Sequence

from app.engine.formats import PromptFormat, Tokenizer
from app.engine.types import Message, PreparedPrompt
from app.errors import ContextOverflowError, SettingsError


def split_history(messages: Sequence[Message]) -> tuple[list[Message], list[list[Message]], Message]:
    """Split into (system messages at the start, exchanges, newest user message).

    An exchange is a user message with the replies that follow it; dropping whole exchanges keeps
    the remaining dialog well formed.
    """
    msgs = list(messages)
    if not msgs or msgs[-1].role != "user":
        raise SettingsError("The last message sent to the model must be from the user.")
    head: list[Message] = []
    while msgs and msgs[0].role == "system":
        head.append(msgs.pop(0))
    newest = msgs.pop()
    exchanges: list[list[Message]] = []
    for msg in msgs:
        if msg.role == "user" or not exchanges:
            exchanges.append([msg])
        else:
            exchanges[-1].append(msg)
    return head, exchanges, newest


def fit_prompt(
    messages: Sequence[Message], fmt: PromptFormat, tok: Tokenizer, budget: int, n_ctx: int
) -> PreparedPrompt:
    """Render ``messages`` in at most ``budget`` tokens, dropping the oldest exchanges first.

    The system prompt and the newest user message are never dropped. ``dropped_messages`` says how
    many messages were left out. Raises ``ContextOverflowError`` naming both numbers when even the
    system prompt plus the newest message do not fit.
    """
    head, exchanges, newest = split_history(messages)

    def render(drop: int) -> PreparedPrompt:
        kept = [m for ex in exchanges[drop:] for m in ex]
        prompt = fmt.render([*head, *kept, newest], tok)
        prompt.dropped_messages = sum(len(ex) for ex in exchanges[:drop])
        return prompt

    full = render(0)
    if len(full.tokens) <= budget:
        return full
    smallest = render(len(exchanges))
    if len(smallest.tokens) > budget:
        reserved = n_ctx - budget
        raise ContextOverflowError(
            f"The message needs {len(smallest.tokens):,} tokens but only {budget:,} fit "
            f"({n_ctx:,}-token context, {reserved:,} reserved for the reply); shorten it, "
            "the system prompt, or max new tokens."
        )
    # Fewest exchanges to drop: token count shrinks as more are dropped, so bisect.
    low, high, best = 1, len(exchanges), smallest
    while low <= high:
        mid = (low + high) // 2
        candidate = render(mid)
        if len(candidate.tokens) <= budget:
            best, high = candidate, mid - 1
        else:
            low = mid + 1
    return best
