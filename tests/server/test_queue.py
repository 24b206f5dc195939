"""One engine, many clients: queued never overlapping, a bound on waiting, hang-up stops at once."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable
from typing import Any

import httpx2

from tests.server.conftest import RecordingEngine, Served

CHAT = {"messages": [{"role": "user", "content": "Hi"}]}
LONG = ["w "] * 400  # 400 chunks: 8 s at 20 ms each, far longer than any wait below


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    done = threading.Event()
    for _ in range(int(timeout / 0.01)):
        if condition():
            return
        done.wait(0.01)
    raise AssertionError("condition not reached")


def raw_request(served: Served, body: dict[str, Any]) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", served.server.port), timeout=10)
    data = json.dumps(body).encode()
    sock.sendall(f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:{served.server.port}\r\n"
                 f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n".encode()
                 + data)
    return sock


def test_a_streaming_client_that_hangs_up_stops_its_generation(serve_fake: Callable[..., Served]
                                                               ) -> None:
    engine = RecordingEngine(LONG, delay=0.02)
    served = serve_fake(engine)
    with httpx2.stream("POST", served.url + "/chat/completions", timeout=30,
                       json={**CHAT, "stream": True}) as response:
        seen = 0
        for line in response.iter_lines():
            seen += line.startswith("data: ")
            if seen >= 4:
                break  # leaving the block closes the connection mid-reply
    wait_for(lambda: len(engine.spans) == 1)
    first = engine.generations[0].result
    assert first.finish_reason == "cancelled" and first.generated_tokens < 100
    engine.delay = 0.0
    # The next request is served at once: with a 5 s budget, it could not wait out the 8 s reply.
    answer = httpx2.post(served.url + "/chat/completions", json=CHAT, timeout=5)
    assert answer.json()["choices"][0]["message"]["content"] == "".join(LONG)


def test_a_waiting_client_hanging_up_never_runs(serve_fake: Callable[..., Served]) -> None:
    engine = RecordingEngine(LONG, delay=0.02)
    served = serve_fake(engine)
    running = raw_request(served, CHAT)
    wait_for(engine.running.is_set)
    waiting = raw_request(served, {"messages": [{"role": "user", "content": "Never me"}]})
    wait_for(lambda: served.server.dispatcher.waiting == 1)
    waiting.close()
    wait_for(lambda: served.server.dispatcher.waiting == 0)
    running.close()  # a non-streaming client hanging up stops its reply too
    wait_for(lambda: len(engine.spans) == 1)
    assert engine.generations[0].result.finish_reason == "cancelled"
    engine.delay = 0.0
    assert httpx2.post(served.url + "/chat/completions", json=CHAT, timeout=5).status_code == 200
    asked = [m.content for request in engine.requests for m in request]
    assert "Never me" not in asked and asked.count("Hi") == 2


def test_two_concurrent_clients_are_served_one_after_the_other(serve_fake: Callable[..., Served]
                                                               ) -> None:
    script = [f"{i} " for i in range(20)]
    engine = RecordingEngine(script, delay=0.01)
    served = serve_fake(engine)
    texts: dict[int, str] = {}

    def client(n: int) -> None:
        body = {"messages": [{"role": "user", "content": f"client {n}"}], "stream": n == 0}
        with httpx2.stream("POST", served.url + "/chat/completions", json=body,
                           timeout=30) as response:
            if n == 0:
                parts = [json.loads(line[6:]) for line in response.iter_lines()
                         if line.startswith("data: {")]
                texts[n] = "".join(p["choices"][0]["delta"].get("content", "") for p in parts)
            else:
                response.read()
                texts[n] = response.json()["choices"][0]["message"]["content"]

    threads = [threading.Thread(target=client, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert texts == {0: "".join(script), 1: "".join(script)}
    (_, a_end), (b_start, _) = sorted(engine.spans)
    assert a_end <= b_start  # never two generations at once
    assert len(engine.thread_ids) == 1  # and all on the one owner thread


def test_beyond_eight_waiting_requests_comes_429(serve_fake: Callable[..., Served]) -> None:
    engine = RecordingEngine(LONG, delay=0.02)
    served = serve_fake(engine)
    statuses: list[int] = []

    def client() -> None:
        try:
            statuses.append(httpx2.post(served.url + "/chat/completions", json=CHAT,
                                        timeout=60).status_code)
        except httpx2.HTTPError:
            statuses.append(-1)

    threads = [threading.Thread(target=client) for _ in range(9)]
    threads[0].start()
    wait_for(engine.running.is_set)
    for t in threads[1:]:
        t.start()
    wait_for(lambda: served.server.dispatcher.waiting == 8)
    assert httpx2.get(served.root + "/health").json()["waiting"] == 8
    refused = httpx2.post(served.url + "/chat/completions", json=CHAT, timeout=5)
    assert refused.status_code == 429
    assert refused.headers["retry-after"].isdigit()
    error = refused.json()["error"]
    assert error["type"] == "rate_limit_error" and error["code"] == "rate_limit_exceeded"
    assert httpx2.get(served.url + "/models").status_code == 200  # listing never queues
    served.server.stop()  # stopping cancels every API request, running or waiting
    for t in threads:
        t.join(30)
    assert len(statuses) == 9 and not any(t.is_alive() for t in threads)
    assert len(engine.generations) == 1  # the waiting ones never ran
