"""Adding a monitoring reference to a package: a new package (new version, new digest, the old one as
parent), never an edit in place."""

from __future__ import annotations

import re
import shutil
from dataclasses import replace
from pathlib import Path

from ..errors import ModelError
from ..package import ModelPackage, sha256_file, write_manifest
from .reference import REFERENCE_NAME, SUMMARY_NAME, Reference

RELATION = "monitoring reference added"


def monitored_version(version: str) -> str:
    """'1.0.0' -> '1.0.0+mon1'; '1.0.0+mon1' -> '1.0.0+mon2' (semver build metadata: same weights)."""
    match = re.fullmatch(r"(.*)\+mon(\d+)", version)
    if match:
        return f"{match.group(1)}+mon{int(match.group(2)) + 1}"
    return f"{version}+mon1"


def write_with_reference(package: ModelPackage, reference: Reference, out: Path) -> ModelPackage:
    """Copy ``package`` to ``out`` with ``reference`` as its monitoring.npz/json; return it, verified."""
    if out.exists() and any(out.iterdir()):
        raise ModelError(f"{out} exists and is not empty")
    shutil.copytree(package.path, out, dirs_exist_ok=True)
    reference.save(out)
    old = package.manifest
    files = {
        **old.files,
        REFERENCE_NAME: sha256_file(out / REFERENCE_NAME),
        SUMMARY_NAME: sha256_file(out / SUMMARY_NAME),
    }
    manifest = replace(
        old,
        version=monitored_version(old.version),
        files=files,
        parent={"digest": old.digest, "model_id": old.model_id, "relation": RELATION},
    )
    write_manifest(out, manifest)
    return ModelPackage.open(out)


def attach_while_making(package_dir: Path, validation: list[Path], patient_ids: list[str]) -> bool:
    """While a package is being made: build its reference from the validation images and list it in
    model.json (before anyone has the package's digest). False when there are too few images."""
    from ..inference import Predictor
    from .reference import build_reference

    predictor = Predictor.from_package(package_dir)
    try:
        reference = build_reference(
            predictor,
            validation,
            info={"selection": "validation split of training"},
            patient_ids=patient_ids or None,
        )
    except ModelError:
        return False
    reference.save(package_dir)
    manifest = predictor.package.manifest
    files = {**manifest.files}
    for name in (REFERENCE_NAME, SUMMARY_NAME):
        files[name] = sha256_file(package_dir / name)
    write_manifest(package_dir, replace(manifest, files=files))
    return True
