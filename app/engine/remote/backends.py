"""How each kind of engine takes a prompt and streams a reply: llama-server, vLLM (ids), OpenAI (text)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from app.engine.budget import fit_prompt
from app.engine.formats import PromptFormat, choose_format, normalize
from app.engine.remote.errors import EngineProtocolError
from app.engine.remote.http import Connection
from app.engine.remote.probe import LLAMA_CPP_FALLBACK_TEMPLATE, Probe
from app.engine.remote.tokenizer import CachedTokenizer, ServerTokenizer, VLLMTokenizer
from app.engine.types import GenerationResult, LoadOptions, Message, PreparedPrompt, Sampling
from app.errors import SettingsError

SERVER_FORMAT = "server's own"  # the prompt format of a server that takes chat messages as text
# Sampling knobs beyond the OpenAI API; llama.cpp, vLLM, LM Studio and Ollama take them, a
# hosted API may refuse them (then they are left out for the rest of the session).
EXTRA_KNOBS = ("top_k", "min_p", "repeat_penalty")


@dataclass(frozen=True)
class Delta:
    """What one streamed event carries."""

    text: str = ""
    progress: tuple[int, int] | None = None  # prompt tokens read, of tokens to read
    finish: str | None = None  # "stop" or "length" once the server says the reply is done


class Backend(Protocol):
    kind: str
    n_ctx: int  # 0: the server does not say
    format_name: str

    def prepare(self, messages: Sequence[Message], sampling: Sampling) -> PreparedPrompt: ...

    def count_tokens(self, messages: Sequence[Message]) -> int: ...

    def request(self, prompt: PreparedPrompt, messages: Sequence[Message], sampling: Sampling
                ) -> tuple[str, dict[str, Any]]: ...

    def read(self, event: dict[str, Any], out: GenerationResult) -> Delta: ...

    def fallback(self, status: int | None, message: str) -> bool:
        """After an error answer to a reply request: True when a plainer request may work."""
        ...


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


class TokenIdBackend:
    """A server that takes the prompt as token ids: rendered here by the local engine's format
    code over the server's tokenizer (so a Llama-2 model gets Meta's reference prompt token for
    token, as the local engine does). Subclasses set ``n_ctx``, ``tokenizer`` and ``fmt`` and say
    how a reply is asked for and read."""

    kind = ""
    n_ctx = 0
    format_name = ""
    model = ""
    tokenizer: CachedTokenizer
    fmt: PromptFormat
    # The server's names for the new-token limit and the repeat penalty.
    LIMIT, REPEAT = "max_tokens", "repeat_penalty"

    def body(self, prompt: PreparedPrompt, sampling: Sampling, top_k: int,
             **extra: Any) -> dict[str, Any]:
        """The streamed token-id request, under this server's names, with ``extra`` fields."""
        body: dict[str, Any] = {
            "model": self.model, "prompt": prompt.tokens, "stream": True,
            self.LIMIT: min(sampling.max_tokens, self.n_ctx - len(prompt.tokens)),
            "temperature": sampling.temperature, "top_p": sampling.top_p, "top_k": top_k,
            "min_p": sampling.min_p, self.REPEAT: sampling.repeat_penalty,
            "presence_penalty": sampling.presence_penalty,
            "frequency_penalty": sampling.frequency_penalty, **extra,
        }
        if sampling.seed is not None:
            body["seed"] = sampling.seed
        return body

    def prepare(self, messages: Sequence[Message], sampling: Sampling) -> PreparedPrompt:
        if sampling.max_tokens >= self.n_ctx:
            raise SettingsError(f"Max new tokens ({sampling.max_tokens:,}) must be below the "
                                f"server's context size ({self.n_ctx:,}).")
        return fit_prompt(messages, self.fmt, self.tokenizer, self.n_ctx - sampling.max_tokens,
                          self.n_ctx)

    def count_tokens(self, messages: Sequence[Message]) -> int:
        return len(self.fmt.render(messages, self.tokenizer).tokens)

    def fallback(self, status: int | None, message: str) -> bool:
        return False


class LlamaServerBackend(TokenIdBackend):
    """llama.cpp's llama-server: the ids go to ``/completion`` with ``cache_prompt`` so the
    server reuses the shared prefix."""

    kind = "llama-server"
    LIMIT = "n_predict"

    def __init__(self, conn: Connection, model: str, options: LoadOptions, found: Probe) -> None:
        props = found.props
        settings = props.get("default_generation_settings") or {}
        self.n_ctx = int(settings.get("n_ctx") or 0) if isinstance(settings, dict) else 0
        if self.n_ctx <= 0:
            raise EngineProtocolError(f"Engine {conn.name} did not report its context size.")
        template = props.get("chat_template") or None
        if template == LLAMA_CPP_FALLBACK_TEMPLATE:
            template = None
        self.model = model
        self.tokenizer = ServerTokenizer(conn, str(props.get("bos_token") or ""),
                                         str(props.get("eos_token") or ""))
        self.fmt = choose_format(options.prompt_format, str(template) if template else None)
        self.format_name = self.fmt.name

    def request(self, prompt: PreparedPrompt, messages: Sequence[Message], sampling: Sampling
                ) -> tuple[str, dict[str, Any]]:
        return "/completion", self.body(prompt, sampling, sampling.top_k, cache_prompt=True,
                                        return_progress=True)

    def read(self, event: dict[str, Any], out: GenerationResult) -> Delta:
        progress = event.get("prompt_progress")
        if isinstance(progress, dict):
            total, cache = int(progress.get("total", 0)), int(progress.get("cache", 0))
            return Delta(progress=(int(progress.get("processed", 0)) - cache, total - cache))
        timings = event.get("timings")
        if isinstance(timings, dict):
            out.reused_tokens = int(_number(timings.get("cache_n")) or 0)
            out.generated_tokens = int(_number(timings.get("predicted_n")) or out.generated_tokens)
            rate = _number(timings.get("predicted_per_second"))
            if rate and out.generated_tokens > 1:
                out.tokens_per_s = rate
        finish = None
        if event.get("stop"):
            finish = "length" if event.get("stop_type") == "limit" else "stop"
        return Delta(text=str(event.get("content") or ""), finish=finish)


def read_usage(event: dict[str, Any], out: GenerationResult) -> None:
    """An OpenAI-style event's ``usage`` (sent last with ``include_usage``) into the stats."""
    usage = event.get("usage")
    if isinstance(usage, dict):
        out.prompt_tokens = int(_number(usage.get("prompt_tokens")) or out.prompt_tokens)
        out.generated_tokens = int(_number(usage.get("completion_tokens"))
                                   or out.generated_tokens)
        details = usage.get("prompt_tokens_details")
        if isinstance(details, dict):
            out.reused_tokens = int(_number(details.get("cached_tokens")) or 0)


def read_choice(event: dict[str, Any]) -> Delta:
    """An OpenAI-style event's first choice: chat (``delta.content``) or completion (``text``)."""
    choices = event.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return Delta()
    choice = choices[0]
    delta = choice.get("delta") if isinstance(choice.get("delta"), dict) else {}
    text = delta.get("content") if isinstance(delta, dict) else None
    if text is None:
        text = choice.get("text")  # a server that answers in completion style
    reason = choice.get("finish_reason")
    finish = None if not reason else ("length" if reason == "length" else "stop")
    return Delta(text=str(text or ""), finish=finish)


class VLLMBackend(TokenIdBackend):
    """vLLM's OpenAI server: the ids go to ``/v1/completions`` as a list of ints (vLLM caches
    shared prefixes itself); the stats come from ``usage``. The context is ``max_model_len``."""

    kind = "vllm"
    REPEAT = "repetition_penalty"

    def __init__(self, conn: Connection, model: str, n_ctx: int, options: LoadOptions) -> None:
        if n_ctx <= 0:
            raise EngineProtocolError(f"Engine {conn.name} did not report its context size "
                                      "(max_model_len).")
        self.n_ctx, self.model = n_ctx, model
        self.tokenizer = VLLMTokenizer(conn, model)
        self.fmt = choose_format(options.prompt_format, None)  # vLLM does not tell its template
        self.format_name = self.fmt.name

    def request(self, prompt: PreparedPrompt, messages: Sequence[Message], sampling: Sampling
                ) -> tuple[str, dict[str, Any]]:
        return "/v1/completions", self.body(prompt, sampling,
                                            sampling.top_k if sampling.top_k > 0 else -1,
                                            stream_options={"include_usage": True})

    def read(self, event: dict[str, Any], out: GenerationResult) -> Delta:
        read_usage(event, out)
        return read_choice(event)


def render_messages(messages: Sequence[Message]) -> str:
    """The prompt inspector's view of messages a server formats itself."""
    parts = [f"[{m.role}]\n{m.content}" for m in normalize(messages)]
    return ("This server applies its own chat template to these messages; the exact prompt text "
            "and tokens are not known here.\n\n" + "\n\n".join(parts))


class OpenAIBackend:
    """An OpenAI-compatible server (Ollama, LM Studio, llama-cpp-python, vLLM, hosted APIs): chat
    messages as text to ``/v1/chat/completions``; the prompt format is the server's."""

    kind = "openai"
    format_name = SERVER_FORMAT

    def __init__(self, conn: Connection, model: str, n_ctx: int) -> None:
        self.model = model
        self.n_ctx = n_ctx
        self.standard_only = False
        self._name = conn.name

    def prepare(self, messages: Sequence[Message], sampling: Sampling) -> PreparedPrompt:
        dialog = normalize(messages)
        if not dialog or dialog[-1].role != "user":
            raise SettingsError("The last message sent to the model must be from the user.")
        return PreparedPrompt(tokens=[], text=render_messages(dialog), format_name=SERVER_FORMAT)

    def count_tokens(self, messages: Sequence[Message]) -> int:
        return -1  # the server's tokenizer and template are not known here

    def request(self, prompt: PreparedPrompt, messages: Sequence[Message], sampling: Sampling
                ) -> tuple[str, dict[str, Any]]:
        body: dict[str, Any] = {
            "model": self.model, "stream": True,
            "messages": [{"role": m.role, "content": m.content} for m in normalize(messages)],
            "max_tokens": sampling.max_tokens, "temperature": sampling.temperature,
            "top_p": sampling.top_p, "presence_penalty": sampling.presence_penalty,
            "frequency_penalty": sampling.frequency_penalty,
        }
        if sampling.seed is not None:
            body["seed"] = sampling.seed
        if not self.standard_only:
            body["stream_options"] = {"include_usage": True}
            body.update({name: getattr(sampling, name) for name in EXTRA_KNOBS})
        return "/v1/chat/completions", body

    def read(self, event: dict[str, Any], out: GenerationResult) -> Delta:
        read_usage(event, out)
        timings = event.get("timings")  # llama.cpp's server adds its own
        if isinstance(timings, dict):
            out.reused_tokens = int(_number(timings.get("cache_n")) or out.reused_tokens)
            rate = _number(timings.get("predicted_per_second"))
            if rate and int(_number(timings.get("predicted_n")) or 0) > 1:
                out.tokens_per_s = rate
        return read_choice(event)

    def fallback(self, status: int | None, message: str) -> bool:
        """A server that refuses our extra knobs (a hosted API, 400/422) gets the plain request."""
        if self.standard_only or status not in (400, 422):
            return False
        if any(name in message for name in (*EXTRA_KNOBS, "stream_options")):
            self.standard_only = True
            return True
        return False
