"""A scripted stand-in for the Engine protocol: same interface, timing under the test's control."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path

from app.engine.engine import EngineThreadError
from app.engine.protocol import Engine, ProgressCallback
from app.engine.types import (
    EngineState,
    GenerationResult,
    LoadOptions,
    Message,
    ModelInfo,
    PreparedPrompt,
    Sampling,
)
from app.errors import ContextOverflowError, UserError


def words(text: str) -> int:
    return len(text.split())


class FakeGeneration:
    """Yields the engine's script, one chunk every ``delay`` seconds, until done or cancelled."""

    def __init__(self, engine: FakeEngine, prompt: PreparedPrompt, chunks: list[str],
                 on_progress: ProgressCallback | None = None) -> None:
        self.prompt = prompt
        self._on_progress = on_progress
        self._engine = engine
        self._chunks = chunks
        self._result = GenerationResult(
            prompt_tokens=len(prompt.tokens), dropped_messages=prompt.dropped_messages,
            model_name=engine.info.name if engine.info else "", model_path=str(engine.path),
        )

    def __iter__(self) -> Iterator[str]:
        started = time.perf_counter()
        pieces: list[str] = []
        reason = "length" if self._engine.max_out else "stop"
        if self._on_progress is not None:  # "reading the prompt" in prefill_steps batches
            total, steps = len(self.prompt.tokens), max(1, self._engine.prefill_steps)
            for step in range(steps + 1):
                self._on_progress(total * step // steps, total)
                if step < steps and self._engine.prefill_delay:
                    self._engine.sleep(self._engine.prefill_delay)
        for index, chunk in enumerate(self._chunks):
            if self._engine._cancel.is_set():
                reason = "cancelled"
                break
            if self._engine.fail_at is not None and index == self._engine.fail_at:
                reason = "error"
                self._result.error = "llama.cpp failed while generating: fake failure"
                break
            if self._engine.delay:
                self._engine.sleep(self._engine.delay)
            if index == 0:
                self._result.ttft_s = time.perf_counter() - started
            pieces.append(chunk)
            self._result.generated_tokens += 1
            yield chunk
        else:
            reason = "stop"
        elapsed = time.perf_counter() - started
        self._result.text = "".join(pieces)
        self._result.finish_reason = reason  # type: ignore[assignment]
        self._result.tokens_per_s = self._result.generated_tokens / elapsed if elapsed else 0.0

    def close(self) -> None:
        pass

    @property
    def result(self) -> GenerationResult:
        return replace(self._result)


class FakeEngine:
    """Tokens are words; the prompt is a plain transcript; replies follow ``script``."""

    def __init__(self, script: list[str] | None = None, *, delay: float = 0.0, n_ctx: int = 4096,
                 name: str = "Fake model") -> None:
        self.script = script or ["Hello", " there", "! ", "This", " is", " a", " **fake**", " reply."]
        self.delay = delay
        self.prefill_steps = 1  # progress reports while "reading the prompt" (0 .. total)
        self.prefill_delay = 0.0  # seconds between them
        self.n_ctx = n_ctx
        self.name = name
        self.fail_at: int | None = None
        self.max_out = False
        self.info: ModelInfo | None = None
        self.path = Path()
        self.last_prompt: PreparedPrompt | None = None
        self.loads: list[str] = []
        self.requests: list[list[Message]] = []
        self.samplings: list[Sampling] = []
        self._cancel = threading.Event()
        self.thread_ids: set[int] = set()
        self.owner: int | None = None  # the thread that first used it (it must stay the only one)
        self.state: EngineState | None = None

    def _touch(self) -> None:
        ident = threading.get_ident()
        self.thread_ids.add(ident)
        if self.owner is None:
            self.owner = ident
        elif ident != self.owner:
            raise EngineThreadError(f"the fake engine belongs to thread {self.owner}, not {ident}")

    @staticmethod
    def sleep(seconds: float) -> None:
        time.sleep(seconds)

    def load(self, path: str | Path, options: LoadOptions | None = None) -> ModelInfo:
        self._touch()
        if "missing" in str(path):
            raise UserError(f"Model file {path} does not exist; choose another model.")
        self.path = Path(path)
        self.loads.append(str(path))
        n_ctx = getattr(options, "n_ctx", self.n_ctx) if options is not None else self.n_ctx
        self.n_ctx = min(self.n_ctx, n_ctx)
        name = f"{self.name} {len(self.loads)}" if len(self.loads) > 1 else self.name
        self.info = ModelInfo(name=name, path=self.path, file=None,
                              n_ctx=self.n_ctx, n_gpu_layers=0, format_name="fake")
        return self.info

    def render(self, messages: Sequence[Message]) -> str:
        return "".join(f"<{m.role}>{m.content}</{m.role}>\n" for m in messages)

    def count_tokens(self, messages: Sequence[Message]) -> int:
        return sum(words(m.content) + 2 for m in messages)

    def prepare(self, messages: Sequence[Message], sampling: Sampling) -> PreparedPrompt:
        self._touch()
        if self.info is None:
            raise UserError("No model is loaded; choose a model first.")
        budget = self.n_ctx - sampling.max_tokens
        msgs = list(messages)
        system = [m for m in msgs[:1] if m.role == "system"]
        rest = msgs[len(system):]
        dropped = 0
        while self.count_tokens(system + rest) > budget and len(rest) > 1:
            rest = rest[2:] if len(rest) > 2 else rest[1:]
            dropped += 2
        if self.count_tokens(system + rest) > budget:
            raise ContextOverflowError("The message does not fit in the fake context.")
        kept = system + rest
        return PreparedPrompt(list(range(self.count_tokens(kept))), self.render(kept), dropped,
                              "fake")

    def generate(self, messages: Sequence[Message], sampling: Sampling | None = None, *,
                 on_progress: ProgressCallback | None = None) -> FakeGeneration:
        self._touch()
        sampling = sampling or Sampling()
        prompt = self.prepare(messages, sampling)
        self.last_prompt = prompt
        self.requests.append(list(messages))
        self.samplings.append(sampling)
        self._cancel.clear()
        return FakeGeneration(self, prompt, list(self.script), on_progress)

    def generate_text(self, text: str, sampling: Sampling | None = None, *,
                      on_progress: ProgressCallback | None = None) -> FakeGeneration:
        self._touch()
        sampling = sampling or Sampling()
        if self.info is None:
            raise UserError("No model is loaded; choose a model first.")
        if words(text) + sampling.max_tokens > self.n_ctx:
            raise ContextOverflowError(f"The prompt needs {words(text)} tokens but only "
                                       f"{self.n_ctx - sampling.max_tokens} fit.")
        prompt = PreparedPrompt(list(range(words(text))), text, 0, "text")
        self.last_prompt = prompt
        self.requests.append([Message("user", text)])
        self.samplings.append(sampling)
        self._cancel.clear()
        return FakeGeneration(self, prompt, list(self.script), on_progress)

    def cancel(self) -> None:
        self._cancel.set()

    def close(self) -> None:
        self._touch()
        self.info = None

    def save_state(self) -> EngineState | None:
        self._touch()
        if self.last_prompt is None:
            return None
        return EngineState(str(self.path), list(self.last_prompt.tokens))

    def restore_state(self, state: EngineState, *, upto: int | None = None) -> int:
        self._touch()
        if state.key != str(self.path):
            return 0
        self.state = state
        return len(state.tokens) if upto is None else min(upto, len(state.tokens))


def as_engine(engine: FakeEngine) -> Engine:
    """The fake satisfies the Engine protocol (mypy checks this line: `make lint`)."""
    return engine
