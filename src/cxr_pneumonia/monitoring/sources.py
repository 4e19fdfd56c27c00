"""Which images a reference is made from: the validation side of the package's training data.

A folder (the Kermany root: its split is by folder) or a manifest CSV with a split column. Test rows are
never used. Without given ``val`` rows, the validation split is re-made as training made it (same
strategy, fraction and seed from the package's training config), so the reference images were not
trained on. When that cannot be done, a seeded sample of the train rows stands in (and says so).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..config import PACKAGE_ROOT, Settings
from ..data.catalog import ManifestRow, scan
from ..data.splits import training_holdouts
from ..errors import DataError
from ..package import ModelPackage

REPO_ROOT = PACKAGE_ROOT.parent.parent


def resolve_data(package: ModelPackage, settings: Settings, given: Path | None = None) -> Path:
    """The training data named in the package (``training.data_source``), resolved against the
    working directory, the repository and the shared data folder; or ``given``."""
    if given is not None:
        return given
    if settings.monitoring_reference_data is not None:
        return settings.monitoring_reference_data
    named = str(package.manifest.training.get("data_source") or "")
    if not named:
        raise DataError("the package names no training data: give --reference-data", code="no_reference_data")
    relative = Path(named)
    candidates = [relative, REPO_ROOT / relative]
    shared = settings.shared_data or REPO_ROOT.parent / "shared" / "data"
    candidates.append(shared / relative.name)
    for candidate in candidates:
        if candidate.exists():
            return candidate
    raise DataError(
        f"the package's training data {named!r} is not here (tried {', '.join(map(str, candidates))}): "
        "give --reference-data",
        code="no_reference_data",
    )


def reference_paths(
    package: ModelPackage, data: Path, *, max_images: int, seed: int = 0
) -> tuple[list[Path], dict[str, Any], list[str]]:
    """(image paths, provenance, patient ids) of the validation images to build the reference from."""
    manifest = scan(data, verify=False)
    rows = [r for r in manifest.rows if r.split in (None, "train", "val")]
    val = [r for r in rows if r.split == "val"]
    how = "given val split"
    if not val:
        val, how = _remade_validation(rows, package.manifest.training.get("config", {}))
    if max_images and len(val) > max_images:
        keep = np.random.default_rng(seed).choice(len(val), max_images, replace=False)
        val = [val[i] for i in sorted(keep.tolist())]
    if not val:
        raise DataError(f"{data} holds no train or validation images", code="data_empty")
    info = {
        "data_source": str(data),
        "dataset_version": manifest.version_id,
        "selection": how,
        "rows": len(val),
    }
    return [manifest.absolute(r) for r in val], info, [r.patient_id for r in val]


def _remade_validation(rows: list[ManifestRow], config: dict[str, Any]) -> tuple[list[ManifestRow], str]:
    """Validation as the package's training config made it (``data.splits.training_holdouts``, the one
    place that choice lives); a package that recorded no seed for a random split gets a seeded sample."""
    strategy = str(config.get("val_strategy", "random"))
    seed = config.get("seed")
    if strategy == "random" and seed is None:
        fraction = float(config.get("val_fraction", 0.15))
        keep = np.random.default_rng(0).choice(len(rows), max(1, int(len(rows) * fraction)), replace=False)
        return [rows[i] for i in sorted(keep.tolist())], "seeded sample of train rows (no training seed)"
    holdouts = training_holdouts(rows, strategy, float(config.get("val_fraction", 0.15)), int(seed or 0))
    if strategy == "earliest":
        return holdouts.val, "validation re-made (earliest patients)"
    return holdouts.val, f"validation re-made (patient split, seed {seed})"
