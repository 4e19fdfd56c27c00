"""Login, users and API keys."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ...store.accounts import KEY_NAME_PATTERN, USERNAME_PATTERN
from ...store.security.passwords import MAX_LENGTH, MIN_LENGTH

RoleName = Literal["admin", "clinician", "auditor", "integration"]


class TokenOut(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int
    refresh_token: str | None = Field(
        default=None, description="POST it to /auth/refresh for the next pair; good once"
    )
    restriction: str | None = Field(
        default=None, description="password_change or mfa_enrolment: the token only allows that"
    )


class MeOut(BaseModel):
    kind: Literal["user", "key"]
    id: str
    name: str
    role: RoleName
    permissions: list[str]


class PasswordChangeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    current_password: str = Field(max_length=MAX_LENGTH)
    new_password: str = Field(min_length=MIN_LENGTH, max_length=MAX_LENGTH)


class UserOut(BaseModel):
    id: int
    username: str
    role: RoleName
    active: bool
    created_at: datetime
    created_by: str
    disabled_at: datetime | None


class UserCreateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(pattern=USERNAME_PATTERN)
    role: RoleName
    password: str | None = Field(
        default=None,
        min_length=MIN_LENGTH,
        max_length=MAX_LENGTH,
        description="omit to have one generated and returned once",
    )


class UserCreatedOut(BaseModel):
    user: UserOut
    password: str | None = Field(description="the generated password, shown this once; null if you chose it")


class KeyOut(BaseModel):
    id: str
    name: str
    role: RoleName
    active: bool
    created_at: datetime
    created_by: str
    revoked_at: datetime | None
    revoked_by: str | None


class KeyCreateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=KEY_NAME_PATTERN)
    role: RoleName = "integration"


class KeyCreatedOut(BaseModel):
    key: KeyOut
    api_key: str = Field(description="send as X-API-Key; shown this once, only its hash is kept")
