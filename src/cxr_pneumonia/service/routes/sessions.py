"""Refresh (rotate the refresh token, get a new access token) and sign out (end the family)."""

from __future__ import annotations

from fastapi import APIRouter

from ...store import refresh
from ...store.db.models import User
from ..deps import ContextDep, StateDep
from ..exceptions import Unauthorized
from ..schemas.accounts import TokenOut
from ..schemas.common import responses
from ..schemas.security import RefreshIn
from ..signin import refresh_lifetime, token_out

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post("/refresh", response_model=TokenOut, responses=responses(400, 401, 422, 429))
def refresh_tokens(ctx: ContextDep, state: StateDep, body: RefreshIn) -> TokenOut:
    state.limiter.hit(state.limiter.anonymous, "anonymous", ctx.client_key)
    with state.store.transaction() as session:
        result = refresh.rotate(session, body.refresh_token, refresh_lifetime(state))
        user = session.get(User, result.user_id) if result.user_id is not None else None
        active = user is not None and user.active
        if isinstance(result, refresh.Refreshed) and not active:
            refresh.revoke_family(session, result.family)
        username = user.username if user else None
    ok = isinstance(result, refresh.Refreshed) and active
    state.store.audit(
        "refresh",
        actor=f"user:{username}" if username else "anonymous",
        outcome="ok" if ok else "denied",
        client=ctx.client,
        request_id=ctx.request_id,
        detail={"reason": result.reason} if isinstance(result, refresh.Refused) else {},
    )
    if not ok or not isinstance(result, refresh.Refreshed) or username is None:
        raise Unauthorized("the refresh token is invalid, expired, used or revoked: sign in again")
    return token_out(state, result.user_id, username, result, None)


@router.post("/logout", status_code=204, responses=responses(400, 401, 422))
def logout(ctx: ContextDep, state: StateDep, body: RefreshIn) -> None:
    """Sign out: the refresh token's family is revoked, and with it every access token it issued."""
    with state.store.transaction() as session:
        family = refresh.sign_out(session, body.refresh_token)
    state.store.audit(
        "logout",
        actor="anonymous" if family is None else "session",
        outcome="ok" if family else "denied",
        client=ctx.client,
        request_id=ctx.request_id,
        detail={"family": family[:8]} if family else {},
    )
    if family is None:
        raise Unauthorized("not a refresh token of ours")
