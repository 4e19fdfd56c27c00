"""What a restricted user token may do: only what leads out of its state (a one-time password to
replace, a required second factor to enrol), plus who-am-I and sign-out."""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy.orm import Session

from ...store import accounts, refresh
from ...store.mfa import MFA_ENROLMENT, PASSWORD_CHANGE
from ...store.security.principal import Principal
from ..exceptions import Forbidden
from .tokens import TokenClaims

API_PREFIX = "/api/v1"  # deps.API_PREFIX (deps imports this module)
# Route templates under /api/v1 (FastAPI names an included route by its path below the prefix).
_ALWAYS = ("GET /auth/me", "POST /auth/logout")
ALLOWED = {
    PASSWORD_CHANGE: {*_ALWAYS, "POST /auth/password"},
    MFA_ENROLMENT: {*_ALWAYS, "GET /auth/mfa", "POST /auth/mfa/totp", "POST /auth/mfa/totp/confirm"},
}
_WHY = {
    PASSWORD_CHANGE: "this password was shown once: set a new one first (POST /api/v1/auth/password)",
    MFA_ENROLMENT: "your role requires a second factor: enrol one first (POST /api/v1/auth/mfa/totp)",
}


class RestrictedToken(Forbidden):
    code = "restricted_token"


def session_principal(session: Session, claims: TokenClaims) -> Principal | None:
    """The token's user, if still active and its sign-in (refresh family) not ended."""
    principal = accounts.user_principal(session, claims.user_id, claims.username)
    if principal is None or (claims.family and refresh.family_revoked(session, claims.family)):
        return None
    return replace(principal, restriction=claims.restriction) if claims.restriction else principal


def check_restriction(principal: Principal, route: str) -> None:
    if principal.restriction is None:
        return
    method, _, path = route.partition(" ")
    if f"{method} {path.removeprefix(API_PREFIX)}" not in ALLOWED.get(principal.restriction, ()):
        raise RestrictedToken(
            _WHY.get(principal.restriction, "this token is restricted"),
            code=principal.restriction + "_required",
        )
