"""After a correct password: the second factor, then an access token (restricted or not) and, for a
full sign-in, a refresh token that starts a new family; refreshing rotates it, signing out ends it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from ..store import mfa, refresh
from ..store.db.models import User
from .exceptions import Unauthorized
from .schemas.accounts import TokenOut
from .state import ServiceState

_WHY = {
    "mfa_required": "this account has a second factor: send its current code (or a recovery code) as otp",
    "mfa_invalid": "the second-factor code is wrong or was used already",
}


@dataclass(frozen=True)
class SignIn:
    state: ServiceState
    user: User
    gate: mfa.Gate
    issued: refresh.Refreshed | None

    @property
    def detail(self) -> dict[str, Any]:
        if not self.gate.passed:
            return {"reason": self.gate.reason}
        return {"second_factor": self.gate.method, "restriction": self.gate.restriction}

    def answer(self) -> TokenOut:
        if not self.gate.passed:
            raise Unauthorized(_WHY[self.gate.reason or "mfa_invalid"], code=self.gate.reason)
        return token_out(self.state, self.user.id, self.user.username, self.issued, self.gate.restriction)


def refresh_lifetime(state: ServiceState) -> timedelta:
    return timedelta(hours=state.settings.refresh_hours)


def sign_in(state: ServiceState, user: User, otp: str | None) -> SignIn:
    with state.store.transaction() as session:
        gate = mfa.login_gate(session, state.store.cipher, user, otp, required=state.settings.mfa_required)
        full = gate.passed and gate.restriction is None
        issued = refresh.issue(session, user.id, refresh_lifetime(state)) if full else None
    return SignIn(state, user, gate, issued)


def token_out(
    state: ServiceState,
    user_id: int,
    username: str,
    issued: refresh.Refreshed | None,
    restriction: str | None,
) -> TokenOut:
    token = state.tokens.issue(
        user_id, username, restriction=restriction, family=issued.family if issued else None
    )
    return TokenOut(
        access_token=token,
        expires_in=int(state.tokens.lifetime.total_seconds()),
        refresh_token=issued.token if issued else None,
        restriction=restriction,
    )
