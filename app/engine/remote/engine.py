"""RemoteEngine: the Engine protocol over a llama-server, vLLM or OpenAI-compatible server."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Generator, Sequence
from pathlib import Path

from app.engine import types
from app.engine.engine import TEXT_FORMAT, EngineThreadError
from app.engine.generation import StreamedGeneration
from app.engine.protocol import ProgressCallback
from app.engine.remote.backends import (
    Backend,
    Delta,
    LlamaServerBackend,
    OpenAIBackend,
    TokenIdBackend,
    VLLMBackend,
)
from app.engine.remote.errors import EngineStreamCutError, EngineTimeoutError, RemoteEngineError
from app.engine.remote.http import Connection
from app.engine.remote.probe import Probe, probe
from app.engine.remote.registry import EngineRef, parse_ref
from app.engine.remote.tokenizer import NotLlamaVocabError
from app.errors import ContextOverflowError, UserError

log = logging.getLogger(__name__)


class RemoteEngine:
    """A model served by another program, here or on another machine (the Engine protocol).

    ``load`` takes a reference ``engine:NAME/MODEL`` (see ``registry.EngineRef``): it checks the
    server, its kind and that it serves MODEL. Owned by the thread that creates it; ``cancel``
    may come from any thread and closes the reply's connection, so the server stops too.
    """

    def __init__(self) -> None:
        self._owner = threading.get_ident()
        self._conn: Connection | None = None
        self._backend: Backend | None = None
        self._info: types.ModelInfo | None = None
        self._cancel = threading.Event()
        self.kind = ""
        self.last_prompt: types.PreparedPrompt | None = None

    def _check(self) -> None:
        if threading.get_ident() != self._owner:
            raise EngineThreadError(f"the engine belongs to thread {self._owner} but was called "
                                    f"from {threading.current_thread().name}")

    def _require(self) -> tuple[Connection, Backend, types.ModelInfo]:
        self._check()
        if self._conn is None or self._backend is None or self._info is None:
            raise UserError("No model is loaded; choose a model first.")
        return self._conn, self._backend, self._info

    @property
    def info(self) -> types.ModelInfo | None:
        self._check()
        return self._info

    def load(self, path: str | Path, options: types.LoadOptions | None = None) -> types.ModelInfo:
        """Connect to the engine ``path`` names and check its model; raises the named error."""
        self._check()
        options = options or types.LoadOptions()
        ref = parse_ref(path)
        config = ref.config()
        self.close()
        conn = Connection(config)
        try:
            found = probe(conn, config.kind)
            model = found.model(ref.model, config.name)
            backend = self._backend_for(conn, found.kind, config.kind, model.id, model.n_ctx,
                                        options, found)
        except BaseException:
            conn.close()
            raise
        full = EngineRef(ref.engine, model.id)
        self._conn, self._backend, self.kind = conn, backend, backend.kind
        self._info = types.ModelInfo(name=full.label, path=Path(str(full)), file=None,
                                     n_ctx=backend.n_ctx, n_gpu_layers=-1,
                                     format_name=backend.format_name)
        log.info("remote engine %s: %s, model %s, ctx %d, format %s", config.name, backend.kind,
                 model.id, backend.n_ctx, backend.format_name)
        return self._info

    @staticmethod
    def _backend_for(conn: Connection, kind: str, configured: str, model: str, n_ctx: int,
                     options: types.LoadOptions, found: Probe) -> Backend:
        if kind == "llama-server":
            return LlamaServerBackend(conn, model, options, found)
        if kind == "vllm":
            try:
                return VLLMBackend(conn, model, n_ctx, options)
            except NotLlamaVocabError as err:
                if configured != "auto":
                    raise
                # vLLM does not tell its chat template: a non-Llama model gets the server's.
                log.info("engine %s: %s; using it as kind openai", conn.name, err)
        return OpenAIBackend(conn, model, n_ctx)

    def close(self) -> None:
        self._check()
        conn, self._conn = self._conn, None
        self._backend = self._info = None
        self.last_prompt = None
        if conn is not None:
            conn.close()

    def prepare(self, messages: Sequence[types.Message],
                sampling: types.Sampling) -> types.PreparedPrompt:
        return self._require()[1].prepare(messages, sampling)

    def count_tokens(self, messages: Sequence[types.Message]) -> int:
        """Tokens in the model's prompt format; -1 for a server that formats prompts itself."""
        return self._require()[1].count_tokens(messages)

    def cancel(self) -> None:
        """Stop the current reply (any thread): its connection is closed at once."""
        self._cancel.set()
        conn = self._conn
        if conn is not None:
            conn.cut()

    def save_state(self) -> types.EngineState | None:
        return None  # the server keeps its own cache (cache_prompt)

    def restore_state(self, state: types.EngineState, *, upto: int | None = None) -> int:
        return 0

    def generate(self, messages: Sequence[types.Message], sampling: types.Sampling | None = None, *,
                 on_progress: ProgressCallback | None = None) -> RemoteGeneration:
        """Prepare the prompt (raising at once when it cannot fit); the request is sent when
        the reply is first iterated."""
        sampling = sampling or types.Sampling()
        prompt = self.prepare(messages, sampling)
        self.last_prompt = prompt
        self._cancel.clear()
        return RemoteGeneration(prompt, lambda out: self._stream(prompt, list(messages),
                                                                 sampling, out, on_progress))

    def generate_text(self, text: str, sampling: types.Sampling | None = None, *,
                      on_progress: ProgressCallback | None = None) -> RemoteGeneration:
        """A plain text completion of ``text`` (no chat format), as token ids on a llama-server
        or vLLM; an OpenAI-compatible server takes chat messages only and is refused in one line."""
        sampling = sampling or types.Sampling()
        conn, backend, info = self._require()
        if not isinstance(backend, TokenIdBackend):
            raise UserError(f"Engine {conn.name} (an OpenAI-compatible server) takes chat "
                            "messages only; use /v1/chat/completions, or a llama-server or vLLM "
                            "engine or a local model for plain text completions.")
        tokens = backend.tokenizer.encode(text, special=True)
        if backend.tokenizer.add_bos and tokens[:1] != [backend.tokenizer.bos_id]:
            tokens.insert(0, backend.tokenizer.bos_id)
        budget = info.n_ctx - sampling.max_tokens
        if len(tokens) > budget:
            raise ContextOverflowError(
                f"The prompt needs {len(tokens):,} tokens but only {max(budget, 0):,} fit "
                f"({info.n_ctx:,}-token context, {sampling.max_tokens:,} reserved for the "
                "reply); shorten it or lower max_tokens.")
        prompt = types.PreparedPrompt(tokens, text, 0, TEXT_FORMAT)
        self.last_prompt = prompt
        self._cancel.clear()
        return RemoteGeneration(prompt, lambda out: self._stream(prompt, [], sampling, out,
                                                                 on_progress))

    def _stream(self, prompt: types.PreparedPrompt, messages: list[types.Message],
                sampling: types.Sampling, out: types.GenerationResult,
                on_progress: ProgressCallback | None
                ) -> Generator[str, None, None]:
        conn, backend, info = self._require()
        out.prompt_tokens = len(prompt.tokens)
        out.dropped_messages = prompt.dropped_messages
        out.model_name, out.model_path = info.name, str(info.path)
        started = time.perf_counter()
        first = last = 0.0
        pieces: list[str] = []
        reason = "stop"
        counted = 0
        to_read = len(prompt.tokens)
        if on_progress is not None:
            on_progress(0, to_read)
        deltas = self._deltas(conn, backend, prompt, messages, sampling, out)
        try:
            try:
                for delta in deltas:
                    if delta.progress is not None and on_progress is not None and not first:
                        to_read = delta.progress[1]
                        on_progress(*delta.progress)
                    # A chat reply's leading space is dropped; a text completion keeps it.
                    lead = not pieces and prompt.format_name != TEXT_FORMAT
                    text = delta.text.lstrip() if lead else delta.text
                    if delta.text and not first:
                        first = time.perf_counter()
                        if on_progress is not None:
                            on_progress(to_read, to_read)
                    if delta.text:
                        counted += 1
                        last = time.perf_counter()
                    if text:
                        pieces.append(text)
                        yield text
                    if delta.finish:
                        reason = delta.finish
                if self._cancel.is_set():
                    reason = "cancelled"
                elif not first and not counted and reason == "stop":
                    raise RemoteEngineError(
                        f"Engine {conn.name} ended the reply without a word; its log may say "
                        "why (a conversation longer than its context often ends like this).")
            except (EngineStreamCutError, EngineTimeoutError) as err:
                if self._cancel.is_set():
                    reason = "cancelled"
                else:  # like a local crash: the reply ends as error, its text is kept
                    reason = "error"
                    out.error = str(err)
                    log.warning("remote reply cut: %s", err)
        except GeneratorExit:
            reason = "cancelled"
            conn.cut()
            raise
        finally:
            deltas.close()
            out.text = "".join(pieces)
            out.finish_reason = reason  # type: ignore[assignment]
            out.ttft_s = (first - started) if first else 0.0
            if not out.generated_tokens:
                out.generated_tokens = counted
            if not out.tokens_per_s and counted > 1 and last > first:
                out.tokens_per_s = (counted - 1) / (last - first)

    def _deltas(self, conn: Connection, backend: Backend, prompt: types.PreparedPrompt,
                messages: list[types.Message], sampling: types.Sampling,
                out: types.GenerationResult
                ) -> Generator[Delta, None, None]:
        """The reply's events as Deltas; once, a request the server refused is sent plainer."""
        for attempt in (1, 2):
            path, body = backend.request(prompt, messages, sampling)
            got = False
            try:
                for event in conn.stream(path, body, self._cancel):
                    got = True
                    yield backend.read(event, out)
                return
            except RemoteEngineError as err:
                if got or attempt == 2 or not backend.fallback(err.status, str(err)):
                    raise
                log.info("engine %s refused extra sampling knobs; sending the plain request",
                         conn.name)


class RemoteGeneration(StreamedGeneration):
    """One streamed remote reply: ``close()`` (or a cancel) closes its connection, so the server
    stops too."""
