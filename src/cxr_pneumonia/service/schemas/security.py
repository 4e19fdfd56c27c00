"""Second factor, refresh and sign-out bodies."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class RefreshIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    refresh_token: str = Field(min_length=1, max_length=256)


class MfaStatusOut(BaseModel):
    enrolled: bool
    required: bool  # CXR_MFA_REQUIRED applies to this account's role
    recovery_codes_left: int


class TotpEnrolmentOut(BaseModel):
    secret: str  # base32, for typing into an app that cannot scan
    otpauth_uri: str
    qr_svg: str = Field(description="the otpauth URI as a QR code: an SVG data: URI")


class TotpConfirmIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=6, max_length=16)


class RecoveryCodesOut(BaseModel):
    recovery_codes: list[str] = Field(description="each good once; shown only now")
