"""The reference is made from the package's own validation split, as its training config defines it."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

from cxr_pneumonia.data.catalog import scan
from cxr_pneumonia.data.splits import earliest_patients_split
from cxr_pneumonia.monitoring.sources import reference_paths
from cxr_pneumonia.package import ModelPackage, write_manifest
from cxr_pneumonia.training.config import TrainConfig
from cxr_pneumonia.training.run import split_for_training


def _package_trained_with(
    bundled: Path, out: Path, **config: object
) -> tuple[ModelPackage, dict[str, object]]:
    """A copy of the bundled package whose recorded training config has ``config`` changed."""
    if not out.exists():
        shutil.copytree(bundled, out)
    manifest = ModelPackage.open(out).manifest
    changed = {**ModelPackage.open(bundled).manifest.training.get("config", {}), **config}
    changed = {k: v for k, v in changed.items() if v is not None}
    write_manifest(out, replace(manifest, training={**manifest.training, "config": changed}))
    return ModelPackage.open(out), changed


def test_val_strategy_earliest_gives_the_earliest_patients_of_train(
    bundled_model_path: Path, kermany: Path, tmp_path: Path
) -> None:
    package, _ = _package_trained_with(
        bundled_model_path, tmp_path / "pkg", val_strategy="earliest", val_fraction=0.1
    )
    paths, info, patients = reference_paths(package, kermany, max_images=0)

    catalog = scan(kermany, verify=False)
    train = [r for r in catalog.rows if r.split in (None, "train", "val")]
    expected = [catalog.absolute(r) for r in earliest_patients_split(train, 0.1)[1]]
    assert paths == expected and info["selection"] == "validation re-made (earliest patients)"
    assert len(patients) == len(paths) and set(patients) == {
        r.patient_id for r in earliest_patients_split(train, 0.1)[1]
    }
    assert not any("/test/" in str(p) for p in paths)
    # the earliest normal patients of train are next to test's (IM-0001..0111): IM-0115 onwards
    names = sorted(p.name for p in paths if p.parent.name == "NORMAL" and p.name.startswith("IM-"))
    assert names[0].startswith("IM-011")


def test_a_random_split_is_remade_as_training_made_it(
    bundled_model_path: Path, kermany: Path, tmp_path: Path
) -> None:
    """Monitoring's reference images are exactly the validation images a run of that config held out."""
    package, config = _package_trained_with(
        bundled_model_path, tmp_path / "pkg", val_strategy="random", seed=7, val_fraction=0.1
    )
    paths, info, _ = reference_paths(package, kermany, max_images=0)

    catalog = scan(kermany, verify=False)
    _, held_out = split_for_training(catalog, TrainConfig.from_dict(config))
    assert sorted(paths) == sorted(catalog.absolute(r) for r in held_out)
    assert info["selection"] == "validation re-made (patient split, seed 7)"

    package, _ = _package_trained_with(
        bundled_model_path, tmp_path / "pkg", val_strategy="random", seed=None, val_fraction=0.1
    )
    paths, info, _ = reference_paths(package, kermany, max_images=0)
    assert info["selection"] == "seeded sample of train rows (no training seed)"
    assert not any("/test/" in str(p) for p in paths)
