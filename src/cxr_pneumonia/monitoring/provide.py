"""Where a package's reference comes from: the package itself, else a cache keyed by its digest, else
built on the fly from its training data's validation images (and cached)."""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path

from ..config import Settings
from ..inference import Predictor
from .reference import REFERENCE_FORMAT, Reference, build_reference
from .sources import reference_paths, resolve_data

log = logging.getLogger(__name__)


def cache_dir(settings: Settings, digest: str) -> Path:
    # per reference format: a cache written by an older monitor is rebuilt, not reused
    return settings.data_dir / "monitoring" / "references" / f"{digest}-r{REFERENCE_FORMAT}"


def cached_reference(predictor: Predictor, settings: Settings) -> Reference | None:
    """The package's own reference, or one cached for its digest; None when there is neither."""
    own = Reference.in_package(predictor.package)
    if own is not None:
        return own
    cached = cache_dir(settings, predictor.model_ref.digest)
    if (cached / "monitoring.json").is_file():
        return Reference.load(cached)
    return None


def reference_from_data(
    predictor: Predictor, settings: Settings, data: Path | None = None, *, max_images: int | None = None
) -> Reference:
    """Build a reference from the validation side of ``data`` (default: the package's training data)."""
    root = resolve_data(predictor.package, settings, data)
    limit = settings.monitoring_reference_images if max_images is None else max_images
    paths, info, patients = reference_paths(predictor.package, root, max_images=limit)
    log.info("building a monitoring reference from %d images of %s", len(paths), root)
    return build_reference(
        predictor, paths, info={**info, "package_digest": predictor.model_ref.digest}, patient_ids=patients
    )


def reference_for(predictor: Predictor, settings: Settings, data: Path | None = None) -> Reference:
    """The reference to monitor ``predictor`` with, building and caching one when needed."""
    found = cached_reference(predictor, settings) if data is None else None
    if found is not None:
        return found
    reference = reference_from_data(predictor, settings, data)
    target = cache_dir(settings, predictor.model_ref.digest)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:  # replaced whole, never half-written
        reference.save(Path(scratch))
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(scratch, target)
    return reference


def card_sensitivity(predictor: Predictor) -> float | None:
    """The pneumonia sensitivity the package's recorded test evaluation states (what the card says)."""
    manifest = predictor.package.manifest
    evaluation = manifest.evaluation("test") or next(
        (e for key, e in manifest.evaluations.items() if key.endswith("/test")), None
    )
    value = ((evaluation or {}).get("pneumonia") or {}).get("sensitivity")
    return float(value) if isinstance(value, int | float) else None
