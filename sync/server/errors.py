"""One error shape for every failure: `{"error": code, "message": sentence, ...}`.

Clients branch on `error` (and `reason` for 401); `message` is for logs and the status
bar. Unexpected exceptions become a logged 500 with no internals in the body, but the
test suite (schemathesis) holds us to never producing one.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)


class ApiError(Exception):
    """Raise anywhere in a request to answer with `status` and the JSON error body."""

    def __init__(self, status: int, code: str, message: str,
                 headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.extra = extra

    def response(self) -> JSONResponse:
        body = {"error": self.code, "message": self.message, **self.extra}
        return JSONResponse(body, status_code=self.status, headers=self.headers)


class BodyTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(limit)
        self.limit = limit


def unauthorized(reason: str, message: str) -> ApiError:
    return ApiError(401, "unauthorized", message, reason=reason,
                    headers={"WWW-Authenticate": f'Bearer error="invalid_token", '
                                                 f'error_description="{reason}"'})


def forbidden(message: str, **extra: Any) -> ApiError:
    return ApiError(403, "forbidden", message, **extra)


def foreign_client_id() -> ApiError:
    """A client_id bound to another user: one sign-in per install and user (§4)."""
    return forbidden("This client_id belongs to another user; create a new client_id after "
                     "a different user signs in.", reason="client_id belongs to another user")


_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 406: "not_acceptable",
               415: "unsupported_media_type", 400: "bad_request"}


def _problems(exc: RequestValidationError) -> list[dict[str, str]]:
    out = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()))
        out.append({"loc": loc, "msg": str(err.get("msg", ""))})
    return out


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_r: Request, exc: ApiError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(BodyTooLarge)
    async def _too_large(_r: Request, exc: BodyTooLarge) -> JSONResponse:
        return ApiError(413, "too_large", f"The request body is larger than the limit of "
                        f"{exc.limit} bytes.", limit_bytes=exc.limit).response()

    @app.exception_handler(RequestValidationError)
    async def _invalid(_r: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return ApiError(400, "malformed_json", "The request body is not valid JSON."
                            ).response()
        problems = _problems(exc)
        first = problems[0] if problems else {"loc": "", "msg": ""}
        return ApiError(422, "invalid_request",
                        f"The request does not match the expected format: {first['loc']}: "
                        f"{first['msg']}", problems=problems).response()

    @app.exception_handler(StarletteHTTPException)
    async def _http(_r: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
        return JSONResponse({"error": code, "message": str(exc.detail)},
                            status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(DataError)
    async def _bad_data(request: Request, exc: DataError) -> JSONResponse:
        # Defence in depth: input the database cannot store is the client's error.
        log.warning("database refused a value during %s %s: %s", request.method,
                    request.url.path, str(exc.orig).splitlines()[0])
        return ApiError(400, "bad_value", "A value in the request cannot be stored (for "
                        "example a NUL character or a number out of range).").response()

    @app.exception_handler(OperationalError)
    async def _db_busy(request: Request, exc: OperationalError) -> JSONResponse:
        log.error("database unavailable during %s %s: %s", request.method, request.url.path,
                  exc.orig)
        if "full" in str(exc.orig).lower():
            return ApiError(507, "storage_full", "The server's disk is full; nothing was "
                            "committed. Retry later.", headers={"Retry-After": "60"}).response()
        return ApiError(503, "unavailable", "The server's database is busy or unreachable; "
                        "retry shortly.", headers={"Retry-After": "2"}).response()

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error during %s %s", request.method, request.url.path)
        return ApiError(500, "server_error", "The server failed unexpectedly; the error "
                        "was logged. Nothing was committed.").response()


class BodyLimitMiddleware:
    """413 for bodies over the limit, whether announced by Content-Length or streamed; and
    `Cache-Control: no-store` on auth and sync answers (tokens and private rows).

    Upload chunks (`PATCH /recordings/...`) get their own, larger limit.
    """

    def __init__(self, app: ASGIApp, json_limit: int, chunk_limit: int) -> None:
        self.app = app
        self.json_limit = json_limit
        self.chunk_limit = chunk_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        is_chunk = scope["method"] == "PATCH" and scope["path"].startswith("/recordings/")
        limit = self.chunk_limit if is_chunk else self.json_limit
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > limit
            except ValueError:
                too_big = False
            if too_big:
                await _send_json(send, 413, {"error": "too_large", "limit_bytes": limit,
                                             "message": f"The request body is larger than "
                                                        f"the limit of {limit} bytes."})
                return
        seen = 0
        no_store = scope["path"].startswith(("/auth", "/sync"))

        async def send_wrapper(message: Message) -> None:
            if no_store and message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []),
                                      (b"cache-control", b"no-store")]
            await send(message)

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, limited, send_wrapper)


async def _send_json(send: Send, status: int, body: dict[str, Any]) -> None:
    raw = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(raw)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": raw})
