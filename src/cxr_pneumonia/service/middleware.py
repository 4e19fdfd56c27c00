"""Pure-ASGI middleware: request id, metrics and security headers on every response; body size caps."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable

from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import logs
from . import metrics
from .errors import BodyTooLarge, error_response

access = logging.getLogger("cxr_pneumonia.service.access")
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{8,64}$")
# The web page is ours and loads nothing from elsewhere; /docs (Swagger UI) is left to FastAPI's defaults.
WEB_CSP = (
    "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
HSTS = "max-age=31536000; includeSubDomains"
_DOC_PATHS = ("/docs", "/redoc", "/openapi.json")


def route_label(scope: Scope, status: int) -> str:
    """The route template (bounded cardinality), never the raw path.

    FastAPI keeps an included router's routes with paths relative to the include prefix, so the full
    template is rebuilt: the request path minus the rendered relative path, plus the relative template.
    """
    route = scope.get("route")
    template = getattr(route, "path_format", None)
    if not isinstance(template, str):
        return "<unmatched>" if status == 404 else "<static>"
    path: str = scope["path"]
    try:
        rendered = template.format(**scope.get("path_params", {}))
    except (KeyError, IndexError, ValueError):
        return template
    return path[: len(path) - len(rendered)] + template if path.endswith(rendered) else template


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = Headers(scope=scope).get("x-request-id")
        request_id = incoming if incoming and _SAFE_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        path: str = scope["path"]
        status = 500  # what the client gets if the app raises before responding
        started = time.perf_counter()

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = MutableHeaders(scope=message)
                headers["X-Request-ID"] = request_id
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Referrer-Policy", "no-referrer")
                headers.setdefault("X-Frame-Options", "DENY")
                if scope.get("scheme") == "https":  # served over TLS: browsers must not fall back to http
                    headers.setdefault("Strict-Transport-Security", HSTS)
                if path.startswith("/api/"):
                    headers.setdefault("Cache-Control", "no-store")
                elif not path.startswith(_DOC_PATHS):
                    headers.setdefault("Content-Security-Policy", WEB_CSP)
            await send(message)

        metrics.IN_FLIGHT.inc()
        context = logs.REQUEST_ID.set(request_id)
        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            metrics.IN_FLIGHT.dec()
            label, method = route_label(scope, status), scope["method"]
            elapsed = time.perf_counter() - started
            metrics.HTTP_REQUESTS.labels(label, method, str(status)).inc()
            metrics.HTTP_LATENCY.labels(label, method).observe(elapsed)
            _access_line(scope, label, method, status, elapsed)
            logs.REQUEST_ID.reset(context)


def _access_line(scope: Scope, route: str, method: str, status: int, elapsed: float) -> None:
    """One line a request: the route template (never the raw path or query), status and time."""
    state = getattr(getattr(scope.get("app"), "state", None), "cxr", None)
    predictor = getattr(state, "predictor", None)
    duration_ms = round(elapsed * 1000, 1)
    access.info(
        "%s %s %d %.1f ms",
        method,
        route,
        status,
        duration_ms,
        extra={
            "route": route,
            "method": method,
            "status": status,
            "duration_ms": duration_ms,
            "model_version": predictor.model_ref.version if predictor is not None else None,
        },
    )


class BodyLimitMiddleware:
    """Caps request bodies per path. A declared Content-Length over the cap is answered 413 before a byte
    is read; a body without one (chunked) is counted as it streams and cut off at the cap.

    Starlette's RequestBodyLimitMiddleware answers in plain text with one cap for all paths; this keeps
    the JSON error body and lets uploads, batches and JSON bodies have their own caps.
    """

    def __init__(self, app: ASGIApp, limit_for: Callable[[str], int]) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            response = error_response(
                Request(scope),
                413,
                "too_large",
                f"the request body has {declared} bytes; the limit is {limit}",
            )
            await response(scope, receive, send)
            return
        received = 0

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(
            scope, receive if declared is not None and declared.isdigit() else counted_receive, send
        )
