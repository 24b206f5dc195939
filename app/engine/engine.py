"""The chat engine: one llama_cpp.Llama, streaming replies with stop, budget and KV-cache reuse."""

from __future__ import annotations

import codecs
import ctypes
import logging
import random
import threading
import time
from collections.abc import Callable, Generator, Sequence
from pathlib import Path
from typing import Any

from app.engine import seqstate
from app.engine.budget import TokenCounts, fit_prompt
from app.engine.formats import PromptFormat, choose_format
from app.engine.generation import StreamedGeneration
from app.engine.modelfile import ModelFileInfo, check_model_file
from app.engine.prefill import keep_prefix, read_prompt
from app.engine.threads import choose_threads
from app.engine.types import (
    KV_TYPES,
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


def plan_gpu_layers(info: ModelFileInfo, n_ctx: int, kv_type: str = "f16",
                    rpc_servers: Sequence[str] = ()) -> int:
    """GPU layers for 'auto', from the memory planner (KV type and RPC workers' memory
    counted); refuses a model that cannot fit at all."""
    from app.engine import hardware, planner
    from app.engine.rpc import probe_all

    plan = planner.plan(planner.ModelShape.from_file_info(info), n_ctx, hardware.detect(),
                        kv_bytes_per_element=KV_TYPES[kv_type][1],
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
    threads = choose_threads(options.n_threads, options.n_threads_batch)
    ggml_type = KV_TYPES[options.kv_type][0]
    kwargs: dict[str, Any] = dict(
        model_path=str(path), n_ctx=options.n_ctx, n_gpu_layers=n_gpu_layers,
        n_batch=options.n_batch, flash_attn=uses_flash_attn(options), use_mmap=options.use_mmap,
        n_threads=threads.decode, n_threads_batch=threads.batch, type_k=ggml_type,
        type_v=ggml_type, verbose=False, **extra,
    )
    rpc.use_workers(options.rpc_servers)  # llama-cpp-python ignores rpc_servers=
    return llama_cpp.Llama(**kwargs)


def uses_flash_attn(options: LoadOptions) -> bool:
    """Flash attention as set, and always for a quantized KV cache (llama.cpp needs it there)."""
    return options.flash_attn or options.kv_type != "f16"


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
        self._restored = 0  # tokens the last restore_state brought back (for the next stats)
        self._batched = 0  # leading KV tokens read in prompt batches (not decoded one by one)
        self._counts = TokenCounts()
        self._model_id = ""
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
            layers = plan_gpu_layers(file_info, options.n_ctx, options.kv_type,
                                     options.rpc_servers)
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
        threads = choose_threads(options.n_threads, options.n_threads_batch)
        self._state_key = seqstate.state_key(
            file_info.path, n_ctx=llm.n_ctx(), kv_type=options.kv_type,
            flash_attn=uses_flash_attn(options), gpu_layers=layers,
            prompt_format=self._format.name)
        self._model_id = self._state_key
        self._info = ModelInfo(
            name=file_info.name, path=file_info.path, file=file_info, n_ctx=llm.n_ctx(),
            n_gpu_layers=layers, format_name=self._format.name, threads=threads.decode,
            batch_threads=threads.batch, threads_why=threads.why, kv_type=options.kv_type,
            state_key=self._state_key,
        )
        self.options = options
        log.info("loaded %s in %.2fs (ctx %d, gpu layers %d, format %s, threads %d/%d (%s), "
                 "KV %s)", file_info.path, time.perf_counter() - started, llm.n_ctx(), layers,
                 self._format.name, threads.decode, threads.batch, threads.why, options.kv_type)
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
        self._restored = 0
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
        return fit_prompt(messages, fmt, vocab, info.n_ctx - sampling.max_tokens, info.n_ctx,
                          counts=self._counts, model_id=self._model_id)

    def count_tokens(self, messages: Sequence[Message]) -> int:
        """Tokens the full conversation takes in this model's format."""
        _, vocab, fmt, _ = self._require()
        return len(fmt.render(messages, vocab).tokens)

    @property
    def counts(self) -> TokenCounts:
        """The token-count cache the budget walks with (its stats show the work a turn did)."""
        return self._counts

    def reset_context(self) -> None:
        """Forget the evaluated context: the next reply evaluates its whole prompt (benchmarks)."""
        self._require()[0].reset()
        self._batched = 0

    def save_state(self) -> EngineState | None:
        """The evaluated context: llama.cpp's sequence state (the KV cells in use, as bytes)
        and the token ids it covers, under the key of the loaded model and options."""
        llm = self._require()[0]
        n = int(llm.n_tokens)
        if n == 0:
            return None
        return EngineState(self._state_key, llm.input_ids[:n].tolist(), seqstate.save(llm),
                           batched=min(n, self._batched))

    def restore_state(self, state: EngineState, *, upto: int | None = None) -> int:
        """Put back a state saved for the loaded model; the next reply reuses its tokens
        (only its first ``upto`` tokens when given).

        Returns the tokens restored; 0 (the context then starts empty) when the state belongs
        to another model or options, or llama.cpp refuses its data.
        """
        llm = self._require()[0]
        self._batched = 0
        if state.key != self._state_key or not isinstance(state.data, bytes | bytearray):
            return 0
        if not seqstate.restore(llm, list(state.tokens), state.data):
            return 0
        keep = len(state.tokens) if upto is None else max(0, min(upto, len(state.tokens)))
        if keep < len(state.tokens) and not llm._ctx.kv_cache_seq_rm(-1, keep, -1):
            llm.reset()
            return 0
        llm.n_tokens = keep
        self._batched = min(keep, state.batched if state.batched is not None else keep)
        self._restored = keep
        return keep

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
        reuse = keep_prefix(llm, tokens)
        self._batched = min(self._batched, reuse)
        out.prompt_tokens = len(tokens)
        out.reused_tokens = reuse
        out.restored_tokens = min(reuse, self._restored)
        self._restored = 0
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
        to_read = len(tokens) - reuse
        if on_progress is not None:
            on_progress(0, to_read)
        stream: Generator[int, Any, None] | None = None
        try:
            try:
                read = read_prompt(llm, tokens, reuse, on_progress, self._cancel)
                self._batched = int(llm.n_tokens)
                if not read:
                    raise RuntimeError("stopped while reading the prompt")
                # All the prompt is in the KV cache: generate() samples from the last logits.
                stream = llm.generate(
                    tokens, top_k=sampling.top_k, top_p=sampling.top_p, min_p=sampling.min_p,
                    temp=sampling.temperature, repeat_penalty=sampling.repeat_penalty,
                    presence_penalty=sampling.presence_penalty,
                    frequency_penalty=sampling.frequency_penalty, reset=True,
                )
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
            if stream is not None:
                stream.close()
            self._set_abort(False)
            out.text = "".join(pieces)
            out.finish_reason = reason  # type: ignore[assignment]
            out.ttft_s = (first - started) if first else 0.0
            out.prompt_s = out.ttft_s
            if out.generated_tokens > 1 and last > first:
                out.tokens_per_s = (out.generated_tokens - 1) / (last - first)


class Generation(StreamedGeneration):
    """One streaming reply of the local engine (see ``StreamedGeneration``), with its sampling."""

    def __init__(self, engine: LlamaEngine, prompt: PreparedPrompt, sampling: Sampling,
                 on_progress: Callable[[int, int], None] | None = None) -> None:
        self.sampling = sampling
        super().__init__(prompt, lambda out: engine._stream(prompt, sampling, out, on_progress))
