"""One exception hierarchy for the whole package.

Every error a user can cause carries a stable machine-readable ``code`` (the API returns it as
``{"error": code, ...}``) and a human ``detail``. Nothing else should escape a public entry point.
"""

from __future__ import annotations


class CXRError(Exception):
    """Base of every error this package raises on purpose."""

    code: str = "error"
    http_status: int = 400

    def __init__(self, detail: str, code: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return f"{self.code}: {self.detail}"


class InputError(CXRError):
    """The input cannot be read: unsupported, corrupt, empty, too large, ..."""

    code = "invalid_input"
    http_status = 400


class TooLarge(InputError):
    code = "too_large"
    http_status = 413


class RejectedImage(CXRError):
    """A valid image that is not something the model may read (not a frontal chest X-ray, ...)."""

    code = "rejected"
    http_status = 422

    def __init__(self, detail: str, reason: str) -> None:
        super().__init__(detail, code="rejected")
        self.reason = reason

    def __str__(self) -> str:
        return f"rejected ({self.reason}): {self.detail}"


class ModelError(CXRError):
    """A model package is missing, corrupt, or cannot be honoured."""

    code = "model_error"
    http_status = 503


class DataError(CXRError):
    """A dataset folder or CSV cannot be catalogued."""

    code = "data_error"
