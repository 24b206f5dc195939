"""A loopback vLLM emulator: its OpenAI server's /version, /v1/models, /tokenize, /detokenize and
streamed /v1/completions, tokenizing with a real Llama vocabulary (llama_cpp, vocab only) the way
vLLM's Hugging Face tokenizer does (special-token text in a prompt is read as the token)."""

from __future__ import annotations

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], OSError):  # a client gone mid-reply is expected
            super().handle_error(request, client_address)


REPLY = " Llamas are woolly animals of the Andes; they hum, spit and carry loads for herders."


class VLLMEmulator:
    """Serves ``model_id`` over ``llm`` (a ``llama_cpp.Llama``) on 127.0.0.1.

    ``requests`` keeps every (method, path, JSON body); ``prompts`` the ``prompt`` of each
    /v1/completions request; ``disconnected`` is set when a client closes a reply mid-stream.
    ``fail`` = (status, body) answers the next /v1/completions with that error; ``enforce_len``
    refuses prompts longer than it with vLLM's context error (as a server whose real limit is
    below what /v1/models says would); ``api_key`` guards /v1/* as ``vllm serve --api-key``.
    """

    def __init__(self, llm: Any, model_id: str = "meta-llama/Llama-2-7b-chat-hf", *,
                 max_model_len: int = 2048, delay_s: float = 0.002, owned_by: str = "vllm",
                 version: bool = True, api_key: str = "") -> None:
        self.llm, self.model_id, self.max_model_len = llm, model_id, max_model_len
        self.delay_s, self.owned_by, self.version, self.api_key = delay_s, owned_by, version, api_key
        self.requests: list[tuple[str, str, Any]] = []
        self.prompts: list[list[int]] = []
        self.disconnected = threading.Event()
        self.finished = threading.Event()
        self.fail: tuple[int, Any] | None = None
        self.enforce_len = max_model_len
        self._lock = threading.Lock()
        emulator = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _json(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                emulator.requests.append((self.command, self.path, body))
                if (emulator.api_key and self.path.startswith("/v1/") and self.headers.get(
                        "Authorization") != f"Bearer {emulator.api_key}"):
                    self._json(401, {"error": "Unauthorized"})
                    return
                route = emulator.route(self.command, self.path)
                if route is None:
                    self._json(404, {"detail": "Not Found"})
                elif self.path == "/v1/completions":
                    emulator.complete(self, body)
                else:
                    self._json(200, route(body))

            do_GET = do_POST = _handle

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def bodies(self, path: str) -> list[Any]:
        return [body for _, p, body in self.requests if p == path]

    # -- routes ------------------------------------------------------------------------------------
    def route(self, method: str, path: str) -> Any:
        routes = {("GET", "/v1/models"): self.models, ("POST", "/tokenize"): self.tokenize,
                  ("POST", "/detokenize"): self.detokenize, ("POST", "/v1/completions"): True}
        if self.version:
            routes[("GET", "/version")] = lambda _: {"version": "0.11.0"}
        return routes.get((method, path))

    def models(self, _: Any) -> Any:
        return {"object": "list", "data": [{
            "id": self.model_id, "object": "model", "created": 0, "owned_by": self.owned_by,
            "root": self.model_id, "parent": None, "max_model_len": self.max_model_len}]}

    def tokenize(self, body: Any) -> Any:
        with self._lock:  # vLLM's HF tokenizer: special-token text is read as the token
            tokens = self.llm.tokenize(str(body["prompt"]).encode(),
                                       add_bos=bool(body.get("add_special_tokens", True)),
                                       special=True)
        return {"count": len(tokens), "max_model_len": self.max_model_len, "tokens": tokens}

    def detokenize(self, body: Any) -> Any:
        with self._lock:
            text = self.llm.detokenize(list(body["tokens"]), special=True)
        return {"prompt": text.decode("utf-8", errors="replace")}

    def complete(self, handler: BaseHTTPRequestHandler, body: Any) -> None:
        send = handler._json  # type: ignore[attr-defined]
        prompt = body.get("prompt")
        if body.get("model") != self.model_id:
            send(404, {"object": "error", "message": f"The model `{body.get('model')}` does "
                       "not exist.", "type": "NotFoundError", "param": None, "code": 404})
            return
        if not isinstance(prompt, list) or not all(isinstance(t, int) for t in prompt):
            send(400, {"object": "error", "message": "prompt must be token ids here",
                       "type": "BadRequestError", "param": None, "code": 400})
            return
        self.prompts.append(list(prompt))
        if self.fail is not None:
            status, error = self.fail
            self.fail = None
            send(status, error)
            return
        max_tokens = int(body.get("max_tokens") or 16)
        if len(prompt) + max_tokens > self.enforce_len:
            send(400, {"object": "error", "message": (
                f"This model's maximum context length is {self.enforce_len} tokens. However, you "
                f"requested {len(prompt) + max_tokens} tokens ({len(prompt)} in the messages, "
                f"{max_tokens} in the completion). Please reduce the length of the messages or "
                "completion."), "type": "BadRequestError", "param": None, "code": 400})
            return
        self._stream(handler, prompt, max_tokens, body)

    def _stream(self, handler: BaseHTTPRequestHandler, prompt: list[int], max_tokens: int,
                body: Any) -> None:
        with self._lock:
            reply = self.llm.tokenize(REPLY.encode(), add_bos=False, special=False)
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()

        def event(data: Any) -> None:
            line = b"data: " + (data if isinstance(data, bytes) else json.dumps(data).encode())
            chunk = line + b"\n\n"
            handler.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            handler.wfile.flush()

        def choice(text: str, finish: str | None) -> Any:
            return {"id": "cmpl-1", "object": "text_completion", "created": 0,
                    "model": self.model_id, "choices": [{"index": 0, "text": text,
                    "logprobs": None, "finish_reason": finish, "stop_reason": None}]}

        sent = 0
        try:
            for n in range(max_tokens):
                with self._lock:
                    ids = [reply[i % len(reply)] for i in range(n + 1)]
                    before = self.llm.detokenize(ids[:-1]).decode(errors="ignore")
                    piece = self.llm.detokenize(ids).decode(errors="ignore")[len(before):]
                event(choice(piece, None))
                sent += 1
                time.sleep(self.delay_s)
            event(choice("", "length"))
            if (body.get("stream_options") or {}).get("include_usage"):
                event({"id": "cmpl-1", "object": "text_completion", "created": 0,
                       "model": self.model_id, "choices": [], "usage": {
                           "prompt_tokens": len(prompt), "completion_tokens": sent,
                           "total_tokens": len(prompt) + sent,
                           "prompt_tokens_details": {"cached_tokens": 16}}})
            event(b"[DONE]")
            handler.wfile.write(b"0\r\n\r\n")
            handler.wfile.flush()
            self.finished.set()
        except OSError:  # the client closed the reply: vLLM aborts the request
            self.disconnected.set()
