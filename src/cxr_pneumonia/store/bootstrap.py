"""First start: a database without users gets an admin with a random password, shown once."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError

from . import accounts, mfa
from . import audit as audit_chain
from .facade import Store
from .security.passwords import generate_password
from .security.roles import Role

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
            admin = accounts.create_user(session, ADMIN_USERNAME, Role.ADMIN, password, created_by=actor)
            mfa.mark_one_time(session, admin.id)  # it was printed: it only allows setting a new one
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
