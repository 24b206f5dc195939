"""The API over raw HTTP on loopback: answers, every refusal in OpenAI's error shape, limits."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from typing import Any

import httpx2
import pytest

from tests.server.conftest import RecordingEngine, Served

CHAT = {"messages": [{"role": "user", "content": "Hi"}]}
SCRIPT = ["Hello", " there", "! ", "This", " is", " a", " **fake**", " reply."]


def post(served: Served, path: str, body: Any, **kwargs: Any) -> httpx2.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx2.post(served.url + path, content=content, timeout=30, **kwargs)


def error_of(response: httpx2.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert isinstance(error["message"], str) and error["message"]
    return dict(error)


def sse_events(lines: Iterator[str]) -> list[Any]:
    events: list[Any] = []
    for line in lines:
        if line.startswith("data: "):
            data = line[len("data: "):]
            events.append(data if data == "[DONE]" else json.loads(data))
    return events


# -- answers ---------------------------------------------------------------------------------
def test_models_health_and_one_model(serve_fake: Callable[..., Served], starter_model: Any) -> None:
    served = serve_fake()
    listed = httpx2.get(served.url + "/models").json()
    ids = [m["id"] for m in listed["data"]]
    assert listed["object"] == "list"
    assert ids[0] == "fake.gguf"  # the loaded one first
    assert "Starter (SmolLM2 135M)" in ids
    assert all(m["object"] == "model" and m["owned_by"] == "llama-desk" for m in listed["data"])
    one = httpx2.get(served.url + "/models/fake.gguf").json()
    assert one["id"] == "fake.gguf"
    assert httpx2.get(served.url + "/models/nope").status_code == 404
    health = httpx2.get(served.root + "/health").json()
    assert health == {"status": "ok", "model": "fake.gguf", "waiting": 0}


def test_chat_whole_answer_with_usage(serve_fake: Callable[..., Served]) -> None:
    served = serve_fake()
    body = post(served, "/chat/completions", {**CHAT, "model": "fake.gguf"}).json()
    assert body["object"] == "chat.completion" and body["id"].startswith("chatcmpl-")
    assert body["model"] == "fake.gguf"
    choice = body["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": "".join(SCRIPT), "refusal": None}
    assert choice["finish_reason"] == "stop"
    prompt_tokens = served.engine.count_tokens(served.engine.requests[-1])
    assert body["usage"]["prompt_tokens"] == prompt_tokens
    assert body["usage"]["completion_tokens"] == len(SCRIPT)
    assert body["usage"]["total_tokens"] == prompt_tokens + len(SCRIPT)


def test_chat_stream_ends_with_done(serve_fake: Callable[..., Served]) -> None:
    served = serve_fake()
    body = {**CHAT, "stream": True, "stream_options": {"include_usage": True}}
    with httpx2.stream("POST", served.url + "/chat/completions", json=body, timeout=30) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        events = sse_events(r.iter_lines())
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == "".join(SCRIPT)
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == len(SCRIPT)
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}


def test_text_completions(serve_fake: Callable[..., Served]) -> None:
    served = serve_fake()
    body = post(served, "/completions", {"prompt": "Once upon a time", "max_tokens": 8}).json()
    assert body["object"] == "text_completion" and body["choices"][0]["text"] == "".join(SCRIPT)
    assert body["usage"]["prompt_tokens"] == 4
    with httpx2.stream("POST", served.url + "/completions", timeout=30,
                       json={"prompt": ["Once"], "stream": True}) as r:
        events = sse_events(r.iter_lines())
    assert events[-1] == "[DONE]"
    assert "".join(e["choices"][0]["text"] for e in events[:-1]) == "".join(SCRIPT)


def test_every_sampling_field_reaches_the_engine(serve_fake: Callable[..., Served]) -> None:
    served = serve_fake()
    fields = {"temperature": 0.3, "top_p": 0.7, "max_completion_tokens": 33, "seed": 42,
              "presence_penalty": 0.5, "frequency_penalty": -0.25, "top_k": 7, "min_p": 0.1,
              "repeat_penalty": 1.3}
    assert post(served, "/chat/completions", {**CHAT, **fields}).status_code == 200
    used = served.engine.samplings[-1]
    assert (used.temperature, used.top_p, used.max_tokens, used.seed) == (0.3, 0.7, 33, 42)
    assert (used.presence_penalty, used.frequency_penalty) == (0.5, -0.25)
    assert (used.top_k, used.min_p, used.repeat_penalty) == (7, 0.1, 1.3)
    assert post(served, "/chat/completions", {**CHAT, "max_tokens": 5}).status_code == 200
    defaults = served.engine.samplings[-1]  # unset fields: the app's settings
    assert defaults.max_tokens == 5 and defaults.temperature == 0.6 and defaults.seed is None


def test_messages_map_onto_the_engine(serve_fake: Callable[..., Served]) -> None:
    served = serve_fake()
    messages = [{"role": "developer", "content": "Be brief."},
                {"role": "user", "content": [{"type": "text", "text": "a"},
                                             {"type": "text", "text": "b"}]},
                {"role": "assistant", "content": "ok", "refusal": None, "tool_calls": []},
                {"role": "user", "content": "again"}]
    assert post(served, "/chat/completions", {"messages": messages}).status_code == 200
    sent = [(m.role, m.content) for m in served.engine.requests[-1]]
    assert sent == [("system", "Be brief."), ("user", "a\nb"), ("assistant", "ok"),
                    ("user", "again")]


def test_stop_strings_cut_the_text_and_stop_the_generation(serve_fake: Callable[..., Served]
                                                          ) -> None:
    served = serve_fake()
    body = post(served, "/chat/completions", {**CHAT, "stop": ["re!", "never"]}).json()
    assert body["choices"][0]["message"]["content"] == "Hello the"
    assert body["choices"][0]["finish_reason"] == "stop"
    assert served.engine.generations[-1].result.generated_tokens < len(SCRIPT)  # stopped early
    with httpx2.stream("POST", served.url + "/chat/completions", timeout=30,
                       json={**CHAT, "stop": "re!", "stream": True}) as r:
        events = sse_events(r.iter_lines())
    text = "".join(e["choices"][0]["delta"].get("content", "") for e in events[:-1])
    assert text == "Hello the" and events[-2]["choices"][0]["finish_reason"] == "stop"


def test_history_only_when_turned_on(serve_fake: Callable[..., Served]) -> None:
    from app.store import Store

    messages = [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "One"},
                {"role": "assistant", "content": "Two"}, {"role": "user", "content": "Three"}]
    served = serve_fake()
    assert post(served, "/chat/completions", {"messages": messages}).status_code == 200
    store = Store.open()
    try:
        assert store.list_conversations() == []
    finally:
        store.close()
    saving = serve_fake(save_history=True)
    body = post(saving, "/chat/completions", {"messages": messages, "temperature": 0.2}).json()
    store = Store.open()
    try:
        [conv] = store.list_conversations()
        branch = store.current_branch(conv.id)
        assert conv.system_prompt == "Be kind." and conv.sampling == {"temperature": 0.2}
        assert [(m.role, m.content, m.state) for m in branch] == [
            ("user", "One", "complete"), ("assistant", "Two", "complete"),
            ("user", "Three", "complete"),
            ("assistant", body["choices"][0]["message"]["content"], "complete")]
    finally:
        store.close()


# -- refusals ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("extra", "param"), [
    ({"n": 2}, "n"),
    ({"tools": [{"type": "function", "function": {"name": "f"}}]}, "tools"),
    ({"tool_choice": "auto"}, "tool_choice"),
    ({"logprobs": True}, "logprobs"),
    ({"top_logprobs": 3}, "top_logprobs"),
    ({"logit_bias": {"50256": -100}}, "logit_bias"),
    ({"response_format": {"type": "json_object"}}, "response_format"),
    ({"store": True}, "store"),
    ({"frobnicate": 1}, "frobnicate"),
    ({"temperature": "hot"}, "temperature"),
    ({"temperature": True}, "temperature"),
    ({"temperature": 9}, "temperature"),
    ({"top_k": 2.5}, "top_k"),
    ({"max_tokens": 0}, "max_tokens"),
    ({"max_tokens": 5, "max_completion_tokens": 6}, "max_completion_tokens"),
    ({"seed": -1}, "seed"),
    ({"presence_penalty": 3}, "presence_penalty"),
    ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
    ({"stop": [""]}, "stop"),
    ({"stream": "yes"}, "stream"),
    ({"stream_options": {"include_usage": True}}, "stream_options"),
    ({"model": 7}, "model"),
    ({"messages": "hi"}, "messages"),
    ({"messages": []}, "messages"),
    ({"messages": [{"role": "tool", "content": "x", "tool_call_id": "1"}]}, "messages[0].role"),
    ({"messages": [{"role": "robot", "content": "x"}]}, "messages[0].role"),
    ({"messages": [{"role": "user", "content": "x", "name": "bob"}]}, "messages[0].name"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]},
     "messages[0].content"),
    ({"messages": [{"role": "user"}]}, "messages[0].content"),
    ({"messages": [{"role": "user", "content": "x", "extra": 1}]}, "messages[0].extra"),
])
def test_unsupported_or_wrong_fields_get_400(serve_fake: Callable[..., Served],
                                             extra: dict[str, Any], param: str) -> None:
    served = serve_fake()
    response = post(served, "/chat/completions", {**CHAT, **extra})
    assert response.status_code == 400, response.text
    error = error_of(response)
    assert error["type"] == "invalid_request_error" and error["param"] == param
    assert served.engine.requests == []  # refused before anything ran


@pytest.mark.parametrize("extra", [{"echo": True}, {"suffix": "x"}, {"best_of": 2},
                                   {"logprobs": 2}, {"prompt": [1, 2, 3]}, {"prompt": ["a", "b"]}])
def test_text_completion_refusals(serve_fake: Callable[..., Served], extra: dict[str, Any]) -> None:
    response = post(serve_fake(), "/completions", {"prompt": "x", **extra})
    assert response.status_code == 400 and error_of(response)["param"] in (*extra, "prompt")


@pytest.mark.parametrize("raw", [b'{"messages": [], "temperature": NaN}',
                                 b'{"temperature": Infinity, "messages": []}',
                                 b'{"temperature": -Infinity}', b'{"temperature": 1e999}',
                                 b"not json", b"[1, 2]", b"\xff\xfe"])
def test_non_finite_numbers_and_bad_json_are_refused(serve_fake: Callable[..., Served],
                                                     raw: bytes) -> None:
    response = post(serve_fake(), "/chat/completions", raw)
    assert response.status_code == 400 and error_of(response)["type"] == "invalid_request_error"


def test_unknown_model_is_404_and_paths_are_never_opened(serve_fake: Callable[..., Served]
                                                         ) -> None:
    served = serve_fake()
    for model in ("gpt-4o", "/etc/passwd", "../fake.gguf"):
        response = post(served, "/chat/completions", {**CHAT, "model": model})
        assert response.status_code == 404
        assert error_of(response)["code"] == "model_not_found"
    assert served.engine.loads == ["/models/fake.gguf"]


def test_another_installed_model_is_loaded_or_refused(serve_fake: Callable[..., Served],
                                                     starter_model: Any) -> None:
    pinned = serve_fake(switch_models=False)
    response = post(pinned, "/chat/completions", {**CHAT, "model": "Starter (SmolLM2 135M)"})
    assert response.status_code == 400 and error_of(response)["code"] == "model_not_loaded"
    assert "fake.gguf" in error_of(response)["message"]
    switching = serve_fake()
    body = post(switching, "/chat/completions", {**CHAT, "model": "starter (smollm2 135m)"}).json()
    assert body["model"] == "Starter (SmolLM2 135M)"
    assert switching.engine.loads[-1] == str(starter_model)
    ids = [m["id"] for m in httpx2.get(switching.url + "/models").json()["data"]]
    assert ids[0] == "Starter (SmolLM2 135M)"


def test_a_prompt_that_cannot_fit_is_400(serve_fake: Callable[..., Served]) -> None:
    served = serve_fake(RecordingEngine(n_ctx=64))
    response = post(served, "/chat/completions",
                    {"messages": [{"role": "user", "content": "word " * 100}], "max_tokens": 8})
    assert response.status_code == 400
    assert error_of(response)["code"] == "context_length_exceeded"
    assert error_of(response)["param"] == "messages"
    text = post(served, "/completions", {"prompt": "word " * 100, "max_tokens": 8})
    assert text.status_code == 400 and error_of(text)["param"] == "prompt"
    assert error_of(text)["code"] == "context_length_exceeded"


def test_a_failed_generation_is_500_or_an_error_event(serve_fake: Callable[..., Served]) -> None:
    engine = RecordingEngine()
    engine.fail_at = 3
    served = serve_fake(engine)
    response = post(served, "/chat/completions", CHAT)
    assert response.status_code == 500 and error_of(response)["type"] == "server_error"
    with httpx2.stream("POST", served.url + "/chat/completions", timeout=30,
                       json={**CHAT, "stream": True}) as r:
        events = sse_events(r.iter_lines())
    assert events[-1] == "[DONE]" and "error" in events[-2]


def test_unknown_paths_and_methods_answer_in_json(serve_fake: Callable[..., Served]) -> None:
    served = serve_fake()
    missing = httpx2.get(served.url + "/engines")
    assert missing.status_code == 404 and error_of(missing)["code"] == "not_found"
    wrong = httpx2.get(served.url + "/chat/completions")
    assert wrong.status_code == 405 and error_of(wrong)["code"] == "method_not_allowed"


def test_a_body_over_8_mb_is_413_while_reading(serve_fake: Callable[..., Served]) -> None:
    served = serve_fake()

    def chunks() -> Iterator[bytes]:  # chunked: no Content-Length to trust
        yield b'{"messages": [{"role": "user", "content": "'
        for _ in range(9):
            yield b"x" * (1024 * 1024)
        yield b'"}]}'

    response = httpx2.post(served.url + "/chat/completions", content=chunks(), timeout=30)
    assert response.status_code == 413 and error_of(response)["code"] == "request_too_large"
    assert served.engine.requests == []
    fits = b'{"messages": [{"role": "user", "content": "' + b"x " * (3 * 1024 * 1024) + b'"}]}'
    assert post(served, "/chat/completions", fits).status_code != 413


def test_a_declared_huge_body_is_refused_before_it_is_sent(serve_fake: Callable[..., Served]
                                                           ) -> None:
    served = serve_fake()
    with socket.create_connection(("127.0.0.1", served.server.port), timeout=10) as sock:
        sock.sendall(f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:{served.server.port}"
                     "\r\nContent-Type: application/json\r\nContent-Length: 100000000\r\n\r\n"
                     .encode())
        head = sock.recv(65536).decode()
    assert head.startswith("HTTP/1.1 413")
