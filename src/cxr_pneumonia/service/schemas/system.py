"""Health and the model being served."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel


class LiveOut(BaseModel):
    status: Literal["ok"] = "ok"


class CheckOut(BaseModel):
    ok: bool
    detail: str


class ModelCheckOut(CheckOut):
    model_id: str | None = None
    digest: str | None = None
    registry_version: str | None = None  # None: served from a path, not the registry


class ReadyOut(BaseModel):
    # degraded: serving, but from the model cache because the registry did not answer
    status: Literal["ready", "degraded", "not_ready"]
    model: ModelCheckOut
    database: CheckOut
    reasons: list[str] = []


class ServedModelOut(BaseModel):
    id: str  # the package digest's first 12 hex digits
    role: Literal["champion", "challenger", "shadow"]
    uri: str
    model_id: str
    name: str
    version: str
    registry_version: str | None
    sha256: str
    digest: str
    loaded_at: str
    degraded: str | None
    card: str  # link to the rendered model card


class ModelsOut(BaseModel):
    models: list[ServedModelOut]
    ab_percent: float  # share of inputs the challenger answers
    errors: dict[str, str]  # role -> why it is not being served
    shadow_queue: dict[str, int] | None  # submitted, recorded, duplicates, dropped, failed, pending


class ReloadOut(BaseModel):
    results: list[dict[str, Any]]


class ModelOut(BaseModel):
    name: str
    version: str
    model_id: str
    created: str
    sha256: str
    backbone: str
    classes: list[str]
    class_meaning: dict[str, str]
    preprocess: dict[str, Any]
    calibration: dict[str, Any]
    metrics: dict[str, Any]
    training_data: dict[str, Any]
    code_version: str
    card: str
    disclaimer: str
