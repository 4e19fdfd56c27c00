"""Accounts and API keys (admin only). Every change is an audit event in the same transaction."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from sqlalchemy.orm import Session

from ...store import accounts
from ...store import audit as audit_chain
from ...store.security.passwords import generate_password
from ...store.security.principal import Principal
from ...store.security.roles import Role
from ..deps import CanManage, ContextDep, RequestContext, SessionDep, StateDep, audit_read
from ..schemas.accounts import KeyCreatedOut, KeyCreateIn, KeyOut, UserCreatedOut, UserCreateIn, UserOut
from ..schemas.common import AUTH, responses
from ..state import ServiceState
from ..views import key_out, user_out

router = APIRouter(tags=["admin"])
Username = Annotated[str, Path(pattern=accounts.USERNAME_PATTERN)]
KeyId = Annotated[str, Path(pattern=r"^[0-9a-f]{12}$")]


def _event(
    session: Session, ctx: RequestContext, principal: Principal, action: str, detail: dict[str, Any]
) -> None:
    audit_chain.append(
        session,
        action=action,
        actor=principal.actor,
        outcome="ok",
        client=ctx.client,
        request_id=ctx.request_id,
        detail=detail,
    )


@router.get("/users", response_model=list[UserOut], responses=responses(*AUTH))
def list_users(principal: CanManage, ctx: ContextDep, state: StateDep, session: SessionDep) -> list[UserOut]:
    users = [user_out(u) for u in accounts.list_users(session)]
    audit_read(session, state, ctx, principal, "list_users")
    return users


@router.post("/users", response_model=UserCreatedOut, status_code=201, responses=responses(400, 409, *AUTH))
def create_user(principal: CanManage, ctx: ContextDep, state: StateDep, body: UserCreateIn) -> UserCreatedOut:
    password = body.password or generate_password()
    with state.store.transaction() as session:
        user = accounts.create_user(
            session, body.username, Role(body.role), password, created_by=principal.actor
        )
        _event(session, ctx, principal, "create_user", {"username": user.username, "role": user.role})
        out = user_out(user)
    return UserCreatedOut(user=out, password=None if body.password else password)


def _set_active(
    principal: Principal, ctx: RequestContext, state: ServiceState, username: str, active: bool
) -> UserOut:
    with state.store.transaction() as session:
        user = accounts.set_active(session, username, active)
        _event(session, ctx, principal, "enable_user" if active else "disable_user", {"username": username})
        return user_out(user)


@router.post("/users/{username}/disable", response_model=UserOut, responses=responses(404, 409, *AUTH))
def disable_user(principal: CanManage, ctx: ContextDep, state: StateDep, username: Username) -> UserOut:
    """Takes effect at once: the user's tokens stop working on their next request."""
    return _set_active(principal, ctx, state, username, False)


@router.post("/users/{username}/enable", response_model=UserOut, responses=responses(404, *AUTH))
def enable_user(principal: CanManage, ctx: ContextDep, state: StateDep, username: Username) -> UserOut:
    return _set_active(principal, ctx, state, username, True)


@router.get("/keys", response_model=list[KeyOut], responses=responses(*AUTH))
def list_keys(principal: CanManage, ctx: ContextDep, state: StateDep, session: SessionDep) -> list[KeyOut]:
    keys = [key_out(k) for k in accounts.list_keys(session)]
    audit_read(session, state, ctx, principal, "list_keys")
    return keys


@router.post("/keys", response_model=KeyCreatedOut, status_code=201, responses=responses(400, *AUTH))
def create_key(principal: CanManage, ctx: ContextDep, state: StateDep, body: KeyCreateIn) -> KeyCreatedOut:
    with state.store.transaction() as session:
        row, token = accounts.create_key(session, body.name, Role(body.role), created_by=principal.actor)
        _event(session, ctx, principal, "create_key", {"key_id": row.id, "name": row.name, "role": row.role})
        out = key_out(row)
    return KeyCreatedOut(key=out, api_key=token)


@router.delete("/keys/{key_id}", response_model=KeyOut, responses=responses(404, *AUTH))
def revoke_key(principal: CanManage, ctx: ContextDep, state: StateDep, key_id: KeyId) -> KeyOut:
    with state.store.transaction() as session:
        row = accounts.revoke_key(session, key_id, revoked_by=principal.actor)
        _event(session, ctx, principal, "revoke_key", {"key_id": key_id})
        return key_out(row)
