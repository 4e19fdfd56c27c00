"""Reviewed predictions of real radiographs, for the tests of recalibration jobs (service and web).

A module with its own name (like registry_helpers.py) so tests anywhere can import it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

API = "/api/v1"


def _subtype(path: Path) -> str | None:
    return "viral" if "virus" in path.name else "bacterial" if "bacteria" in path.name else None


def review_real_cases(client: Any, headers: dict[str, str], kermany: Path, per_class: int) -> int:
    """Real Kermany test radiographs through POST /predict (a TestClient or an httpx.Client), each
    confirmed by a clinician with its true label (the folder; the subtype from the file name)."""
    reviewed = 0
    for folder, label in (("NORMAL", "normal"), ("PNEUMONIA", "pneumonia")):
        count = 0
        for path in sorted((kermany / "test" / folder).glob("*.jpeg")):
            answer = client.post(
                f"{API}/predict", files={"file": (path.name, path.read_bytes())}, headers=headers
            )
            if answer.status_code != 200:
                continue  # refused (out of distribution): no prediction to review
            body = {"label": label, "subtype": _subtype(path) if label == "pneumonia" else None}
            done = client.post(f"{API}/predictions/{answer.json()['id']}/review", json=body, headers=headers)
            assert done.status_code == 201, done.text
            count += 1
            if count == per_class:
                break
        assert count == per_class, f"only {count} {folder} test images were accepted"
        reviewed += count
    return reviewed
