"""The second factor in the store: enrol a TOTP secret, confirm it, check a code (each code once),
recovery codes used once; and the one-time first password that only allows setting a new one."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from .crypto import ImageCipher
from .db.base import utcnow
from .db.models import OneTimePassword, RecoveryCode, TotpSecret, User
from .errors import Conflict
from .security import totp

# What a token of a user signed in with only a password may do, when not everything (see the service's
# security/restrictions.py): replace a one-time password, or enrol a second factor the role requires.
# bandit B105 accepted: the name of a restriction, not a password.
PASSWORD_CHANGE = "password_change"  # nosec B105
MFA_ENROLMENT = "mfa_enrolment"
MFA_ROLES = ("admin", "auditor")  # the roles CXR_MFA_REQUIRED applies to


@dataclass(frozen=True)
class Gate:
    """What a correct password leads to: ``passed`` (with how: ``method``) or the ``reason`` it did
    not (mfa_required, mfa_invalid), and the restriction of the token to issue."""

    passed: bool
    method: str
    reason: str | None = None
    restriction: str | None = None


@dataclass(frozen=True)
class Enrolment:
    secret: str
    uri: str


def _associated(user_id: int) -> bytes:
    return f"cxr-totp:{user_id}".encode()  # binds the sealed seed to its user's row


def enrolled(session: Session, user_id: int) -> bool:
    row = session.get(TotpSecret, user_id)
    return row is not None and row.confirmed_at is not None


def begin(session: Session, cipher: ImageCipher, user: User) -> Enrolment:
    """A new, unconfirmed secret (replacing an unconfirmed one); refused once one is confirmed."""
    row = session.get(TotpSecret, user.id)
    if row is not None and row.confirmed_at is not None:
        raise Conflict(
            "a second factor is enrolled already; an administrator can reset it", code="mfa_enrolled"
        )
    secret = totp.new_secret()
    nonce, ciphertext = cipher.seal(secret.encode(), _associated(user.id))
    if row is None:
        row = TotpSecret(user_id=user.id, created_at=utcnow(), last_step=0)
        session.add(row)
    row.key_id, row.nonce, row.ciphertext, row.created_at = cipher.key_id, nonce, ciphertext, utcnow()
    session.flush()
    return Enrolment(secret, totp.provisioning_uri(secret, user.username))


def _secret(cipher: ImageCipher, row: TotpSecret) -> str:
    return cipher.open(row.nonce, row.ciphertext, _associated(row.user_id), row.key_id).decode()


def _accept_code(session: Session, cipher: ImageCipher, row: TotpSecret, code: str) -> bool:
    step = totp.matching_step(_secret(cipher, row), code, row.last_step)
    if step is None:
        return False
    # Compare-and-set: of two requests carrying the same code at once, one wins.
    moved = session.execute(
        update(TotpSecret)
        .where(TotpSecret.user_id == row.user_id, TotpSecret.last_step < step)
        .values(last_step=step)
    )
    return bool(moved.rowcount == 1)  # type: ignore[attr-defined]


def confirm(session: Session, cipher: ImageCipher, user_id: int, code: str) -> list[str] | None:
    """Confirm the enrolment with a first code; returns the recovery codes (shown once), or None."""
    row = session.get(TotpSecret, user_id)
    if row is None:
        raise Conflict("start an enrolment first (POST /api/v1/auth/mfa/totp)", code="mfa_not_started")
    if row.confirmed_at is not None:
        raise Conflict("the second factor is confirmed already", code="mfa_enrolled")
    if not _accept_code(session, cipher, row, code):
        return None
    row.confirmed_at = utcnow()
    session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
    codes = totp.new_recovery_codes()
    session.add_all(RecoveryCode(user_id=user_id, code_sha256=totp.recovery_hash(c)) for c in codes)
    session.flush()
    return codes


def check(session: Session, cipher: ImageCipher, user_id: int, code: str) -> str | None:
    """How ``code`` passed (``totp`` or ``recovery_code``), or None. Either is good once."""
    row = session.get(TotpSecret, user_id)
    if row is None or row.confirmed_at is None:
        return None
    if totp.looks_like_recovery_code(code):
        used = session.execute(
            update(RecoveryCode)
            .where(
                RecoveryCode.user_id == user_id,
                RecoveryCode.code_sha256 == totp.recovery_hash(code),
                RecoveryCode.used_at.is_(None),
            )
            .values(used_at=utcnow())
        )
        return "recovery_code" if used.rowcount == 1 else None  # type: ignore[attr-defined]
    return "totp" if _accept_code(session, cipher, row, code) else None


def remaining_recovery_codes(session: Session, user_id: int) -> int:
    query = select(RecoveryCode.id).where(RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None))
    return len(session.scalars(query).all())


def reset(session: Session, user_id: int) -> None:
    """Forget the user's second factor (a lost phone and no recovery code: an administrator's act)."""
    session.execute(delete(TotpSecret).where(TotpSecret.user_id == user_id))
    session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))


def login_gate(
    session: Session, cipher: ImageCipher, user: User, code: str | None, *, required: bool
) -> Gate:
    """After the password: the second factor if enrolled (each code once), else maybe a restriction."""
    if enrolled(session, user.id):
        if not code:
            return Gate(False, "password", "mfa_required")
        method = check(session, cipher, user.id, code)
        if method is None:
            return Gate(False, "password", "mfa_invalid")
    else:
        method = "password"
    if is_one_time(session, user.id):
        return Gate(True, method, restriction=PASSWORD_CHANGE)
    if required and user.role in MFA_ROLES and method == "password":
        return Gate(True, method, restriction=MFA_ENROLMENT)
    return Gate(True, method)


# ---- the one-time first password ------------------------------------------------------------------
def mark_one_time(session: Session, user_id: int) -> None:
    session.merge(OneTimePassword(user_id=user_id, created_at=utcnow()))


def is_one_time(session: Session, user_id: int) -> bool:
    return session.get(OneTimePassword, user_id) is not None


def clear_one_time(session: Session, user_id: int) -> None:
    session.execute(delete(OneTimePassword).where(OneTimePassword.user_id == user_id))
