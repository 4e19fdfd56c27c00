"""The service's own errors (CXRError subclasses, so they share the stable body and status mapping)."""

from __future__ import annotations

from ..errors import CXRError


class Unauthorized(CXRError):
    code = "unauthorized"
    http_status = 401


class Forbidden(CXRError):
    code = "forbidden"
    http_status = 403


class NotFound(CXRError):
    code = "not_found"
    http_status = 404


class Conflict(CXRError):
    code = "conflict"
    http_status = 409


class AccountError(CXRError):
    code = "account_error"
    http_status = 400


class UnknownField(CXRError):
    code = "unknown_field"
    http_status = 422
