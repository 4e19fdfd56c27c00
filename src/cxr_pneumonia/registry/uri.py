"""What ``CXR_MODEL_URI`` (and friends) may name: a package folder, or a registry version by alias
or number (``models:/NAME@ALIAS``, ``models:/NAME/VERSION``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .errors import RegistryError

_ALIAS = re.compile(r"^models:/(?P<name>[^/@]+)@(?P<alias>[A-Za-z0-9_\-]+)$")
_VERSION = re.compile(r"^models:/(?P<name>[^/@]+)/(?P<version>\d+)$")


@dataclass(frozen=True)
class ModelURI:
    text: str
    path: Path | None = None
    name: str | None = None
    alias: str | None = None
    version: str | None = None

    @property
    def in_registry(self) -> bool:
        return self.name is not None


def parse_model_uri(text: str) -> ModelURI:
    text = text.strip()
    if not text.startswith("models:"):
        return ModelURI(text, path=Path(text))
    match = _ALIAS.match(text)
    if match:
        return ModelURI(text, name=match["name"], alias=match["alias"])
    match = _VERSION.match(text)
    if match:
        return ModelURI(text, name=match["name"], version=match["version"])
    raise RegistryError(f"{text!r} is not models:/NAME@ALIAS or models:/NAME/VERSION")
