"""Health and the model being served."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel


class LiveOut(BaseModel):
    status: Literal["ok"] = "ok"


class CheckOut(BaseModel):
    ok: bool
    detail: str


class ReadyOut(BaseModel):
    status: Literal["ready", "not_ready"]
    model: CheckOut
    database: CheckOut


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
