"""The model package format 2: reads version 1, keeps unknown keys, evaluations per dataset version,
and one package digest that the result cache keys on."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from cxr_pneumonia.errors import ModelError
from cxr_pneumonia.inference import Predictor
from cxr_pneumonia.inference.cache import MemoryCache
from cxr_pneumonia.package import FORMAT_VERSION, ModelPackage, package_digest, write_manifest

V1_PACKAGE = Path(__file__).resolve().parent.parent / "models" / "cxr-effnet-lite0"


@pytest.fixture()
def v1_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "pkg"
    shutil.copytree(V1_PACKAGE, copy)
    return copy


def _edit_json(package: Path, edit) -> None:
    path = package / "model.json"
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def test_version_1_is_read_with_its_test_evaluation_filed_by_dataset(v1_copy: Path) -> None:
    raw = json.loads((v1_copy / "model.json").read_text())
    assert raw["format_version"] == 1 and "test" in raw["metrics"]
    manifest = ModelPackage.open(v1_copy).manifest
    assert manifest.format_version == 1
    test = manifest.evaluation("test")
    assert test is not None and test == raw["metrics"]["test"]
    assert list(manifest.evaluations) == [f"{raw['metrics']['test']['dataset_version']}/test"]
    assert "test" not in manifest.metrics


def test_rewriting_upgrades_to_version_2_and_keeps_unknown_keys(v1_copy: Path) -> None:
    _edit_json(v1_copy, lambda d: d.update(site_notes={"ward": "B"}))
    before = ModelPackage.open(v1_copy).manifest
    write_manifest(v1_copy, before)
    raw = json.loads((v1_copy / "model.json").read_text())
    assert raw["format_version"] == FORMAT_VERSION == 2
    assert raw["site_notes"] == {"ward": "B"}
    assert raw["digest"] == before.digest
    after = ModelPackage.open(v1_copy).manifest
    assert after.digest == before.digest
    assert after.evaluations == before.evaluations


def test_unknown_format_is_refused(v1_copy: Path) -> None:
    _edit_json(v1_copy, lambda d: d.update(format_version=99))
    with pytest.raises(ModelError, match="format"):
        ModelPackage.open(v1_copy)


def test_digest_covers_decisions_but_not_evaluations(v1_copy: Path) -> None:
    manifest = ModelPackage.open(v1_copy).manifest
    base = manifest.digest
    assert base == package_digest(manifest) and len(base) == 64
    assert replace(manifest, evaluations={}).digest == base
    assert replace(manifest, created="2030-01-01").digest == base
    recalibrated = replace(manifest, calibration=replace(manifest.calibration, temperature=2.0))
    assert recalibrated.digest != base
    other_weights = replace(manifest, files={**manifest.files, "model.onnx": "0" * 64})
    assert other_weights.digest != base


def test_a_stored_digest_is_never_trusted(v1_copy: Path) -> None:
    real = ModelPackage.open(v1_copy).manifest.digest
    _edit_json(v1_copy, lambda d: d.update(digest="f" * 64))
    assert ModelPackage.open(v1_copy).manifest.digest == real


def test_a_recalibrated_package_does_not_get_its_parents_cached_answers(v1_copy: Path, kermany: Path) -> None:
    image = sorted((kermany / "test" / "NORMAL").glob("*.jpeg"))[0]
    cache = MemoryCache(64)
    parent = Predictor.from_package(V1_PACKAGE, cache=cache)
    first = parent.predict(image)

    manifest = ModelPackage.open(v1_copy).manifest
    write_manifest(v1_copy, replace(manifest, calibration=replace(manifest.calibration, temperature=3.0)))
    child = Predictor.from_package(v1_copy, cache=cache)  # the same cache, the same weights
    assert child.model_ref.sha256 == parent.model_ref.sha256
    assert child.model_ref.digest != parent.model_ref.digest
    answer = child.predict(image)
    assert not answer.cached
    assert answer.p_pneumonia != pytest.approx(first.p_pneumonia)
    assert parent.predict(image).cached
