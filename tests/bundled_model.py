"""The bundled package's name and version, read from it: tests that check what answered never
hard-code a version, so a new bundled model needs no test edits."""

from __future__ import annotations

import json

from cxr_pneumonia.config import default_model_path

_MANIFEST = json.loads((default_model_path() / "model.json").read_text())
BUNDLED_VERSION: str = _MANIFEST["version"]
BUNDLED_ID: str = f"{_MANIFEST['name']}:{BUNDLED_VERSION}"
BUNDLED_PREPROCESS_VERSION: str = _MANIFEST["preprocess"]["version"]
