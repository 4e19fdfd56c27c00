"""Shadow: every accepted input also runs through the shadow model, stored linked to the answered
record, never returned. A/B: a deterministic split by input sha256, each record naming its arm."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from bundled_model import BUNDLED_VERSION
from registry_helpers import derive_package
from sqlalchemy import select

from cxr_pneumonia.registry.serving import in_challenger_arm
from cxr_pneumonia.registry.shadow import ShadowRunner
from cxr_pneumonia.store.db.models import ShadowPrediction

from .conftest import API, Service


@pytest.fixture(scope="module")
def challenger(tmp_path_factory: pytest.TempPathFactory, bundled_model_path: Path) -> Path:
    root = tmp_path_factory.mktemp("challenger")
    return derive_package(bundled_model_path, root / "pkg", version="1.1.0", temperature_factor=0.8)


def test_shadow_answers_are_stored_linked_and_never_returned(
    make_service: Callable[..., Service], challenger: Path, accepted_images: list[bytes]
) -> None:
    service = make_service(own_predictor=True, shadow_model_uri=str(challenger))
    clinician = service.key("clinician")
    answered = []
    for data in accepted_images[:4]:
        response = service.predict(data, clinician)
        assert response.status_code == 200
        assert "shadow" not in response.text and "1.1.0" not in response.text  # the shadow is silent
        answered.append(response.json())
    service.app.state.cxr.models.shadow_runner.join()
    with service.store.reading() as session:
        rows = list(session.scalars(select(ShadowPrediction).order_by(ShadowPrediction.id)))
    assert [r.prediction_id for r in rows] == [a["id"] for a in answered]
    # the same input queued again for the same shadow (a replay racing its original) is stored once
    runner = service.app.state.cxr.models.shadow_runner
    runner.submit(answered[0]["id"], accepted_images[0])
    runner.join()
    with service.store.reading() as session:
        again = session.scalars(
            select(ShadowPrediction).where(ShadowPrediction.prediction_id == answered[0]["id"])
        )
        assert len(list(again)) == 1
    assert runner.stats()["duplicates"] == 1
    assert {r.model_version for r in rows} == {"1.1.0"} and all(
        r.label in ("normal", "pneumonia") for r in rows
    )
    # a lower temperature sharpens the probabilities: the shadow's differ, from the same weights
    assert any(abs(r.p_pneumonia - a["p_pneumonia"]) > 1e-4 for r, a in zip(rows, answered, strict=True))
    record = service.client.get(f"{API}/predictions/{answered[0]['id']}", headers=service.key("admin")).json()
    assert record["model"]["version"] == BUNDLED_VERSION and "1.1.0" not in json.dumps(record)

    reviewer = service.key("clinician")
    truth = service.client.post(
        f"{API}/predictions/{answered[0]['id']}/review", json={"label": "pneumonia"}, headers=reviewer
    )
    assert truth.status_code in (200, 201), truth.text
    models = service.client.get(f"{API}/models", headers=service.key("admin")).json()
    roles = {m["role"]: m for m in models["models"]}
    assert set(roles) == {"champion", "shadow"} and models["shadow_queue"]["recorded"] == 4
    report = service.client.get(
        f"{API}/models/compare",
        params={"a": roles["champion"]["id"], "b": roles["shadow"]["id"]},
        headers=service.key("admin"),
    ).json()
    assert report["pairs"] == 4 and report["reviewed"] == 1 and len(report["points"]) == 4
    assert 0.0 <= report["agreement"]["value"] <= 1.0 and report["mean_abs_delta_p"] > 0
    sensitivity = report["on_reviewed"]["a"]["sensitivity"]
    assert sensitivity["n"] == 1 and len(sensitivity["ci95"]) == 2
    card = service.client.get(f"{API}/models/{roles['shadow']['id']}/card", headers=service.key("admin"))
    assert card.status_code == 200 and card.headers["content-type"].startswith("text/markdown")
    assert (
        service.client.get(f"{API}/models/0123456789ab/card", headers=service.key("admin")).status_code == 404
    )


def test_a_full_shadow_queue_drops_and_counts(
    make_service: Callable[..., Service], predictor, chest_jpeg: bytes
) -> None:
    """Bounded: what does not fit is dropped (and counted), never waited for."""
    service = make_service()
    runner = ShadowRunner(service.store, lambda: predictor, size=1)
    outcomes = [runner.submit(f"{i:032x}", chest_jpeg) for i in range(20)]
    runner.join()
    stats = runner.stats()
    assert stats["submitted"] + stats["dropped"] == 20 and stats["dropped"] == outcomes.count(False) > 0
    runner.close()


def test_the_ab_split_is_deterministic_by_sha256_and_near_its_percentage(
    make_service: Callable[..., Service], challenger: Path, accepted_images: list[bytes]
) -> None:
    service = make_service(own_predictor=True, ab_model_uri=str(challenger), ab_percent=30)
    state = service.app.state.cxr
    # 600 distinct inputs: a real radiograph with bytes appended after its end (decoders ignore them)
    variants = [accepted_images[i % len(accepted_images)] + i.to_bytes(4, "big") for i in range(600)]
    arms = [state.route(hashlib.sha256(v).hexdigest()).role for v in variants]
    assert arms == [state.route(hashlib.sha256(v).hexdigest()).role for v in variants]  # deterministic
    share = arms.count("challenger") / len(arms) * 100
    assert 25 <= share <= 35, share
    # through the API: each record names its arm, and the arm is the one its sha256 picks
    clinician = service.key("clinician")
    seen = set()
    for data in variants[:24]:
        body = service.predict(data, clinician).json()
        expected = "challenger" if in_challenger_arm(hashlib.sha256(data).hexdigest(), 30) else "champion"
        assert body["model"]["arm"] == expected
        assert body["model"]["version"] == ("1.1.0" if expected == "challenger" else BUNDLED_VERSION)
        seen.add(expected)
    assert seen == {"champion", "challenger"}
    again = service.predict(variants[0], clinician).json()
    assert again["model"]["arm"] == arms[0]  # the same input never flips between arms
    # a batch splits the same way: each image gets the arm it gets alone, results in input order
    batch = variants[24:36]
    files = [("files", (f"{i}.jpeg", data, "image/jpeg")) for i, data in enumerate(batch)]
    answered = service.client.post(f"{API}/predict/batch", files=files, headers=clinician).json()["results"]
    assert [r["index"] for r in answered] == list(range(len(batch)))
    assert [r["prediction"]["model"]["arm"] for r in answered] == arms[24:36]
    assert set(arms[24:36]) == {"champion", "challenger"}
