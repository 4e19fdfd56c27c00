"""TOTP (RFC 6238: SHA-1, 6 digits, 30-second steps, what every authenticator app reads) and the
one-time recovery codes that stand in for a lost phone."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

import pyotp

ISSUER = "CXR Pneumonia Detector"
STEP_SECONDS = 30
DRIFT_STEPS = 1  # a code of the previous or next step is accepted too (clock drift, typing time)
RECOVERY_CODES = 10
_RECOVERY_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: codes are read off paper


def new_secret() -> str:
    return pyotp.random_base32(32)  # 160 bits, RFC 4226's recommended seed length


def provisioning_uri(secret: str, username: str) -> str:
    """The otpauth:// URI an authenticator app enrols from (shown as a QR code)."""
    return pyotp.TOTP(secret, interval=STEP_SECONDS).provisioning_uri(name=username, issuer_name=ISSUER)


def current_step(now: float | None = None) -> int:
    return int((time.time() if now is None else now) // STEP_SECONDS)


def matching_step(secret: str, code: str, after_step: int, now: float | None = None) -> int | None:
    """The time step whose code ``code`` is, if it is within the drift window and newer than
    ``after_step`` (the last one accepted: a code is good once); else None."""
    code = code.strip().replace(" ", "")
    if len(code) != 6 or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret, interval=STEP_SECONDS)
    step = current_step(now)
    for candidate in range(step - DRIFT_STEPS, step + DRIFT_STEPS + 1):
        if candidate > after_step and hmac.compare_digest(totp.generate_otp(candidate), code):
            return candidate
    return None


def new_recovery_codes() -> list[str]:
    """Ten codes of 16 characters (80 bits) in groups of four, e.g. ``K7QM-2XPA-...``."""
    codes = []
    for _ in range(RECOVERY_CODES):
        raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(16))
        codes.append("-".join(raw[i : i + 4] for i in range(0, 16, 4)))
    return codes


def recovery_hash(code: str) -> str:
    normalised = code.strip().upper().replace("-", "").replace(" ", "")
    return hashlib.sha256(b"cxr-recovery:" + normalised.encode()).hexdigest()


def looks_like_recovery_code(code: str) -> bool:
    return len(code.strip().replace("-", "").replace(" ", "")) == 16
