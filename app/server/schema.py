"""OpenAI request bodies checked field by field: each is honoured or refused, never ignored."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from app.engine.types import SAMPLING_RANGES, Message
from app.errors import SettingsError
from app.server.errors import ApiError, bad_request

# API field -> Sampling field. OpenAI's names first; llama.cpp's extras are ours as they are.
SAMPLING_FIELDS = {
    "temperature": "temperature", "top_p": "top_p", "seed": "seed",
    "presence_penalty": "presence_penalty", "frequency_penalty": "frequency_penalty",
    "max_tokens": "max_tokens", "max_completion_tokens": "max_tokens",
    "top_k": "top_k", "min_p": "min_p", "repeat_penalty": "repeat_penalty",
}
MAX_STOPS = 4  # as OpenAI


def _null(v: Any) -> bool:
    return v is None


def _empty(v: Any) -> bool:
    return v is None or v == [] or v == {}


def _false(v: Any) -> bool:
    return v is None or v is False


def _one(v: Any) -> bool:
    return v is None or (type(v) is int and v == 1)


def _text_format(v: Any) -> bool:
    return v is None or v == {"type": "text"}


def _text_only(v: Any) -> bool:
    return v is None or v == ["text"]


def _no_tool(v: Any) -> bool:
    return v is None or v == "none"


def _bool(v: Any) -> bool:
    return v is None or isinstance(v, bool)


def _string(v: Any) -> bool:
    return v is None or isinstance(v, str)


# Fields accepted only with a value that asks for nothing this server lacks: (test, why not).
NOT_SUPPORTED = "is not supported by this server"
OFF: dict[str, tuple[Callable[[Any], bool], str]] = {
    "n": (_one, "only n=1 is supported (one choice per request)"),
    "tools": (_empty, f"tool calling {NOT_SUPPORTED}"),
    "functions": (_empty, f"function calling {NOT_SUPPORTED}"),
    "tool_choice": (_no_tool, f"tool calling {NOT_SUPPORTED}"),
    "function_call": (_no_tool, f"function calling {NOT_SUPPORTED}"),
    "parallel_tool_calls": (_bool, "must be true or false"),
    "logprobs": (_false, f"logprobs {NOT_SUPPORTED}"),
    "top_logprobs": (_null, f"top_logprobs {NOT_SUPPORTED}"),
    "logit_bias": (_empty, f"logit_bias {NOT_SUPPORTED}"),
    "response_format": (_text_format, 'only {"type": "text"} is supported (no JSON mode)'),
    "store": (_false, "OpenAI's stored completions do not exist here; turn on \"Save API "
              "conversations to the history\" in Llama Desk's Settings instead"),
    "metadata": (_empty, "metadata belongs to stored completions, which this server lacks"),
    "service_tier": (lambda v: v in (None, "auto", "default"), "only the default tier exists"),
    "modalities": (_text_only, 'only ["text"] is supported'),
    "audio": (_null, f"audio output {NOT_SUPPORTED}"),
    "prediction": (_null, f"predicted outputs are {NOT_SUPPORTED}"),
    "web_search_options": (_null, f"web search {NOT_SUPPORTED}"),
    "reasoning_effort": (_null, f"reasoning_effort {NOT_SUPPORTED}"),
    "verbosity": (_null, f"verbosity {NOT_SUPPORTED}"),
    # Identifiers for OpenAI's abuse monitoring and prompt cache: nothing to do locally.
    "user": (_string, "must be a string"),
    "safety_identifier": (_string, "must be a string"),
    "prompt_cache_key": (_string, "must be a string"),
}
COMPLETION_OFF: dict[str, tuple[Callable[[Any], bool], str]] = {
    "n": OFF["n"], "logit_bias": OFF["logit_bias"], "user": OFF["user"],
    "echo": (_false, f"echo {NOT_SUPPORTED}"),
    "suffix": (_null, f"suffix (fill in the middle) {NOT_SUPPORTED}"),
    "best_of": (_one, "only best_of=1 is supported"),
    "logprobs": (_null, f"logprobs {NOT_SUPPORTED}"),
}
CHAT_FIELDS = {"model", "messages", "stream", "stream_options", "stop", *SAMPLING_FIELDS, *OFF}
COMPLETION_FIELDS = {"model", "prompt", "stream", "stream_options", "stop", *SAMPLING_FIELDS,
                     *COMPLETION_OFF}
ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}
MESSAGE_FIELDS = {"role", "content", "name", "tool_calls", "function_call", "refusal", "audio"}


@dataclass
class Request:
    """A checked request: the sampling overrides, stop strings and how to answer."""

    model: str | None
    overrides: dict[str, Any] = field(default_factory=dict)
    stop: tuple[str, ...] = ()
    stream: bool = False
    include_usage: bool = False
    messages: list[Message] = field(default_factory=list)  # chat completions
    prompt: str = ""  # text completions


def parse_json(body: bytes) -> dict[str, Any]:
    """The body as a JSON object; NaN, Infinity and numbers too big for a float are refused."""
    def no_constant(name: str) -> Any:
        raise bad_request(f"The body holds {name}, which is not a JSON number.")

    def finite(text: str) -> float:
        value = float(text)
        if not math.isfinite(value):
            raise bad_request(f"The number {text[:40]} is too large.")
        return value

    try:
        data = json.loads(body, parse_constant=no_constant, parse_float=finite)
    except ValueError as err:  # JSONDecodeError and undecodable bytes
        raise bad_request(f"The body is not valid JSON: {err}.") from None
    if not isinstance(data, dict):
        raise bad_request("The body must be a JSON object.")
    return data


def _check_fields(data: dict[str, Any], known: set[str],
                  off: dict[str, tuple[Callable[[Any], bool], str]]) -> None:
    for name in data:
        if name not in known:
            raise bad_request(f"Unrecognized request argument supplied: {name}", param=name,
                              code="unsupported_parameter")
    for name, (accepts, why) in off.items():
        if name in data and not accepts(data[name]):
            raise bad_request(f"{name}={json.dumps(data[name])[:80]}: {why}.", param=name,
                              code="unsupported_parameter")


def _common(data: dict[str, Any]) -> Request:
    model = data.get("model")
    if model is not None and (not isinstance(model, str) or not model.strip()):
        raise bad_request("model must be the id of a model from /v1/models.", param="model")
    stream = data.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise bad_request("stream must be true or false.", param="stream")
    request = Request(model=model.strip() if model else None, stream=bool(stream))
    request.include_usage = _stream_options(data.get("stream_options"), request.stream)
    request.stop = _stops(data.get("stop"))
    request.overrides = _sampling(data)
    return request


def _stream_options(options: Any, stream: bool) -> bool:
    if options is None:
        return False
    if not stream:
        raise bad_request("stream_options is only allowed with stream: true.",
                          param="stream_options")
    if not isinstance(options, dict):
        raise bad_request("stream_options must be an object.", param="stream_options")
    for name, value in options.items():
        if name == "include_usage" and isinstance(value, bool):
            continue
        if name == "include_obfuscation" and value is False:
            continue
        raise bad_request(f"stream_options.{name}={json.dumps(value)[:40]} is not supported; "
                          "only include_usage (true or false).", param="stream_options")
    return bool(options.get("include_usage"))


def _stops(stop: Any) -> tuple[str, ...]:
    if stop is None:
        return ()
    stops = [stop] if isinstance(stop, str) else stop
    if not isinstance(stops, list) or not all(isinstance(s, str) and s for s in stops):
        raise bad_request("stop must be a string or a list of non-empty strings.", param="stop")
    if len(stops) > MAX_STOPS:
        raise bad_request(f"stop holds {len(stops)} strings; at most {MAX_STOPS}.", param="stop")
    return tuple(stops)


def _sampling(data: dict[str, Any]) -> dict[str, Any]:
    given = {k: v for k, v in data.items() if k in SAMPLING_FIELDS and v is not None}
    if "max_tokens" in given and "max_completion_tokens" in given \
            and given["max_tokens"] != given["max_completion_tokens"]:
        raise bad_request("max_tokens and max_completion_tokens differ; send one of them.",
                          param="max_completion_tokens")
    overrides: dict[str, Any] = {}
    for name, value in given.items():
        target = SAMPLING_FIELDS[name]
        try:
            SAMPLING_RANGES[target].check(name, value)
        except SettingsError as err:
            raise bad_request(str(err).replace("Sampling setting ", ""), param=name) from None
        overrides[target] = value
    return overrides


def _content(content: Any, where: str, role: str) -> str:
    if isinstance(content, str):
        return content
    if content is None and role == "assistant":
        return ""
    if not isinstance(content, list):
        raise bad_request(f"{where}.content must be a string or a list of text parts.",
                          param=f"{where}.content")
    texts = []
    for part in content:
        if not isinstance(part, dict) or part.get("type") != "text":
            kind = part.get("type") if isinstance(part, dict) else type(part).__name__
            raise bad_request(f"{where}.content holds a {kind!r} part; only text is supported "
                              "(this model reads no images, audio or files).",
                              param=f"{where}.content")
        if set(part) - {"type", "text"} or not isinstance(part.get("text"), str):
            raise bad_request(f"{where}.content: a text part is {{\"type\": \"text\", "
                              "\"text\": \"...\"}.", param=f"{where}.content")
        texts.append(part["text"])
    return "\n".join(texts)


def _message(raw: Any, index: int) -> Message:
    where = f"messages[{index}]"
    if not isinstance(raw, dict):
        raise bad_request(f"{where} must be an object with role and content.", param=where)
    role = raw.get("role")
    if role in ("tool", "function"):
        raise bad_request(f"{where}: {role} messages are not supported (no tool calling).",
                          param=f"{where}.role")
    for name in raw:
        if name not in MESSAGE_FIELDS:
            raise bad_request(f"Unrecognized field {where}.{name}", param=f"{where}.{name}")
    if role not in ROLES:
        raise bad_request(f"{where}.role must be one of system, developer, user, assistant.",
                          param=f"{where}.role")
    for name in ("tool_calls", "function_call", "audio"):
        if not _empty(raw.get(name)):
            raise bad_request(f"{where}.{name} is not supported (no tool calling or audio).",
                              param=f"{where}.{name}")
    if raw.get("name") is not None:
        raise bad_request(f"{where}.name is not supported: the model's prompt format has no "
                          "place for participant names.", param=f"{where}.name")
    if not _null(raw.get("refusal")) and not isinstance(raw.get("refusal"), str):
        raise bad_request(f"{where}.refusal must be a string.", param=f"{where}.refusal")
    if "content" not in raw and role != "assistant":
        raise bad_request(f"{where}.content is missing.", param=f"{where}.content")
    return Message(ROLES[role], _content(raw.get("content"), where, role))  # type: ignore[arg-type]


def parse_chat(data: dict[str, Any]) -> Request:
    """A ``/v1/chat/completions`` body; ApiError 400 naming the field otherwise."""
    _check_fields(data, CHAT_FIELDS, OFF)
    messages = data.get("messages")
    if not isinstance(messages, list) or not messages:
        raise bad_request("messages must be a non-empty list.", param="messages")
    request = _common(data)
    request.messages = [_message(raw, i) for i, raw in enumerate(messages)]
    return request


def parse_completion(data: dict[str, Any]) -> Request:
    """A ``/v1/completions`` body (one text prompt)."""
    _check_fields(data, COMPLETION_FIELDS, COMPLETION_OFF)
    prompt = data.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        prompt = prompt[0]
    if not isinstance(prompt, str):
        raise bad_request("prompt must be one string (a list of prompts or of token ids is not "
                          "supported).", param="prompt")
    request = _common(data)
    request.prompt = prompt
    return request


def too_large(limit: int) -> ApiError:
    return ApiError(413, f"The request body is larger than {limit // (1024 * 1024)} MB.",
                    code="request_too_large")
