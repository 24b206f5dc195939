"""Reply: one streaming answer from the chat service, saved through a ReplyWriter as it comes."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from app.chat.stops import StopMatcher
from app.engine.owner import Ticket
from app.engine.types import GenerationResult, PreparedPrompt, Sampling
from app.errors import UserError

if TYPE_CHECKING:
    from app.engine.protocol import Generation
    from app.store import Store, StoredMessage

log = logging.getLogger(__name__)


class Reply:
    """Iterate for the text chunks; afterwards ``result`` and (when stored) ``message``.

    Iterate on the engine's owner thread. The text is saved at most every 0.5 s while it
    streams and once more at the end, with the stats and the state (complete, cancelled or
    error). ``stops``: the reply ends before the first of these strings (finish reason
    ``stop``), which is never shown nor stored. Stopping the iteration early stops the reply
    and stores it as cancelled. When the conversation was deleted for good meanwhile, the
    reply ends quietly with ``gone`` set.
    """

    def __init__(self, generation: Generation, sampling: Sampling, ticket: Ticket,
                 model_name: str, *, stop: Callable[[], None] | None = None,
                 store: Store | None = None, user_message: StoredMessage | None = None,
                 message: StoredMessage | None = None, stops: Sequence[str] = (),
                 dropped: int | None = None, extra_ttft: float = 0.0,
                 after: Callable[[GenerationResult], None] | None = None) -> None:
        self.generation = generation
        self.prompt: PreparedPrompt = generation.prompt
        self._dropped = generation.prompt.dropped_messages if dropped is None else dropped
        if dropped is not None:  # counted over the whole stored branch, not the part read
            self.prompt = dataclasses.replace(self.prompt, dropped_messages=dropped)
        self._after = after
        self._extra_ttft = extra_ttft  # restoring a kept state is part of the wait
        self.sampling = sampling
        self.ticket = ticket
        self.model_name = model_name
        self.user_message = user_message
        self.message = message  # the assistant message: partial until the reply ends
        self.gone = False
        self._store = store
        self._result: GenerationResult | None = None
        self._writer = (store.reply_writer(message.id)
                        if store is not None and message is not None else None)
        self._matcher = StopMatcher(stops) if any(stops) else None
        self._iter = self._run(stop)

    @property
    def conversation_id(self) -> int | None:
        return self.message.conversation_id if self.message is not None else None

    @property
    def result(self) -> GenerationResult:
        """The stats (complete once iteration has ended)."""
        if self._result is not None:
            return self._result
        result = self.generation.result
        return dataclasses.replace(result, model_name=self.model_name,
                                   max_tokens=self.sampling.max_tokens,
                                   dropped_messages=self._dropped,
                                   ttft_s=result.ttft_s + self._extra_ttft if result.ttft_s
                                   else 0.0)

    def __iter__(self) -> Iterator[str]:
        return self._iter

    def close(self) -> None:
        """Stop early: the reply is stored as cancelled."""
        self._iter.close()

    def text(self) -> str:
        """Run to the end; the whole reply."""
        return "".join(self)

    def _run(self, stop: Callable[[], None] | None) -> Generator[str, None, None]:
        if stop is not None:
            self.ticket.attach(stop)
        writer = self._writer
        matcher = self._matcher
        shown: list[str] = []
        try:
            try:
                for piece in self.generation:
                    chunk = piece if matcher is None else matcher.feed(piece)
                    if chunk:
                        shown.append(chunk)
                        if writer is not None:
                            writer.append(chunk)
                        yield chunk
                    if matcher is not None and matcher.hit:
                        break  # a stop string: the generation is stopped right here
                tail = matcher.flush() if matcher is not None else ""
                if tail:
                    shown.append(tail)
                    if writer is not None:
                        writer.append(tail)
                    yield tail
            finally:  # also when the consumer stops early: the engine reports "cancelled"
                self.generation.close()
                self._result = self.result
                if matcher is not None:  # the text is what was shown, cut before the stop
                    self._result.text = "".join(shown)
                    if matcher.hit:
                        self._result.finish_reason = "stop"
            if writer is not None:
                self.message = writer.finish(self._result)
            self._kept()
        except GeneratorExit:
            if writer is not None:
                self._end(lambda: writer.finish(self.result))
            self._kept()
            raise
        except Exception as err:
            if not isinstance(err, UserError):
                log.exception("the reply failed")
            reason = str(err) if isinstance(err, UserError) else f"{type(err).__name__}: {err}"
            if writer is not None:
                self._end(lambda: writer.fail(reason))
            self._kept(failed=True)
            if not self.gone:
                raise
        finally:
            self.ticket.detach()

    def _kept(self, failed: bool = False) -> None:
        """Hand the finished result to ``after`` (the service keeps the KV state then)."""
        after, self._after = self._after, None
        if after is not None:
            result = self.result
            after(dataclasses.replace(result, finish_reason="error") if failed else result)

    def _end(self, finish: Callable[[], StoredMessage]) -> None:
        """Record how the reply ended; its message may have been deleted meanwhile."""
        try:
            self.message = finish()
        except UserError:
            if not self._message_exists():
                self.gone = True
                return
            raise

    def _message_exists(self) -> bool:
        assert self._store is not None and self.message is not None
        try:
            self._store.get_message(self.message.id)
        except UserError:
            return False
        return True


def limit_note(stats: Mapping[str, Any]) -> str:
    """How a reply cut short by a limit says so ("stopped at the 512-token limit"); "" else."""
    if stats.get("finish_reason") != "length":
        return ""
    limit = int(stats.get("max_tokens") or 0)
    generated = int(stats.get("generated_tokens") or 0)
    if limit and generated < limit:
        return "stopped: the context is full"
    return f"stopped at the {limit:,}-token limit" if limit else "stopped at the token limit"
