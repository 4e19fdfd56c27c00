"""What `cxr serve` prints on a first start: the admin login created for it, and where to use it."""

from __future__ import annotations

from ..store.bootstrap import FirstLogin


def banner(login: FirstLogin, url: str) -> str:
    rule = "=" * 72
    return "\n".join(
        [
            rule,
            "CXR Pneumonia Detector: first start. No users existed, so an administrator was created.",
            f"    username: {login.username}",
            f"    password: {login.password}",
            "This password is shown ONCE and is not stored anywhere readable. It only allows setting a",
            f"new password (on {url}/ or POST {url}/api/v1/auth/password). The admin cannot predict: create",
            "a clinician to read radiographs: `cxr users create NAME --role clinician` (or an API key).",
            f"Log in: POST {url}/api/v1/auth/token (form fields username, password), or open {url}/",
            rule,
        ]
    )
