"""What a remote engine is: its kind (llama-server, vLLM or OpenAI-compatible), models, context, latency."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from app.engine.remote.errors import (
    EngineModelNotFoundError,
    EngineProtocolError,
    RemoteEngineError,
)
from app.engine.remote.http import Connection

# What llama-server reports as its chat template when the GGUF has none (llama.cpp's
# common/chat.cpp CHATML_TEMPLATE_SRC): such a model gets the format the local engine gives a
# GGUF without a template (the exact Llama-2 algorithm), not ChatML.
LLAMA_CPP_FALLBACK_TEMPLATE = (
    "{%- for message in messages -%}\n"
    "  {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>\n' -}}\n"
    "{%- endfor -%}\n"
    "{%- if add_generation_prompt -%}\n"
    "  {{- '<|im_start|>assistant\n' -}}\n"
    "{%- endif -%}"
)


@dataclass(frozen=True)
class ServedModel:
    id: str
    n_ctx: int = 0  # 0: the server does not say
    owner: str = ""  # /v1/models' owned_by ("vllm" on a vLLM server)


@dataclass(frozen=True)
class Probe:
    """The answer to "what is at this URL"."""

    kind: str  # "llama-server", "vllm" or "openai"
    models: tuple[ServedModel, ...]
    latency_s: float  # the first request's round trip
    props: dict[str, Any] = field(default_factory=dict)  # llama-server's /props
    version: str = ""  # vLLM's /version

    def model_ids(self) -> list[str]:
        return [m.id for m in self.models]

    def model(self, wanted: str, engine: str) -> ServedModel:
        """The served model ``wanted`` (exact, then ignoring case; empty: the first one)."""
        if not self.models:
            raise EngineModelNotFoundError(f"Engine {engine} serves no model right now; load one "
                                           "on the server, then try again.")
        if not wanted:
            return self.models[0]
        for exact in (True, False):
            found = [m for m in self.models
                     if (m.id == wanted if exact else m.id.lower() == wanted.lower())]
            if len(found) == 1:
                return found[0]
        served = ", ".join(self.model_ids()[:20])
        raise EngineModelNotFoundError(f"Engine {engine} does not serve {wanted!r}; it serves: "
                                       f"{served}. Pick one with -m.")


def _context(item: dict[str, Any]) -> int:
    meta = item.get("meta")
    meta = meta if isinstance(meta, dict) else {}
    for value in (meta.get("n_ctx"), item.get("max_model_len"), item.get("context_length")):
        if isinstance(value, int) and value > 0:
            return value
    return 0


def list_models(conn: Connection) -> tuple[ServedModel, ...]:
    answer = conn.call("GET", "/v1/models")
    data = answer.get("data") if isinstance(answer, dict) else None
    if not isinstance(data, list):
        raise EngineProtocolError(f"Engine {conn.name} gave no model list at /v1/models; is it "
                                  "an OpenAI-compatible server? Check the URL.")
    return tuple(ServedModel(str(item["id"]), _context(item), str(item.get("owned_by") or ""))
                 for item in data if isinstance(item, dict) and item.get("id"))


def vllm_version(conn: Connection) -> str:
    """vLLM's ``GET /version`` ({"version": ...}); "" when the server does not answer it."""
    try:
        answer = conn.call("GET", "/version")
    except RemoteEngineError as err:
        if err.status is None:
            raise
        return ""
    version = answer.get("version") if isinstance(answer, dict) else None
    return str(version) if isinstance(version, str) and version else ""


def probe(conn: Connection, kind: str = "auto") -> Probe:
    """Detect the kind (llama-server answers /props; vLLM lists its models as ``owned_by:
    vllm`` and answers /version) and list the models.

    ``kind`` other than auto is checked, not detected: a server that is not a llama-server (or
    vLLM) given as one is an EngineProtocolError naming what to do.
    """
    started = time.perf_counter()
    props: dict[str, Any] = {}
    latency = 0.0
    if kind in ("auto", "llama-server"):
        try:
            answer = conn.call("GET", "/props")
        except RemoteEngineError as err:
            if err.status is None or err.status in (401, 403) or kind == "llama-server":
                raise
            answer = None
        latency = time.perf_counter() - started
        if isinstance(answer, dict) and "default_generation_settings" in answer:
            props = answer
        elif kind == "llama-server":
            raise EngineProtocolError(f"Engine {conn.name} is not a llama.cpp llama-server (no "
                                      "/props); add it with --kind openai.")
    begun = time.perf_counter()
    models = list_models(conn)
    latency = latency or time.perf_counter() - begun
    if props:
        return Probe("llama-server", models, latency, props)
    version = ""
    # Only a server whose models say vLLM is asked /version (no extra request to others).
    if kind == "vllm" or (kind == "auto" and any(m.owner == "vllm" for m in models)):
        version = vllm_version(conn)
    if kind == "vllm" and not version and not any(m.owner == "vllm" for m in models):
        raise EngineProtocolError(f"Engine {conn.name} is not a vLLM server (no /version, no "
                                  "model owned by vllm); add it with --kind openai.")
    return Probe("vllm" if version or kind == "vllm" else "openai", models, latency, props,
                 version)
