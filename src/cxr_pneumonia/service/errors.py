"""Every error leaves as ``{"error": code, "detail": text, "request_id": id}``; never a stack trace."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import CXRError, RejectedImage
from .exceptions import Unauthorized
from .ratelimit import RateLimited

log = logging.getLogger(__name__)

_HTTP_CODES = {
    400: "malformed_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
}


class BodyTooLarge(StarletteHTTPException):
    """Raised while the body streams in; FastAPI re-raises HTTPExceptions from body parsing unchanged."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body exceeds {limit} bytes")


def request_id_of(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


def error_response(
    request: Request,
    status: int,
    code: str,
    detail: str,
    *,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    request_id = request_id_of(request)
    body = {"error": code, "detail": detail, "request_id": request_id, **extra}
    all_headers = {**(headers or {}), **({"X-Request-ID": request_id} if request_id else {})}
    return JSONResponse(body, status_code=status, headers=all_headers)


async def _cxr_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, CXRError)
    headers: dict[str, str] = {}
    extra: dict[str, Any] = {}
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(exc.retry_after)
    if isinstance(exc, Unauthorized):
        headers["WWW-Authenticate"] = 'Bearer, ApiKey header="X-API-Key"'
    if isinstance(exc, RejectedImage):
        extra["reason"] = exc.reason
    extra.update(getattr(exc, "extra", None) or {})  # e.g. a 409's running_job
    return error_response(request, exc.http_status, exc.code, exc.detail, headers=headers, **extra)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    # Only location, message and type: the raw input may be binary, huge, or a patient's data.
    errors = [
        {
            "loc": [str(part) for part in e.get("loc", ())],
            "msg": str(e.get("msg", "")),
            "type": str(e.get("type", "")),
        }
        for e in exc.errors()
    ]
    summary = "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in errors[:5]) or "invalid request"
    return error_response(request, 422, "validation_error", summary, errors=errors[:20])


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
    detail = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    return error_response(request, exc.status_code, code, detail, headers=dict(exc.headers or {}))


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    route = getattr(request.scope.get("route"), "path", "?")
    log.error(
        "unhandled %s in %s %s (request %s)",
        type(exc).__name__,
        request.method,
        route,
        request_id_of(request),
        exc_info=exc,
    )
    return error_response(
        request, 500, "internal_error", "an internal error occurred; quote the request id to the operator"
    )


# The database went away (restart, failover, network): nothing was committed (each record and its
# audit event share one transaction), so the caller may retry; the pool reconnects by itself.
DATABASE_DOWN = (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError)
DATABASE_RETRY_SECONDS = 5


async def _database_down(request: Request, exc: Exception) -> JSONResponse:
    log.error("database unavailable: %s", type(getattr(exc, "orig", None) or exc).__name__)
    return error_response(
        request,
        503,
        "database_unavailable",
        "the database cannot be reached; nothing was recorded, retry shortly",
        headers={"Retry-After": str(DATABASE_RETRY_SECONDS)},
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(CXRError, _cxr_error)
    for kind in DATABASE_DOWN:
        app.add_exception_handler(kind, _database_down)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
