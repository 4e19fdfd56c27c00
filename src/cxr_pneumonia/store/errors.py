"""The store's own errors (CXRError subclasses, so every door maps them to the same body and status)."""

from __future__ import annotations

from ..errors import CXRError


class NotFound(CXRError):
    code = "not_found"
    http_status = 404


class Conflict(CXRError):
    code = "conflict"
    http_status = 409


class AccountError(CXRError):
    code = "account_error"
    http_status = 400
