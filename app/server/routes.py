"""The endpoints: /v1/models, /v1/chat/completions, /v1/completions and /health, on Starlette."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request as HttpRequest
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive

from app.server.config import ServerConfig
from app.server.dispatch import Dispatcher, Job
from app.server.errors import ApiError, server_error
from app.server.gate import Gate
from app.server.models import listing, loaded_model
from app.server.responses import DONE, Answer, sse
from app.server.schema import Request, parse_chat, parse_completion, parse_json, too_large

log = logging.getLogger(__name__)
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


async def read_body(request: HttpRequest, limit: int) -> bytes:
    """The body, refused (413) as soon as it passes ``limit`` bytes, whatever Content-Length says.

    A declared length over the limit is refused before reading; otherwise the bytes are counted
    as they arrive. Past the limit the rest is read and dropped (up to ``limit`` more), so the
    client is sending nothing when the 413 comes and can read it.
    """
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            chunks.clear()
            if size <= 2 * limit:
                continue
            break
        chunks.append(chunk)
    if size > limit:
        raise too_large(limit)
    return b"".join(chunks)


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


def _watch(request: HttpRequest, job: Job) -> asyncio.Task[None]:
    """Cancel ``job`` the moment its client hangs up (while waiting, reading or streaming)."""
    task = asyncio.ensure_future(_disconnected(request.receive))
    task.add_done_callback(lambda t: None if t.cancelled() else job.cancel())
    return task


class Api:
    """The route handlers over one Dispatcher."""

    def __init__(self, dispatcher: Dispatcher, config: ServerConfig) -> None:
        self.dispatcher = dispatcher
        self.config = config

    async def health(self, request: HttpRequest) -> Response:
        loaded = loaded_model(self.dispatcher.owner.resource, on_owner=False)
        return JSONResponse({"status": "ok", "model": loaded.id if loaded else None,
                             "waiting": self.dispatcher.waiting})

    async def models(self, request: HttpRequest) -> Response:
        return JSONResponse({"object": "list", "data": listing(self.dispatcher.owner.resource)})

    async def model(self, request: HttpRequest) -> Response:
        wanted = request.path_params["model_id"]
        for item in listing(self.dispatcher.owner.resource):
            if item["id"] == wanted:
                return JSONResponse(item)
        raise ApiError(404, f"The model {wanted!r} does not exist.", param="model",
                       code="model_not_found")

    async def chat(self, request: HttpRequest) -> Response:
        body = await read_body(request, self.config.max_body_bytes)
        return await self._answer(request, parse_chat(parse_json(body)), chat=True)

    async def completions(self, request: HttpRequest) -> Response:
        body = await read_body(request, self.config.max_body_bytes)
        return await self._answer(request, parse_completion(parse_json(body)), chat=False)

    async def _answer(self, request: HttpRequest, req: Request, *, chat: bool) -> Response:
        job = self.dispatcher.submit(req)
        watcher = _watch(request, job)
        try:
            first = await job.next()  # waits in the queue; a hang-up meanwhile cancels the job
            if first.kind == "error":
                assert first.error is not None
                raise first.error
            if first.kind == "gone":
                return _gone()
            answer = Answer(model=job.model, chat=chat)
            if req.stream:
                watcher.cancel()  # StreamingResponse listens for the hang-up itself from here
                return StreamingResponse(_events(job, answer, req.include_usage),
                                         media_type="text/event-stream", headers=SSE_HEADERS)
            return await _collect(job, answer)
        finally:
            watcher.cancel()


def _gone() -> Response:
    """The client left or the server is stopping: nobody reads this."""
    return JSONResponse(ApiError(503, "The request was stopped.", kind="server_error").body(),
                        status_code=503)


async def _collect(job: Job, answer: Answer) -> Response:
    texts: list[str] = []
    while True:
        for event in await job.batch():
            if event.kind == "text":
                texts.append(event.text)
            elif event.kind == "done":
                assert event.result is not None
                return JSONResponse(answer.whole("".join(texts), event.result))
            elif event.kind == "error":
                assert event.error is not None
                raise event.error
            else:
                return _gone()


async def _events(job: Job, answer: Answer, include_usage: bool) -> AsyncIterator[bytes]:
    """The SSE stream: the role, text deltas, the finish reason, usage if asked, ``[DONE]``."""
    try:
        yield sse(answer.chunk(None, first=True))
        ended = False
        while not ended:
            texts: list[str] = []
            out: list[bytes] = []
            for event in await job.batch():
                if event.kind == "text":
                    texts.append(event.text)
                    continue
                ended = True
                if event.kind == "done":
                    assert event.result is not None
                    if texts:
                        out.append(sse(answer.chunk("".join(texts))))
                        texts = []
                    out.append(sse(answer.chunk(None, result=event.result)))
                    if include_usage:
                        out.append(sse(answer.usage_chunk(event.result)))
                elif event.kind == "error":
                    assert event.error is not None
                    out.append(sse(event.error.body()))
                break
            if texts:
                out.insert(0, sse(answer.chunk("".join(texts))))
            if out:
                yield b"".join(out)
        yield DONE
    finally:  # a hang-up cancels this generator: stop the reply at once
        job.cancel()


async def _api_error(request: HttpRequest, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return exc.response()


async def _http_error(request: HttpRequest, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    kinds = {404: ("not_found", f"No endpoint {request.url.path}; this server has /v1/models, "
                   "/v1/chat/completions, /v1/completions and /health."),
             405: ("method_not_allowed", f"{request.method} is not allowed on {request.url.path}.")}
    code, message = kinds.get(exc.status_code, (None, str(exc.detail)))
    return ApiError(exc.status_code, message, code=code, headers=exc.headers).response()


async def _crash(request: HttpRequest, exc: Exception) -> Response:
    log.error("the API server failed on %s", request.url.path, exc_info=exc)
    return server_error().response()


def build_app(dispatcher: Dispatcher, config: ServerConfig, port: int) -> ASGIApp:
    """The whole ASGI app: the Gate in front of the routes."""
    api = Api(dispatcher, config)
    routes = [
        Route("/health", api.health, methods=["GET"]),
        Route("/v1/models", api.models, methods=["GET"]),
        Route("/v1/models/{model_id:path}", api.model, methods=["GET"]),
        Route("/v1/chat/completions", api.chat, methods=["POST"]),
        Route("/v1/completions", api.completions, methods=["POST"]),
    ]
    handlers: dict[Any, Any] = {ApiError: _api_error, HTTPException: _http_error,
                                Exception: _crash}
    return Gate(Starlette(routes=routes, exception_handlers=handlers), config, port)
