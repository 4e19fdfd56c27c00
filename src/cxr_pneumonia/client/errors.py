"""The service's error bodies as the project's exceptions (errors.py), carrying the server's code.

A caller handles a refused image from the client exactly as from a local Predictor: ``RejectedImage``
with its ``reason``; unreadable input is an ``InputError`` (``TooLarge`` for 413); a missing model is a
``ModelError``. Every one also carries ``http_status`` and the server's ``request_id``.
"""

from __future__ import annotations

from typing import Any

import httpx

from ..errors import CXRError, InputError, ModelError, RejectedImage, TooLarge


class ApiError(CXRError):
    """Any other error answer of the service (404 not_found, 409, 422 validation_error, 5xx)."""

    def __init__(self, detail: str, code: str, http_status: int) -> None:
        super().__init__(detail, code=code)
        self.http_status = http_status


class AuthError(ApiError):
    """401 (no, bad or expired credentials) or 403 (the role may not do this)."""


class ServerUnavailable(ApiError):
    """The service could not be reached, or kept answering 429/502/503/504, after every retry."""


def error_from_body(status: int, body: dict[str, Any]) -> CXRError:
    """The project exception for one error body ``{"error", "detail", "request_id", "reason"?}``."""
    code = str(body.get("error") or f"http_{status}")
    detail = str(body.get("detail") or code)
    exc: CXRError
    if code == "rejected" and body.get("reason"):
        exc = RejectedImage(detail, reason=str(body["reason"]))
    elif status == 413:
        exc = TooLarge(detail, code=code)
    elif status in (401, 403):
        exc = AuthError(detail, code, status)
    elif status == 400:
        exc = InputError(detail, code=code)
    elif code == "model_error":
        exc = ModelError(detail)
    else:
        exc = ApiError(detail, code, status)
    exc.http_status = status
    setattr(exc, "request_id", body.get("request_id"))  # noqa: B010 (any CXRError subclass)
    return exc


def error_from_response(response: httpx.Response) -> CXRError:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        body = {
            "error": f"http_{response.status_code}",
            "detail": response.text[:200] or response.reason_phrase,
        }
    return error_from_body(response.status_code, body)
