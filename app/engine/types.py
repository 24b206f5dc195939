"""Plain data passed between the engine, the store, the CLI and the window."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from app.errors import SettingsError

if TYPE_CHECKING:
    from app.engine.modelfile import ModelFileInfo

Role = Literal["system", "user", "assistant"]
FinishReason = Literal["stop", "length", "cancelled", "error"]
ROLES: tuple[str, ...] = ("system", "user", "assistant")

# Meta's default system prompt for Llama-2-chat (facebookresearch/llama, 2023), offered as a preset.
LLAMA2_DEFAULT_SYSTEM_PROMPT = (
    "You are a helpful, respectful and honest assistant. Always answer as helpfully as possible, "
    "while being safe. Your answers should not include any harmful, unethical, racist, sexist, "
    "toxic, dangerous, or illegal content. Please ensure that your responses are socially "
    "unbiased and positive in nature.\n\nIf a question does not make any sense, or is not "
    "factually coherent, explain why instead of answering something not correct. If you don't "
    "know the answer to a question, please don't share false information."
)


@dataclass(frozen=True)
class Message:
    """One chat message as the engine sees it."""

    role: Role
    content: str

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise SettingsError(f"Unknown message role {self.role!r}; use one of {ROLES}.")


_T = TypeVar("_T")


@dataclass(frozen=True)
class Range:
    """The values one sampling setting accepts (inclusive), and how an editor steps through them."""

    low: float
    high: float
    step: float = 1
    decimals: int = 0  # 0: whole numbers only

    @property
    def whole(self) -> bool:
        return self.decimals == 0

    def check(self, name: str, value: object) -> None:
        """SettingsError unless ``value`` is a number of the right kind within the range."""
        if isinstance(value, bool) or not isinstance(value, int if self.whole else (int, float)):
            kind = "a whole number" if self.whole else "a number"
            raise SettingsError(f"Sampling setting {name} must be {kind}, got {value!r}.")
        if not math.isfinite(value):  # NaN compares false with every bound
            raise SettingsError(f"Sampling setting {name} must be a finite number, got {value!r}; "
                                f"use {self.low} to {self.high}.")
        if not self.low <= value <= self.high:
            low, high = (int(self.low), int(self.high)) if self.whole else (self.low, self.high)
            raise SettingsError(
                f"Sampling setting {name}={value} is out of range; use {low} to {high}."
            )


def _knob(default: _T, low: float, high: float, step: float = 1, decimals: int = 0) -> _T:
    """A Sampling field with its Range (dataclass metadata; SAMPLING_RANGES collects them)."""
    knob: _T = field(default=default, metadata={"range": Range(low, high, step, decimals)})
    return knob


@dataclass(frozen=True)
class Sampling:
    """Sampling knobs. Defaults follow Meta's Llama-2-chat examples (temperature 0.6, top_p 0.9).

    ``top_k`` 0 disables top-k; ``seed`` None draws a fresh random seed per request. Each
    field's range is in SAMPLING_RANGES.
    """

    temperature: float = _knob(0.6, 0.0, 5.0, step=0.05, decimals=2)
    top_p: float = _knob(0.9, 0.0, 1.0, step=0.05, decimals=2)
    top_k: int = _knob(40, 0, 100_000)
    min_p: float = _knob(0.05, 0.0, 1.0, step=0.01, decimals=2)
    repeat_penalty: float = _knob(1.1, 0.5, 3.0, step=0.05, decimals=2)
    # OpenAI's penalties (llama.cpp applies them over the last 64 tokens); 0 = off.
    presence_penalty: float = _knob(0.0, -2.0, 2.0, step=0.1, decimals=2)
    frequency_penalty: float = _knob(0.0, -2.0, 2.0, step=0.1, decimals=2)
    max_tokens: int = _knob(512, 1, 131_072)
    seed: int | None = _knob(None, 0, 2**32 - 1)

    def __post_init__(self) -> None:
        for name, allowed in SAMPLING_RANGES.items():
            value = getattr(self, name)
            if value is None and name == "seed":
                continue
            allowed.check(name, value)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Sampling:
        """Build from a dict, rejecting unknown names (a typo must not be silently ignored)."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise SettingsError(
                f"Unknown sampling setting(s): {', '.join(unknown)}; "
                f"known: {', '.join(sorted(known))}."
            )
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> Sampling:
        return Sampling.from_dict({**self.to_dict(), **changes})


# name -> Range, in the order of Sampling's fields: the one table the engine, the settings
# dialog and the CLI flags validate and offer values by.
SAMPLING_RANGES: dict[str, Range] = {
    f.name: f.metadata["range"] for f in dataclasses.fields(Sampling)
}


@dataclass
class GenerationResult:
    """What one request produced, reported after the last text chunk."""

    text: str = ""
    finish_reason: FinishReason = "stop"
    prompt_tokens: int = 0
    reused_tokens: int = 0
    restored_tokens: int = 0  # of reused_tokens, how many a kept KV state brought back
    generated_tokens: int = 0
    ttft_s: float = 0.0
    prompt_s: float = 0.0  # seconds spent reading the prompt tokens not reused
    tokens_per_s: float = 0.0
    dropped_messages: int = 0
    error: str | None = None
    model_name: str = ""
    model_path: str = ""
    max_tokens: int = 0  # the new-token limit the reply ran under (0: not known)

    def stats(self) -> dict[str, Any]:
        """The stats the store keeps with an assistant message.

        ``dropped_messages`` (where the prompt began) and ``max_tokens`` (the limit a reply cut
        at "length" reached) are kept too, so a face can say both after a restart.
        """
        stats: dict[str, Any] = {
            "prompt_tokens": self.prompt_tokens,
            "reused_tokens": self.reused_tokens,
            "restored_tokens": self.restored_tokens,
            "generated_tokens": self.generated_tokens,
            "ttft_s": round(self.ttft_s, 4),
            "tokens_per_s": round(self.tokens_per_s, 2),
            "finish_reason": self.finish_reason,
            "dropped_messages": self.dropped_messages,
        }
        if self.max_tokens:
            stats["max_tokens"] = self.max_tokens
        return stats


@dataclass
class PreparedPrompt:
    """The exact prompt a request sends: token ids, rendered text and what was left out."""

    tokens: list[int] = field(default_factory=list)
    text: str = ""
    dropped_messages: int = 0
    format_name: str = ""


# KV cache element types: llama.cpp's ggml type id and bytes per element (q8_0 and q4_0 store
# blocks of 32 values: 34 and 18 bytes).
KV_TYPES: dict[str, tuple[int, float]] = {"f16": (1, 2.0), "q8_0": (8, 34 / 32),
                                          "q4_0": (2, 18 / 32)}


@dataclass(frozen=True)
class LoadOptions:
    """How to load a model. ``n_gpu_layers`` None = automatic (from the memory planner).

    ``n_threads`` (decode) and ``n_threads_batch`` (prompt batches) None = as llama.cpp would
    choose (``app.engine.threads``). ``kv_type`` is the KV cache's element type: ``f16``, or
    ``q8_0`` / ``q4_0`` (half / about a third of the memory; these need flash attention,
    which is then switched on).
    """

    n_ctx: int = 4096
    n_gpu_layers: int | None = None
    n_threads: int | None = None
    n_threads_batch: int | None = None
    n_batch: int = 512
    flash_attn: bool = False
    use_mmap: bool = True
    prompt_format: str = "auto"
    kv_type: str = "f16"
    # llama.cpp RPC workers ("host:port") whose devices take layers; see app/engine/rpc.py.
    rpc_servers: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        from app.engine.rpc import parse_endpoints

        object.__setattr__(self, "rpc_servers", parse_endpoints(self.rpc_servers))
        if not 256 <= self.n_ctx <= 1_048_576:
            raise SettingsError(f"Context size {self.n_ctx} is out of range; use 256 to 1048576.")
        if not 1 <= self.n_batch <= 65_536:
            raise SettingsError(f"Batch size {self.n_batch} is out of range; use 1 to 65536.")
        for threads in (self.n_threads, self.n_threads_batch):
            if threads is not None and not 1 <= threads <= 1024:
                raise SettingsError(f"Thread count {threads} is out of range; use 1 to 1024.")
        if self.kv_type not in KV_TYPES:
            raise SettingsError(f"Unknown KV cache type {self.kv_type!r}; use one of: "
                                f"{', '.join(KV_TYPES)}.")
        if self.n_gpu_layers is not None and self.n_gpu_layers < -1:
            raise SettingsError("GPU layers must be -1 (all), 0 (CPU only) or a positive count.")


@dataclass(frozen=True)
class ModelInfo:
    """A loaded model, as the window and CLI show it."""

    name: str
    path: Path
    file: ModelFileInfo | None  # None for an engine that has no local file (a remote server)
    n_ctx: int
    n_gpu_layers: int
    format_name: str
    threads: int = 0  # decode threads (0: not a local engine)
    batch_threads: int = 0  # prompt-batch threads
    threads_why: str = ""  # how they were chosen, e.g. "auto: 2 physical cores of 2 usable CPUs"
    kv_type: str = "f16"
    state_key: str = ""  # what a kept KV state must match to be restored (empty: no states)


@dataclass
class EngineState:
    """A snapshot of an engine's evaluated context: the token ids it covers and opaque data.

    Only the engine that made it can restore it; ``key`` names the model and load options it
    belongs to, so a state for another model or context size is never used.
    """

    key: str
    tokens: list[int]
    data: Any = None
    # Of ``tokens``, how many leading ones were read in prompt batches (the rest, a reply, was
    # decoded one token at a time); None: not known. Restoring only those reproduces a cold read.
    batched: int | None = None

    @property
    def size(self) -> int:
        """Bytes of ``data`` (0 when it is not bytes)."""
        return len(self.data) if isinstance(self.data, bytes | bytearray | memoryview) else 0
