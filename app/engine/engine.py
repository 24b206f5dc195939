"""The chat engine: one llama_cpp.Llama, streaming replies with stop, budget and KV-cache reuse."""

from __future__ import annotations

import codecs
import ctypes
import logging
import random
import threading
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from app.engine.budget import fit_prompt
from app.engine.formats import PromptFormat, choose_format
from app.engine.modelfile import ModelFileInfo, check_model_file
from app.engine.types import (
    EngineState,
    GenerationResult,
    LoadOptions,
    Message,
    ModelInfo,
    PreparedPrompt,
    Sampling,
)
from app.errors import (
    ContextOverflowError,
    ModelFileError,
    ModelTooLargeError,
    SettingsError,
    UserError,
)

__all__ = ["EngineThreadError", "Generation", "LlamaEngine", "LoadOptions", "ModelInfo"]

log = logging.getLogger(__name__)
TEXT_FORMAT = "text"  # PreparedPrompt.format_name of a plain text completion (generate_text)


class _Vocab:
    """The ``Tokenizer`` protocol over a loaded ``llama_cpp.Llama``."""

    def __init__(self, llm: Any) -> None:
        self._llm = llm
        self.bos_id = int(llm.token_bos())
        self.eos_id = int(llm.token_eos())
        self.bos_text = llm.detokenize([self.bos_id], special=True).decode("utf-8", "replace")
        self.eos_text = llm.detokenize([self.eos_id], special=True).decode("utf-8", "replace")
        self.add_bos = str(llm.metadata.get("tokenizer.ggml.add_bos_token", "true")) == "true"

    def encode(self, text: str, *, special: bool) -> list[int]:
        return list(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=special))


def plan_gpu_layers(info: ModelFileInfo, n_ctx: int, rpc_servers: Sequence[str] = ()) -> int:
    """GPU layers for 'auto', from the memory planner (RPC workers' memory counted); refuses a
    model that cannot fit at all."""
    from app.engine import hardware, planner
    from app.engine.rpc import probe_all

    plan = planner.plan(planner.ModelShape.from_file_info(info), n_ctx, hardware.detect(),
                        workers=probe_all(rpc_servers))
    log.info("memory plan for %s: %s", info.path.name, plan.message)
    if plan.verdict is planner.Verdict.WONT_FIT:
        raise ModelTooLargeError(
            f"{info.path.name} is too big for this machine's memory. {plan.message} "
            "(Setting GPU layers by hand skips this check.)"
        )
    return plan.gpu_layers


def load_llama(path: Path, options: LoadOptions, n_gpu_layers: int, **extra: Any) -> Any:
    """Construct ``llama_cpp.Llama`` with exactly our options (shared with the benchmark)."""
    import llama_cpp

    from app import logs
    from app.engine import rpc

    logs.route_llama_cpp_logs()
    kwargs: dict[str, Any] = dict(
        model_path=str(path), n_ctx=options.n_ctx, n_gpu_layers=n_gpu_layers,
        n_batch=options.n_batch, flash_attn=options.flash_attn, use_mmap=options.use_mmap,
        verbose=False, **extra,
    )
    if options.n_threads is not None:
        kwargs["n_threads"] = kwargs["n_threads_batch"] = options.n_threads
    rpc.use_workers(options.rpc_servers)  # llama-cpp-python ignores rpc_servers=
    return llama_cpp.Llama(**kwargs)


class EngineThreadError(RuntimeError):
    """An engine was used from a thread other than its owner (a bug, never the user's doing)."""


class LlamaEngine:
    """The local engine: loads one GGUF at a time in llama.cpp and streams chat replies from it.

    Threading: the thread that creates a LlamaEngine owns it and makes every call on it (load,
    generate and iterate, close); any other thread gets ``EngineThreadError``. The only
    exception is ``cancel()``, which any thread may call: it sets a flag that the generation
    loop checks at every token and that llama.cpp's abort callback checks during prompt
    evaluation.
    """

    def __init__(self) -> None:
        self._owner = threading.get_ident()
        self._llm: Any = None
        self._vocab: _Vocab | None = None
        self._format: PromptFormat | None = None
        self._info: ModelInfo | None = None
        self._cancel = threading.Event()
        self._abort_cb: Any = None
        self._state_key = ""
        self.options = LoadOptions()
        self.last_prompt: PreparedPrompt | None = None

    # -- model lifecycle -------------------------------------------------------------------------
    @property
    def info(self) -> ModelInfo | None:
        self._check_thread()
        return self._info

    @property
    def loaded(self) -> bool:
        self._check_thread()
        return self._llm is not None

    def _check_thread(self) -> None:
        if threading.get_ident() != self._owner:
            raise EngineThreadError(
                f"the engine belongs to thread {self._owner} but was called from "
                f"{threading.current_thread().name} ({threading.get_ident()})"
            )

    def load(self, path: str | Path, options: LoadOptions | None = None) -> ModelInfo:
        """Check and load ``path``, closing the previous model first."""
        self._check_thread()
        options = options or LoadOptions()
        file_info = check_model_file(path)
        self.close()
        layers = options.n_gpu_layers
        if layers is None:
            layers = plan_gpu_layers(file_info, options.n_ctx, options.rpc_servers)
        started = time.perf_counter()
        try:
            llm = load_llama(file_info.path, options, layers)
        except (ValueError, RuntimeError, OSError) as err:
            raise ModelFileError(
                f"llama.cpp could not load {file_info.path.name} ({err}); the file may be corrupt "
                "or too new for this version, or memory ran out: try a smaller context size, "
                "fewer GPU layers, or a smaller quantization."
            ) from err
        self._llm = llm
        self._vocab = _Vocab(llm)
        self._warm_up()
        self._format = choose_format(options.prompt_format, file_info.chat_template)
        self._install_abort_callback()
        self._info = ModelInfo(
            name=file_info.name, path=file_info.path, file=file_info, n_ctx=llm.n_ctx(),
            n_gpu_layers=layers, format_name=self._format.name,
        )
        self.options = options
        self._state_key = (f"{file_info.path}|{file_info.size_bytes}|{options.n_ctx}|{layers}|"
                           f"{self._format.name}")
        log.info("loaded %s in %.2fs (ctx %d, gpu layers %d, format %s)", file_info.path,
                 time.perf_counter() - started, llm.n_ctx(), layers, self._format.name)
        return self._info

    def _warm_up(self) -> None:
        """One tiny decode at load time, as llama.cpp's own tools do: lazy set-up (weight
        repacking, threads, first touch of mmapped pages) then happens during 'loading', not in
        the first reply's time to first token."""
        assert self._vocab is not None
        self._llm.eval([self._vocab.bos_id])
        self._llm.reset()

    def close(self) -> None:
        """Free the model and its context (safe to call twice)."""
        self._check_thread()
        llm, self._llm = self._llm, None
        self._vocab = self._format = self._info = None
        self.last_prompt = None
        if llm is not None:
            llm.close()
            log.info("model closed")

    def _install_abort_callback(self) -> None:
        import llama_cpp

        cancel = self._cancel
        self._abort_cb = llama_cpp.ggml_abort_callback(lambda _data: cancel.is_set())
        self._set_abort(True)

    def _set_abort(self, on: bool) -> None:
        """Enable llama.cpp's abort check; it runs per graph node, so only while prefilling."""
        import llama_cpp

        callback = self._abort_cb if on else llama_cpp.ggml_abort_callback()
        llama_cpp.llama_set_abort_callback(self._llm._ctx.ctx, callback, ctypes.c_void_p(0))

    def _require(self) -> tuple[Any, _Vocab, PromptFormat, ModelInfo]:
        self._check_thread()
        if self._llm is None or self._vocab is None or self._format is None or self._info is None:
            raise UserError("No model is loaded; choose a model first.")
        return self._llm, self._vocab, self._format, self._info

    # -- requests ----------------------------------------------------------------------------------
    def cancel(self) -> None:
        """Stop the current generation within one token (thread-safe)."""
        self._cancel.set()

    def prepare(self, messages: Sequence[Message], sampling: Sampling) -> PreparedPrompt:
        """Render the prompt that ``generate`` would send, trimmed to the context budget."""
        _, vocab, fmt, info = self._require()
        if sampling.max_tokens >= info.n_ctx:
            raise SettingsError(
                f"Max new tokens ({sampling.max_tokens:,}) must be below the context size "
                f"({info.n_ctx:,})."
            )
        return fit_prompt(messages, fmt, vocab, info.n_ctx - sampling.max_tokens, info.n_ctx)

    def count_tokens(self, messages: Sequence[Message]) -> int:
        """Tokens the full conversation takes in this model's format (for the context meter)."""
        _, vocab, fmt, _ = self._require()
        return len(fmt.render(messages, vocab).tokens)

    def reset_context(self) -> None:
        """Forget the evaluated context: the next reply evaluates its whole prompt (benchmarks)."""
        self._require()[0].reset()

    def save_state(self) -> EngineState | None:
        """The evaluated context (llama.cpp's state) and the token ids it covers."""
        llm = self._require()[0]
        if llm.n_tokens == 0:
            return None
        return EngineState(self._state_key, llm._input_ids[: llm.n_tokens].tolist(),
                           llm.save_state())

    def restore_state(self, state: EngineState) -> int:
        """Put back a state saved for the loaded model; the next reply reuses its tokens."""
        llm = self._require()[0]
        if state.key != self._state_key or state.data is None:
            return 0
        llm.load_state(state.data)
        return int(llm.n_tokens)

    def generate(self, messages: Sequence[Message], sampling: Sampling | None = None, *,
                 on_progress: Callable[[int, int], None] | None = None) -> Generation:
        """Start a reply. Raises ``UserError`` at once for a prompt that cannot fit."""
        sampling = sampling or Sampling()
        prompt = self.prepare(messages, sampling)
        self.last_prompt = prompt
        self._cancel.clear()
        return Generation(self, prompt, sampling, on_progress)

    def generate_text(self, text: str, sampling: Sampling | None = None, *,
                      on_progress: Callable[[int, int], None] | None = None) -> Generation:
        """Continue ``text`` as it is, with no chat format (a plain text completion).

        As llama-cpp-python's own completions do, special-token text in ``text`` (``<s>``,
        ``[INST]`` for a model whose vocabulary has them) becomes those tokens, and BOS is
        added once when the model wants it. The reply keeps its leading space. Raises
        ``ContextOverflowError`` naming both counts when the text and ``max_tokens`` do not fit.
        """
        sampling = sampling or Sampling()
        _, vocab, _, info = self._require()
        tokens = vocab.encode(text, special=True)
        if vocab.add_bos and tokens[:1] != [vocab.bos_id]:
            tokens.insert(0, vocab.bos_id)
        budget = info.n_ctx - sampling.max_tokens
        if len(tokens) > budget:
            raise ContextOverflowError(
                f"The prompt needs {len(tokens):,} tokens but only {max(budget, 0):,} fit "
                f"({info.n_ctx:,}-token context, {sampling.max_tokens:,} reserved for the "
                "reply); shorten it or lower max_tokens."
            )
        prompt = PreparedPrompt(tokens, text, 0, TEXT_FORMAT)
        self.last_prompt = prompt
        self._cancel.clear()
        return Generation(self, prompt, sampling, on_progress)

    def _stream(self, prompt: PreparedPrompt, sampling: Sampling, out: GenerationResult,
                on_progress: Callable[[int, int], None] | None = None
                ) -> Generator[str, None, None]:
        import llama_cpp

        llm, _, _, info = self._require()
        tokens = prompt.tokens
        cached = llm._input_ids[: llm.n_tokens].tolist()
        common = 0
        for a, b in zip(cached, tokens, strict=False):
            if a != b:
                break
            common += 1
        out.prompt_tokens = len(tokens)
        out.reused_tokens = min(common, len(tokens) - 1)
        out.dropped_messages = prompt.dropped_messages
        out.model_name, out.model_path = info.name, str(info.path)
        llm.set_seed(sampling.seed if sampling.seed is not None else random.getrandbits(32))
        max_new = min(sampling.max_tokens, info.n_ctx - len(tokens))
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        vocab_ptr = llm._model.vocab
        started = time.perf_counter()
        first = last = 0.0
        pieces: list[str] = []
        at_start = prompt.format_name != TEXT_FORMAT  # a chat reply's leading space is dropped
        reason = "length"
        self._set_abort(True)
        to_read = len(tokens) - out.reused_tokens
        if on_progress is not None:
            on_progress(0, to_read)
        stream = llm.generate(
            tokens, top_k=sampling.top_k, top_p=sampling.top_p, min_p=sampling.min_p,
            temp=sampling.temperature, repeat_penalty=sampling.repeat_penalty,
            presence_penalty=sampling.presence_penalty,
            frequency_penalty=sampling.frequency_penalty, reset=True,
        )
        try:
            try:
                for token in stream:
                    if out.generated_tokens == 0 and not first:
                        first = time.perf_counter()
                        self._set_abort(False)
                        if on_progress is not None:
                            on_progress(to_read, to_read)
                    if self._cancel.is_set():
                        reason = "cancelled"
                        break
                    if llama_cpp.llama_vocab_is_eog(vocab_ptr, token):
                        reason = "stop"
                        break
                    out.generated_tokens += 1
                    last = time.perf_counter()
                    text = decoder.decode(llm.detokenize([token]))
                    if at_start and text:
                        text = text.lstrip()
                        at_start = not text
                    if text:
                        pieces.append(text)
                        yield text
                    if out.generated_tokens >= max_new:
                        break
            except RuntimeError as err:  # llama_decode failed, or was aborted by cancel()
                if self._cancel.is_set():
                    reason = "cancelled"
                else:
                    reason = "error"
                    out.error = f"llama.cpp failed while generating: {err}"
                    log.error("generation failed: %s", err)
            tail = decoder.decode(b"", final=True)
            if tail and not at_start:
                pieces.append(tail)
                yield tail
        except GeneratorExit:  # the consumer stopped iterating
            reason = "cancelled"
            raise
        finally:
            stream.close()
            self._set_abort(False)
            out.text = "".join(pieces)
            out.finish_reason = reason  # type: ignore[assignment]
            out.ttft_s = (first - started) if first else 0.0
            if out.generated_tokens > 1 and last > first:
                out.tokens_per_s = (out.generated_tokens - 1) / (last - first)


class Generation:
    """One streaming reply: iterate for text chunks (valid UTF-8), then read ``result``.

    Iterate it on the engine's owner thread. Abandoning it early (``close()`` or dropping it)
    stops generation and reports ``cancelled``.
    """

    def __init__(self, engine: LlamaEngine, prompt: PreparedPrompt, sampling: Sampling,
                 on_progress: Callable[[int, int], None] | None = None) -> None:
        self.prompt = prompt
        self.sampling = sampling
        self._result = GenerationResult()
        self._iter = engine._stream(prompt, sampling, self._result, on_progress)

    def __iter__(self) -> Iterator[str]:
        return self._iter

    def close(self) -> None:
        """Stop early; ``result`` then reports ``cancelled``."""
        self._iter.close()

    @property
    def result(self) -> GenerationResult:
        """The stats; complete once iteration has finished."""
        return replace(self._result)

    def text(self) -> str:
        """Run to the end and return the whole reply."""
        return "".join(self)
