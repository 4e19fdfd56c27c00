"""Who is calling: a user (password login, JWT) or an API key."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .roles import Permission, Role, allows


@dataclass(frozen=True)
class Principal:
    kind: Literal["user", "key"]
    id: str  # user id or key id
    name: str  # username or key name
    role: Role
    # A user token that only opens the way out of a state: "password_change" (a one-time password) or
    # "mfa_enrolment" (the role requires a second factor not yet enrolled). None: the role's rights.
    restriction: str | None = None

    @property
    def actor(self) -> str:
        """How the audit trail and the records name this caller."""
        return f"user:{self.name}" if self.kind == "user" else f"key:{self.id}"

    @property
    def rate_key(self) -> str:
        return f"{self.kind}:{self.id}"

    def can(self, permission: Permission) -> bool:
        return allows(self.role, permission)
