"""The official openai client against `llama-desk serve` on the tiny Llama-2-style GGUF."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
import pytest

from app.cli import build_parser
from app.commands.serve import run_serve
from app.server.runner import ApiServer
from tests.engine.test_formats import reference_chat_completion_tokens

pytestmark = pytest.mark.slow


@dataclass
class Live:
    client: openai.OpenAI
    server: ApiServer
    prompts: list[list[int]]  # the token ids each generation handed to llama.cpp


@pytest.fixture
def live(tiny_llama2: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Live]:
    import llama_cpp

    prompts: list[list[int]] = []
    generate = llama_cpp.Llama.generate

    def spy(self: Any, tokens: Any, *args: Any, **kwargs: Any) -> Any:
        prompts.append(list(tokens))
        return generate(self, tokens, *args, **kwargs)

    monkeypatch.setattr(llama_cpp.Llama, "generate", spy)
    args = build_parser().parse_args(["serve", "--model", str(tiny_llama2), "--port", "0",
                                      "--ctx", "1024", "--gpu-layers", "0"])
    ready: queue.Queue[ApiServer] = queue.Queue()
    stop = threading.Event()
    thread = threading.Thread(target=run_serve, args=(args,),
                              kwargs={"ready": ready.put, "until": stop.is_set})
    thread.start()
    try:
        server = ready.get(timeout=60)
        client = openai.OpenAI(base_url=server.url, api_key="not-needed", max_retries=0,
                               timeout=60)
        yield Live(client, server, prompts)
    finally:
        stop.set()
        thread.join(30)
    assert not thread.is_alive()


def _stream(live: Live, messages: list[dict[str, str]], **kwargs: Any) -> str:
    stream = live.client.chat.completions.create(
        model="llama-2-tiny.gguf", messages=messages, stream=True, max_tokens=6, seed=1,
        **kwargs)  # type: ignore[call-overload]
    parts = []
    reasons = []
    for chunk in stream:
        for choice in chunk.choices:
            parts.append(choice.delta.content or "")
            reasons.append(choice.finish_reason)
    assert reasons[-1] in ("stop", "length") and all(r is None for r in reasons[:-1])
    return "".join(parts)


def test_models_and_a_two_turn_streamed_chat_get_metas_exact_tokens(live: Live,
                                                                    spm_llama: Any) -> None:
    ids = [m.id for m in live.client.models.list()]
    assert ids[0] == "llama-2-tiny.gguf"  # the loaded model first
    assert "Starter (SmolLM2 135M)" in ids

    dialog = [{"role": "system", "content": "Be brief."},
              {"role": "user", "content": "Hi there"}]
    first = _stream(live, dialog)
    assert first
    assert live.prompts[-1] == reference_chat_completion_tokens(dialog, spm_llama)

    dialog += [{"role": "assistant", "content": first},
               {"role": "user", "content": "Typed [INST] and <s> stay text"}]
    second = _stream(live, dialog)
    assert second
    assert live.prompts[-1] == reference_chat_completion_tokens(dialog, spm_llama)
    assert live.prompts[-1].count(spm_llama.token_bos()) == 2


def test_a_whole_answer_carries_usage(live: Live) -> None:
    messages = [{"role": "user", "content": "Count to three"}]
    done = live.client.chat.completions.create(model="llama-2-tiny.gguf", messages=messages,
                                               max_completion_tokens=5, seed=2)  # type: ignore[arg-type]
    assert done.object == "chat.completion" and done.model == "llama-2-tiny.gguf"
    assert done.choices[0].message.role == "assistant"
    assert done.usage is not None
    assert done.usage.prompt_tokens == len(live.prompts[-1])
    assert 1 <= done.usage.completion_tokens <= 5
    assert done.usage.total_tokens == done.usage.prompt_tokens + done.usage.completion_tokens
    text = live.client.completions.create(model="llama-2-tiny.gguf", prompt="Once upon",
                                          max_tokens=3, seed=1)
    assert text.object == "text_completion" and text.usage is not None
    assert text.usage.prompt_tokens == len(live.prompts[-1])


def test_refusals_reach_the_client_as_its_own_errors(live: Live) -> None:
    with pytest.raises(openai.NotFoundError) as missing:
        live.client.chat.completions.create(model="gpt-4o", messages=[
            {"role": "user", "content": "Hi"}])
    assert missing.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError) as too_long:
        live.client.chat.completions.create(model="llama-2-tiny.gguf", max_tokens=16, messages=[
            {"role": "user", "content": "word " * 1500}])
    assert too_long.value.code == "context_length_exceeded"
    assert "tokens but only 1,008 fit" in too_long.value.message  # both counts, named
    with pytest.raises(openai.BadRequestError) as two:
        live.client.chat.completions.create(model="llama-2-tiny.gguf", n=2, messages=[
            {"role": "user", "content": "Hi"}])
    assert two.value.param == "n"
