"""``Annotated[..., Depends()]`` aliases the routes declare (after FastAPI's full-stack template)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, OAuth2PasswordBearer
from sqlalchemy.orm import Session

from ..config import Settings
from ..inference import Predictor
from ..store import accounts
from ..store.facade import Store
from ..store.security import apikeys
from ..store.security.principal import Principal
from ..store.security.roles import Permission
from .exceptions import AmbiguousCredentials, Forbidden, Unauthorized
from .security.restrictions import check_restriction, session_principal
from .state import ServiceState
from .strict import only_form_fields as only_form_fields  # the routes' form rule (strict.py)

API_PREFIX = "/api/v1"

oauth2_scheme = OAuth2PasswordBearer(tokenUrl=f"{API_PREFIX}/auth/token", auto_error=False)
api_key_scheme = APIKeyHeader(name="X-API-Key", auto_error=False, description="an API key from POST /keys")


def get_state(request: Request) -> ServiceState:
    state: ServiceState = request.app.state.cxr
    return state


StateDep = Annotated[ServiceState, Depends(get_state)]


def get_settings(state: StateDep) -> Settings:
    return state.settings


def get_store(state: StateDep) -> Store:
    return state.store


SettingsDep = Annotated[Settings, Depends(get_settings)]
StoreDep = Annotated[Store, Depends(get_store)]


def get_session(store: StoreDep) -> Iterator[Session]:
    """A read-only session (writes go through Store methods or ``store.transaction()``). Routes end
    its transaction with :func:`audit_read` before writing their audit event, so that a request never
    holds two pooled connections at once (40 worker threads could otherwise drain the pool)."""
    with store.reading() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def get_predictor(state: StateDep) -> Predictor:
    return state.require_predictor()


PredictorDep = Annotated[Predictor, Depends(get_predictor)]


@dataclass(frozen=True)
class RequestContext:
    """Who is on the other end of the socket and which request this is (for audit events and limits)."""

    request_id: str | None
    client: str | None
    route: str

    @property
    def client_key(self) -> str:
        return self.client or "unknown"


def get_context(request: Request) -> RequestContext:
    route = request.scope.get("route")
    return RequestContext(
        request_id=getattr(request.state, "request_id", None),
        client=request.client.host if request.client else None,
        route=f"{request.method} {getattr(route, 'path', request.url.path)}",
    )


ContextDep = Annotated[RequestContext, Depends(get_context)]
TokenDep = Annotated[str | None, Depends(oauth2_scheme)]
ApiKeyDep = Annotated[str | None, Depends(api_key_scheme)]


def audit_read(
    session: Session,
    state: ServiceState,
    ctx: RequestContext,
    principal: Principal,
    action: str,
    detail: dict[str, Any] | None = None,
) -> None:
    """Record that ``principal`` read records. Ends the read session's transaction first (returning
    its connection; loaded objects stay usable), then commits the event."""
    session.commit()
    state.store.audit(
        action,
        actor=principal.actor,
        outcome="ok",
        client=ctx.client,
        request_id=ctx.request_id,
        detail=detail,
    )


def resolve_principal(
    state: ServiceState, ctx: RequestContext, token: str | None, api_key: str | None
) -> Principal:
    """Authenticate the request's one credential and count it against the rate limits; failures
    count against the client address's anonymous limit. Two credentials are refused (strict.py)."""
    limiter = state.limiter
    if token and api_key:
        limiter.hit(limiter.anonymous, "anonymous", ctx.client_key)
        raise AmbiguousCredentials("send one credential: an X-API-Key or a Bearer token, not both")
    if not token and not api_key:
        limiter.hit(limiter.anonymous, "anonymous", ctx.client_key)
        raise Unauthorized(
            "a credential is required: a bearer token from POST /api/v1/auth/token or an X-API-Key"
        )
    with state.store.reading() as session:
        if api_key:
            principal = accounts.key_principal(session, api_key)
        else:
            claims = state.tokens.verify(token or "")
            principal = session_principal(session, claims) if claims else None
    if principal is None:
        limiter.hit(limiter.anonymous, "anonymous", ctx.client_key)
        parsed = apikeys.parse(api_key) if api_key else None
        state.store.audit(
            "authenticate",
            actor="anonymous",
            outcome="denied",
            client=ctx.client,
            request_id=ctx.request_id,
            detail={
                "method": "api_key" if api_key else "bearer",
                "route": ctx.route,
                "key_id": parsed[0] if parsed else None,
            },
        )
        raise Unauthorized("the credential is invalid, expired, revoked or disabled")
    limiter.hit(limiter.client, "client", ctx.client_key)
    limiter.hit(limiter.credential, "credential", principal.rate_key)
    check_restriction(principal, ctx.route)
    return principal


def current_principal(state: StateDep, ctx: ContextDep, token: TokenDep, api_key: ApiKeyDep) -> Principal:
    return resolve_principal(state, ctx, token, api_key)


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def deny(state: ServiceState, ctx: RequestContext, principal: Principal, permission: Permission) -> Forbidden:
    state.store.audit(
        "authorize",
        actor=principal.actor,
        outcome="denied",
        client=ctx.client,
        request_id=ctx.request_id,
        detail={"permission": permission.value, "route": ctx.route, "role": principal.role.value},
    )
    return Forbidden(f"the role {principal.role.value!r} does not have the {permission.value!r} permission")


def require(permission: Permission) -> Callable[..., Principal]:
    def check(principal: CurrentPrincipal, state: StateDep, ctx: ContextDep) -> Principal:
        if not principal.can(permission):
            raise deny(state, ctx, principal, permission)
        return principal

    check.__name__ = f"require_{permission.value}"
    return check


CanPredict = Annotated[Principal, Depends(require(Permission.PREDICT))]
CanReadHistory = Annotated[Principal, Depends(require(Permission.READ_HISTORY))]
CanReview = Annotated[Principal, Depends(require(Permission.REVIEW))]
CanReadAudit = Annotated[Principal, Depends(require(Permission.READ_AUDIT))]
CanManage = Annotated[Principal, Depends(require(Permission.MANAGE))]
CanReadModel = Annotated[Principal, Depends(require(Permission.READ_MODEL))]


def metrics_access(state: StateDep, ctx: ContextDep, token: TokenDep, api_key: ApiKeyDep) -> None:
    """Metrics are public unless CXR_METRICS_PUBLIC=false; then admin or auditor credentials."""
    if state.settings.metrics_public:
        return
    principal = resolve_principal(state, ctx, token, api_key)
    if not principal.can(Permission.READ_METRICS):
        raise deny(state, ctx, principal, Permission.READ_METRICS)


MetricsAccess = Annotated[None, Depends(metrics_access)]
