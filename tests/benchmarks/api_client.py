"""A separate client process for the API benchmark, driven by one JSON line per command on stdin.

A chat request body is streamed; the answer is one JSON line with the client-side times
(``time.monotonic``, the same clock in every process on Linux/macOS): sent, first and last
content delta, and the completion tokens from ``usage``. ``{"models": N}`` times N
``GET /v1/models`` on the kept-alive connection and answers with the seconds each took.
"""

from __future__ import annotations

import json
import sys
import time

import httpx2


def main(url: str) -> None:
    with httpx2.Client(base_url=url, timeout=300) as client:
        print(json.dumps({"ready": client.get("/models").status_code}), flush=True)
        for line in sys.stdin:
            body = json.loads(line)
            if "models" in body:
                took = []
                for _ in range(int(body["models"])):
                    started = time.perf_counter()
                    client.get("/models").raise_for_status()
                    took.append(time.perf_counter() - started)
                print(json.dumps(took), flush=True)
                continue
            tokens = 0
            first = last = 0.0
            sent = time.monotonic()
            with client.stream("POST", "/chat/completions", json=body) as response:
                for event_line in response.iter_lines():
                    if not event_line.startswith("data: {"):
                        continue
                    event = json.loads(event_line[6:])
                    if event.get("usage"):
                        tokens = event["usage"]["completion_tokens"]
                    elif event["choices"] and event["choices"][0]["delta"].get("content"):
                        last = time.monotonic()
                        first = first or last
            print(json.dumps({"sent": sent, "first": first, "last": last, "tokens": tokens}),
                  flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
