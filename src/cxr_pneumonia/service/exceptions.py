"""The HTTP door's own errors (CXRError subclasses, so they share the stable body and status mapping).

What the store refuses (not found, conflict, a bad account) is in :mod:`cxr_pneumonia.store.errors`.
"""

from __future__ import annotations

from ..errors import CXRError


class Unauthorized(CXRError):
    code = "unauthorized"
    http_status = 401


class Forbidden(CXRError):
    code = "forbidden"
    http_status = 403


class UnknownField(CXRError):
    code = "unknown_field"
    http_status = 422


class UnknownParameter(CXRError):
    code = "unknown_parameter"
    http_status = 422


class DuplicateField(CXRError):
    code = "duplicate_field"
    http_status = 422


class AmbiguousCredentials(CXRError):
    code = "ambiguous_credentials"
    http_status = 400
