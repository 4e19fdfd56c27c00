"""First start: a database without users gets an admin with a random password, shown once."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError

from . import accounts
from . import audit as audit_chain
from .security.passwords import generate_password
from .security.roles import Role
from .store import Store

ADMIN_USERNAME = "admin"


@dataclass(frozen=True)
class FirstLogin:
    username: str
    password: str


def ensure_admin(store: Store, actor: str) -> FirstLogin | None:
    """Create the first admin if there are no users at all; return its login, else None."""
    password = generate_password()
    try:
        with store.transaction() as session:
            if accounts.count_users(session) > 0:
                return None
            accounts.create_user(session, ADMIN_USERNAME, Role.ADMIN, password, created_by=actor)
            audit_chain.append(
                session,
                action="create_user",
                actor=actor,
                outcome="ok",
                detail={"username": ADMIN_USERNAME, "role": Role.ADMIN.value, "first_start": True},
            )
    except IntegrityError:  # another replica starting at the same moment created it first
        return None
    return FirstLogin(ADMIN_USERNAME, password)


def banner(login: FirstLogin, url: str) -> str:
    rule = "=" * 72
    return "\n".join(
        [
            rule,
            "CXR Pneumonia Detector: first start. No users existed, so an administrator was created.",
            f"    username: {login.username}",
            f"    password: {login.password}",
            "This password is shown ONCE and is not stored anywhere readable: keep it now, then change it",
            f"(POST {url}/api/v1/auth/password) and create personal accounts (`cxr users create`).",
            f"Log in: POST {url}/api/v1/auth/token (form fields username, password), or open {url}/",
            rule,
        ]
    )
