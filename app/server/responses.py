"""The OpenAI response objects: completions, stream chunks, usage and the model list."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from app.engine.types import GenerationResult

OWNED_BY = "llama-desk"


def finish_reason(result: GenerationResult) -> str:
    """OpenAI's ``stop`` or ``length``; a reply stopped because its client left is ``stop``."""
    return "length" if result.finish_reason == "length" else "stop"


def usage(result: GenerationResult) -> dict[str, Any]:
    return {
        "prompt_tokens": result.prompt_tokens,
        "completion_tokens": result.generated_tokens,
        "total_tokens": result.prompt_tokens + result.generated_tokens,
        "prompt_tokens_details": {"cached_tokens": result.reused_tokens},
    }


def sse(data: dict[str, Any] | str) -> bytes:
    """One server-sent event (``data: ...`` and a blank line)."""
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    return f"data: {text}\n\n".encode()


DONE = sse("[DONE]")


@dataclass
class Answer:
    """Builds one request's objects, chat (``chat.completion``) or text (``text_completion``)."""

    model: str
    chat: bool = True
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:24])
    created: int = field(default_factory=lambda: int(time.time()))

    def _head(self, obj: str) -> dict[str, Any]:
        prefix = "chatcmpl-" if self.chat else "cmpl-"
        return {"id": prefix + self.id, "object": obj, "created": self.created,
                "model": self.model, "system_fingerprint": None}

    def whole(self, text: str, result: GenerationResult) -> dict[str, Any]:
        """The non-streaming answer, with ``usage``."""
        if self.chat:
            choice: dict[str, Any] = {
                "index": 0, "logprobs": None, "finish_reason": finish_reason(result),
                "message": {"role": "assistant", "content": text, "refusal": None},
            }
            return {**self._head("chat.completion"), "choices": [choice], "usage": usage(result)}
        choice = {"index": 0, "text": text, "logprobs": None,
                  "finish_reason": finish_reason(result)}
        return {**self._head("text_completion"), "choices": [choice], "usage": usage(result)}

    def chunk(self, text: str | None, *, first: bool = False,
              result: GenerationResult | None = None) -> dict[str, Any]:
        """One streamed chunk: the role first, then text deltas, then the finish reason."""
        reason = finish_reason(result) if result is not None else None
        if self.chat:
            delta: dict[str, Any] = {"role": "assistant", "content": ""} if first else {}
            if text:
                delta["content"] = text
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": reason}
            return {**self._head("chat.completion.chunk"), "choices": [choice]}
        choice = {"index": 0, "text": text or "", "logprobs": None, "finish_reason": reason}
        return {**self._head("text_completion"), "choices": [choice]}

    def usage_chunk(self, result: GenerationResult) -> dict[str, Any]:
        """The last chunk when ``stream_options.include_usage``: no choices, only ``usage``."""
        obj = "chat.completion.chunk" if self.chat else "text_completion"
        return {**self._head(obj), "choices": [], "usage": usage(result)}


def model_object(model_id: str, created: float) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": int(created), "owned_by": OWNED_BY}
