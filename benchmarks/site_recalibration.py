"""A site simulation of `cxr recalibrate`: the one sanctioned use of the Kermany test split for fitting.

The test split is split by patient (seeded) into a "site calibration" half and an evaluation half. The
package is recalibrated on the first half; parent and child are evaluated on the second half only,
which nothing was fitted on. The demo package is never the bundled model: the bundled model's headline
numbers stay those of the untouched test split, with nothing fitted on it.

    .venv/bin/python benchmarks/site_recalibration.py [--model PACKAGE (default: the bundled model)]
        [--data ../shared/data/kermany] [--seed 20261201] [--work runs/site-demo] [--out benchmarks/results]

Writes benchmarks/results/site_recalibration.json and site_recalibration_card.md (the demo package's
card, with its before/after numbers); the demo package itself stays in --work.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
from pathlib import Path
from typing import Any

from cxr_pneumonia.config import default_model_path
from cxr_pneumonia.data.catalog import ManifestRow, scan
from cxr_pneumonia.data.splits import seeded_patient_halves
from cxr_pneumonia.inference.predictor import Predictor
from cxr_pneumonia.package import CARD_NAME
from cxr_pneumonia.training.evaluate import evaluate, record_in_package
from cxr_pneumonia.training.recalibrate import recalibrate

ROOT = Path(__file__).resolve().parent.parent
KEYS = ("ece", "brier", "refer_rate", "unflagged_rate", "conformal_coverage", "conformal_coverage_by_class")


def write_csv(path: Path, root: Path, rows: list[ManifestRow]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label", "subtype", "patient_id"])
        for r in rows:
            writer.writerow([str((root / r.path).resolve()), r.label, r.subtype or "", r.patient_id])


def summary(report: dict[str, Any]) -> dict[str, Any]:
    b = report["pneumonia"]
    return {
        "images": report["images"],
        "auroc": b["auroc"],
        "sensitivity": b["sensitivity"],
        "sensitivity_ci95": b["sensitivity_ci95"],
        "specificity": b["specificity"],
        "specificity_ci95": b["specificity_ci95"],
        "threshold": b["threshold"],
        **{k: report.get(k) for k in KEYS},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=default_model_path())
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "kermany")
    parser.add_argument("--seed", type=int, default=20261201)
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "site-demo")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()

    manifest = scan(args.data, verify=False)
    test = manifest.select("test")
    calibrate_patients, _ = seeded_patient_halves([r.patient_id for r in test], 0.5, args.seed)
    calibration = [r for r in test if r.patient_id in calibrate_patients]
    evaluation = [r for r in test if r.patient_id not in calibrate_patients]
    if args.work.exists():
        shutil.rmtree(args.work)
    args.work.mkdir(parents=True)
    write_csv(args.work / "site_calibration.csv", manifest.root, calibration)
    write_csv(args.work / "site_evaluation.csv", manifest.root, evaluation)

    child_dir = args.work / "package"
    recalibrate(args.model, args.work / "site_calibration.csv", child_dir, version=None)
    before, _ = evaluate(Predictor.from_package(args.model), args.work / "site_evaluation.csv", "all")
    after, _ = evaluate(Predictor.from_package(child_dir), args.work / "site_evaluation.csv", "all")
    after["note"] = "the evaluation half of the site simulation: no case here was fitted on"
    record_in_package(child_dir, after, "benchmarks/site_recalibration.py (evaluation half)")

    result = {
        "model": str(args.model.relative_to(ROOT) if args.model.is_relative_to(ROOT) else args.model),
        "seed": args.seed,
        "calibration_half": {
            "images": len(calibration),
            "patients": len({r.patient_id for r in calibration}),
        },
        "evaluation_half": {"images": len(evaluation), "patients": len({r.patient_id for r in evaluation})},
        "before": summary(before),
        "after": summary(after),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "site_recalibration.json").write_text(json.dumps(result, indent=2) + "\n")
    shutil.copy(child_dir / CARD_NAME, args.out / "site_recalibration_card.md")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
