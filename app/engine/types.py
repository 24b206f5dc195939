"""Plain data passed between the engine, the store, the CLI and the window."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Literal

from app.errors import SettingsError

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


# name -> (minimum, maximum) inclusive; None means unbounded on that side.
_RANGES: dict[str, tuple[float | None, float | None]] = {
    "temperature": (0.0, 5.0),
    "top_p": (0.0, 1.0),
    "top_k": (0, 100_000),
    "min_p": (0.0, 1.0),
    "repeat_penalty": (0.5, 3.0),
    "max_tokens": (1, 131_072),
    "seed": (0, 2**32 - 1),
}


@dataclass(frozen=True)
class Sampling:
    """Sampling knobs. Defaults follow Meta's Llama-2-chat examples (temperature 0.6, top_p 0.9).

    ``top_k`` 0 disables top-k; ``seed`` None draws a fresh random seed per request.
    """

    temperature: float = 0.6
    top_p: float = 0.9
    top_k: int = 40
    min_p: float = 0.05
    repeat_penalty: float = 1.1
    max_tokens: int = 512
    seed: int | None = None

    def __post_init__(self) -> None:
        for name, (low, high) in _RANGES.items():
            value = getattr(self, name)
            if value is None and name == "seed":
                continue
            want_int = name in ("top_k", "max_tokens", "seed")
            if isinstance(value, bool) or not isinstance(value, int if want_int else (int, float)):
                kind = "a whole number" if want_int else "a number"
                raise SettingsError(f"Sampling setting {name} must be {kind}, got {value!r}.")
            if not math.isfinite(value):  # NaN compares false with every bound
                raise SettingsError(
                    f"Sampling setting {name} must be a finite number, got {value!r}; "
                    f"use {low} to {high}."
                )
            if (low is not None and value < low) or (high is not None and value > high):
                raise SettingsError(
                    f"Sampling setting {name}={value} is out of range; use {low} to {high}."
                )

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


@dataclass
class GenerationResult:
    """What one request produced, reported after the last text chunk."""

    text: str = ""
    finish_reason: FinishReason = "stop"
    prompt_tokens: int = 0
    reused_tokens: int = 0
    generated_tokens: int = 0
    ttft_s: float = 0.0
    tokens_per_s: float = 0.0
    dropped_messages: int = 0
    error: str | None = None
    model_name: str = ""
    model_path: str = ""

    def stats(self) -> dict[str, Any]:
        """The stats the store keeps with an assistant message."""
        return {
            "prompt_tokens": self.prompt_tokens,
            "reused_tokens": self.reused_tokens,
            "generated_tokens": self.generated_tokens,
            "ttft_s": round(self.ttft_s, 4),
            "tokens_per_s": round(self.tokens_per_s, 2),
            "finish_reason": self.finish_reason,
        }


@dataclass
class PreparedPrompt:
    """The exact prompt a request sends: token ids, rendered text and what was left out."""

    tokens: list[int] = field(default_factory=list)
    text: str = ""
    dropped_messages: int = 0
    format_name: str = ""
