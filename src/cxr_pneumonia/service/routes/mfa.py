"""The second factor: enrol TOTP (QR code and otpauth:// URI), confirm it, see what is left."""

from __future__ import annotations

import segno
from fastapi import APIRouter

from ...store import accounts, mfa
from ...store.errors import AccountError
from ...store.security.principal import Principal
from ..deps import ContextDep, CurrentPrincipal, StateDep
from ..schemas.common import AUTH, responses
from ..schemas.security import MfaStatusOut, RecoveryCodesOut, TotpConfirmIn, TotpEnrolmentOut
from ..state import ServiceState

router = APIRouter(prefix="/auth/mfa", tags=["auth"])


def _user_id(principal: Principal) -> int:
    if principal.kind != "user":
        raise AccountError("API keys have no second factor; they are revoked and replaced instead")
    return int(principal.id)


def _audit(state: ServiceState, ctx: ContextDep, principal: Principal, action: str, outcome: str) -> None:
    state.store.audit(
        action, actor=principal.actor, outcome=outcome, client=ctx.client, request_id=ctx.request_id
    )


@router.get("", response_model=MfaStatusOut, responses=responses(400, *AUTH))
def status(principal: CurrentPrincipal, state: StateDep) -> MfaStatusOut:
    user_id = _user_id(principal)
    with state.store.reading() as session:
        return MfaStatusOut(
            enrolled=mfa.enrolled(session, user_id),
            required=state.settings.mfa_required and principal.role.value in mfa.MFA_ROLES,
            recovery_codes_left=mfa.remaining_recovery_codes(session, user_id),
        )


@router.post("/totp", status_code=201, response_model=TotpEnrolmentOut, responses=responses(400, 409, *AUTH))
def enrol(principal: CurrentPrincipal, ctx: ContextDep, state: StateDep) -> TotpEnrolmentOut:
    _user_id(principal)
    with state.store.transaction() as session:
        user = accounts.get_user(session, principal.name)
        started = mfa.begin(session, state.store.cipher, user)
    _audit(state, ctx, principal, "mfa_enrol", "started")
    qr = segno.make(started.uri, error="m")
    return TotpEnrolmentOut(secret=started.secret, otpauth_uri=started.uri, qr_svg=qr.svg_data_uri(scale=5))


@router.post("/totp/confirm", response_model=RecoveryCodesOut, responses=responses(400, 409, *AUTH))
def confirm(
    principal: CurrentPrincipal, ctx: ContextDep, state: StateDep, body: TotpConfirmIn
) -> RecoveryCodesOut:
    user_id = _user_id(principal)
    with state.store.transaction() as session:
        codes = mfa.confirm(session, state.store.cipher, user_id, body.code)
    _audit(state, ctx, principal, "mfa_enrol", "ok" if codes else "denied")
    if codes is None:
        raise AccountError("the code is wrong or was used already; enter the next one", code="mfa_invalid")
    return RecoveryCodesOut(recovery_codes=codes)
