"""Login (OAuth2 password flow -> short-lived JWT), who am I, change my password."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form
from fastapi.security import OAuth2PasswordRequestForm

from ...store import accounts, mfa
from ...store import audit as audit_chain
from ...store.errors import AccountError
from ...store.security import passwords
from ...store.security.roles import ROLE_PERMISSIONS
from ..deps import ContextDep, CurrentPrincipal, StateDep, only_form_fields
from ..exceptions import Unauthorized
from ..schemas.accounts import MeOut, PasswordChangeIn, TokenOut
from ..schemas.common import AUTH, responses
from ..signin import sign_in

router = APIRouter(prefix="/auth", tags=["auth"])
_OAUTH_FIELDS = ("grant_type", "username", "password", "scope", "client_id", "client_secret", "otp")


@router.post("/token", response_model=TokenOut, responses=responses(400, 401, 422, 429))
def login(
    ctx: ContextDep,
    state: StateDep,
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    _fields: Annotated[None, Depends(only_form_fields(*_OAUTH_FIELDS))],
    otp: Annotated[
        str | None, Form(max_length=32, description="TOTP or recovery code, once enrolled")
    ] = None,
) -> TokenOut:
    # Per account and per (account, address), with back-off: not per address (login_throttle.py).
    state.login_throttle.before(form.username, ctx)
    with state.store.reading() as session:  # argon2 runs here, outside any write lock
        user = accounts.check_login(session, form.username, form.password)
        known = user is not None or accounts.user_exists(session, form.username)
    if user is not None and passwords.needs_rehash(user.password_hash):
        with state.store.transaction() as session:  # hashing parameters changed since it was set
            accounts.set_password(session, user.id, form.password)
    signed = sign_in(state, user, otp) if user is not None else None  # the second factor, if enrolled
    state.store.audit(
        "login",
        actor=f"user:{form.username}" if known else "anonymous",
        outcome="ok" if signed and signed.gate.passed else "denied",
        client=ctx.client,
        request_id=ctx.request_id,
        detail=signed.detail
        if signed
        else {"reason": "wrong password or disabled" if known else "unknown user"},
    )
    if signed is None:
        state.login_throttle.failed(form.username, ctx)
        raise Unauthorized("wrong username or password, or the account is disabled")
    if signed.gate.passed:
        state.login_throttle.succeeded(form.username, ctx)
    else:  # a wrong or replayed second factor counts against the account like a wrong password
        state.login_throttle.failed(form.username, ctx)
    return signed.answer()


@router.get("/me", response_model=MeOut, responses=responses(*AUTH))
def me(principal: CurrentPrincipal) -> MeOut:
    permissions = sorted(p.value for p in ROLE_PERMISSIONS[principal.role])
    return MeOut(
        kind=principal.kind,
        id=principal.id,
        name=principal.name,
        role=principal.role.value,
        permissions=permissions,
    )


@router.post("/password", status_code=204, responses=responses(400, *AUTH))
def change_password(
    principal: CurrentPrincipal, ctx: ContextDep, state: StateDep, body: PasswordChangeIn
) -> None:
    if principal.kind != "user":
        raise AccountError("API keys have no password; revoke the key and create another")
    with state.store.reading() as session:
        user = accounts.check_login(session, principal.name, body.current_password)
    if user is not None:
        with state.store.transaction() as session:
            accounts.set_password(session, user.id, body.new_password)
            mfa.clear_one_time(session, user.id)  # a password of their own: the token restriction ends
            audit_chain.append(
                session,
                action="change_password",
                actor=principal.actor,
                outcome="ok",
                client=ctx.client,
                request_id=ctx.request_id,
            )
        return
    state.store.audit(
        "change_password",
        actor=principal.actor,
        outcome="denied",
        client=ctx.client,
        request_id=ctx.request_id,
    )
    raise AccountError("the current password is wrong", code="wrong_password")
