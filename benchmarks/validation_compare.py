"""Compare model packages on one training run's validation hold-out, through what is served (ONNX).

The rule to ship a new bundled model is decided on validation, never on the test split. A run's
own validation numbers come from PyTorch before export; this scores every package the same way on
the same images: the validation rows named in a run's split.json, through each package's Predictor.
The headline is the temperature-scaled 3-class NLL (a proper score that still moves when AUROC has
saturated; raw NLL is not comparable between recipes that leave a model more or less confident
before scaling), beside the ECE of p(pneumonia), AUROC and bacterial vs viral AUROC.

    .venv/bin/python benchmarks/validation_compare.py [--split runs/v23/split.json] \
        --models /tmp/models/cxr-effnet-lite0-v22 runs/v23/package [--data ../shared/data/kermany] [--ensemble]

Without --split the hold-out is the first package's, recomputed from the training config in its
model.json (so the comparison still runs after the run folder is gone).

--ensemble also scores the mean of the packages' temperature-scaled logits, with one temperature
refitted on the same images: whether an ensemble of them would pay, before anyone builds one.
(2.2.0 is in git history: `git archive 3ddde11 models/cxr-effnet-lite0-v22 | tar -x -C /tmp`.)

--reframe AREA also scores every package on the same images centre-cropped to AREA of their area
before they are served (a tight framing, as the Kermany test split's earliest normals have and the
training normals rarely do): what the package's threshold does to specificity and sensitivity when
only the framing changes (docs/training.md, "Framing is not a finding").

--stretch KEEP also scores them with only the central KEEP share of their width kept, and then of their
height (served as a square, the chest looks wider, then taller): Kermany's images were squashed to a
square from originals of many aspect ratios, so proportions say how an image was acquired, not what it
shows; --grain STD with Gaussian noise of that standard deviation added before they are served (a
noisier acquisition of the same anatomy; docs/training.md, "Proportions and grain are not findings");
--resolution PIXELS resampled so that their longer side has that many pixels and back (a softer
detector: whether smoothness alone reads as normal).

Writes benchmarks/results/validation_compare.json.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from cxr_pneumonia.data.catalog import Manifest, ManifestRow, scan
from cxr_pneumonia.data.labels import class_index
from cxr_pneumonia.imaging.xray import XRay
from cxr_pneumonia.inference.predictor import Predictor
from cxr_pneumonia.package import ModelPackage
from cxr_pneumonia.training.calibration import (
    expected_calibration_error,
    fit_temperature,
    nll,
    p_pneumonia,
    probabilities,
)
from cxr_pneumonia.training.config import TrainConfig
from cxr_pneumonia.training.evaluate import score_rows
from cxr_pneumonia.training.loop import validation_scores
from cxr_pneumonia.training.metrics import binary_report
from cxr_pneumonia.training.probes import centre_crop, grain, resolution, stretch
from cxr_pneumonia.training.run import split_for_training

ROOT = Path(__file__).resolve().parent.parent


def validation_rows(
    data: Path, split_file: Path | None, first_package: Path
) -> tuple[Manifest, list[ManifestRow]]:
    """The rows named in ``split_file``'s "val", or (without one) the first package's hold-out,
    recomputed from its recorded training config on the dataset version it was trained on."""
    manifest = scan(data, verify=False)
    if split_file is None:
        package = ModelPackage.open(first_package).manifest
        if package.training.get("dataset_version") != manifest.version_id:
            raise SystemExit(f"{first_package} was trained on another dataset version than {data}")
        _, held_out = split_for_training(manifest, TrainConfig.from_dict(package.training["config"]))
        return manifest, sorted(held_out, key=lambda r: r.path)
    names = set(json.loads(split_file.read_text())["val"])
    rows = sorted((r for r in manifest.rows if r.path in names), key=lambda r: r.path)
    if len(rows) != len(names):
        raise SystemExit(f"{split_file}: {len(names) - len(rows)} validation images are not in {data}")
    return manifest, rows


def package_logits(
    predictor: Predictor,
    manifest: Manifest,
    rows: list[ManifestRow],
    adjust: Callable[[XRay], XRay] | None = None,
) -> np.ndarray:
    """The package's raw logits on ``rows``, in their order (every validation image must score)."""
    items = list(score_rows(predictor, manifest, rows, adjust=adjust))
    missing = [i.row.path for i in items if i.logits is None]
    if missing:
        version = predictor.model_ref.version
        raise SystemExit(f"{version}: {len(missing)} validation images did not score, e.g. {missing[0]}")
    by_path = {i.row.path: i.logits for i in items}
    return np.stack([by_path[r.path] for r in rows]).astype(np.float64)


def at_threshold(
    logits: np.ndarray, targets: np.ndarray, temperature: float, threshold: float
) -> dict[str, Any]:
    """Specificity and sensitivity at the package's own threshold, and the normals' mean p(pneumonia)."""
    p = p_pneumonia(probabilities(logits, temperature))
    report = binary_report(targets != 0, p, threshold)  # evaluate's threshold convention (>=)
    return {
        "threshold": threshold,
        "specificity": report["specificity"],
        "sensitivity": report["sensitivity"],
        "normal_mean_p_pneumonia": float(np.mean(p[targets == 0])),
    }


def scores(logits: np.ndarray, targets: np.ndarray, temperature: float) -> dict[str, Any]:
    raw_nll, auc, subtype_auc = validation_scores(logits, targets)
    return {
        "images": len(targets),
        "temperature": temperature,
        "nll_scaled": nll(logits, targets, temperature),
        "nll_raw": raw_nll,
        # evaluate's ECE on the same images: a second score a ship rule can require (NLL alone let 2.4.0's
        # quantization noise pass for a gain, docs/training.md)
        "ece": expected_calibration_error(targets != 0, p_pneumonia(probabilities(logits, temperature))),
        "auroc": auc,
        "subtype_auroc": subtype_auc,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--split",
        type=Path,
        default=None,
        help="a training run's split.json (default: the first package's hold-out)",
    )
    parser.add_argument("--models", type=Path, nargs="+", required=True)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "kermany")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--ensemble", action="store_true", help="also score the mean of their scaled logits")
    parser.add_argument(
        "--reframe", type=float, default=None, help="also score the images centre-cropped to this area share"
    )
    parser.add_argument(
        "--stretch", type=float, default=None, help="also score the images with this share of each axis kept"
    )
    parser.add_argument(
        "--grain", type=float, default=None, help="also score the images with noise of this std added"
    )
    parser.add_argument(
        "--resolution",
        type=int,
        default=None,
        help="also score the images resampled to this many pixels on their longer side and back",
    )
    args = parser.parse_args()
    manifest, rows = validation_rows(args.data, args.split, args.models[0])
    targets = np.array([class_index(r.label, r.subtype) for r in rows])
    result: dict[str, Any] = {"split": str(args.split or f"hold-out of {args.models[0]}"), "models": []}
    scaled = []
    for package in args.models:
        predictor = Predictor.from_package(package)
        logits = package_logits(predictor, manifest, rows)
        calibration = predictor.calibration
        ref = {
            "package": str(package),
            "version": predictor.model_ref.version,
            "digest": predictor.model_ref.digest,
        }
        entry = ref | scores(logits, targets, calibration.temperature)
        entry |= at_threshold(logits, targets, calibration.temperature, calibration.threshold)
        probes: dict[str, tuple[dict[str, float], Callable[[XRay], XRay]]] = {}
        if args.reframe is not None:
            probes["reframed"] = ({"area": args.reframe}, centre_crop(args.reframe))
        if args.stretch is not None:
            for axis in ("width", "height"):
                probes[f"stretched_{axis}"] = ({"keep": args.stretch}, stretch(axis, args.stretch))
        if args.grain is not None:
            probes["grainy"] = ({"std": args.grain}, grain(args.grain))
        if args.resolution is not None:
            probes["softened"] = ({"longer_side": args.resolution}, resolution(args.resolution))
        for key, (setting, adjust) in probes.items():
            probed = package_logits(predictor, manifest, rows, adjust=adjust)
            entry[key] = setting | scores(probed, targets, calibration.temperature)
            entry[key] |= at_threshold(probed, targets, calibration.temperature, calibration.threshold)
        result["models"].append(entry)
        scaled.append(logits / calibration.temperature)
    if args.ensemble:
        mean = np.mean(scaled, axis=0)
        result["ensemble"] = {"members": [m["version"] for m in result["models"]]} | scores(
            mean, targets, fit_temperature(mean, targets)
        )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "validation_compare.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
