"""API errors in OpenAI's JSON shape, and how the chat service's errors map onto them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.responses import JSONResponse

from app.errors import ContextOverflowError, ModelFileError, ModelTooLargeError, UserError


class ApiError(Exception):
    """One HTTP error answer: ``{"error": {"message", "type", "param", "code"}}``."""

    def __init__(self, status: int, message: str, *, kind: str = "invalid_request_error",
                 param: str | None = None, code: str | None = None,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.kind = kind
        self.param = param
        self.code = code
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.kind, "param": self.param,
                          "code": self.code}}

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers)


def bad_request(message: str, param: str | None = None, code: str | None = None) -> ApiError:
    return ApiError(400, message, param=param, code=code)


def from_user_error(err: UserError, *, prompt_param: str = "messages") -> ApiError:
    """The answer for a refusal from the chat service or the engine."""
    if isinstance(err, ContextOverflowError):
        return ApiError(400, str(err), param=prompt_param, code="context_length_exceeded")
    if isinstance(err, ModelFileError | ModelTooLargeError):
        return ApiError(500, str(err), kind="server_error", code="model_load_failed")
    return ApiError(400, str(err))


def server_error(message: str = "The server failed; details are in Llama Desk's log.") -> ApiError:
    return ApiError(500, message, kind="server_error")
