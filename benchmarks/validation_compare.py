"""Compare model packages on one training run's validation hold-out, through what is served (ONNX).

The rule to ship a new bundled model is decided on validation, never on the test split. A run's
own validation numbers come from PyTorch before export; this scores every package the same way on
the same images: the validation rows named in a run's split.json, through each package's Predictor.
The headline is the temperature-scaled 3-class NLL (a proper score that still moves when AUROC has
saturated; raw NLL is not comparable between recipes that leave a model more or less confident
before scaling), beside AUROC, bacterial vs viral AUROC and the decision-rule numbers.

    .venv/bin/python benchmarks/validation_compare.py --split runs/v23/split.json \
        --models models/cxr-effnet-lite0-v22 runs/v23/package [--data ../shared/data/kermany]

Writes benchmarks/results/validation_compare.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from cxr_pneumonia.data.catalog import scan
from cxr_pneumonia.data.labels import class_index
from cxr_pneumonia.inference.predictor import Predictor
from cxr_pneumonia.training.calibration import nll
from cxr_pneumonia.training.evaluate import score_rows
from cxr_pneumonia.training.loop import validation_scores

ROOT = Path(__file__).resolve().parent.parent


def compare(package: Path, data: Path, split_file: Path) -> dict[str, Any]:
    manifest = scan(data, verify=False)
    names = set(json.loads(split_file.read_text())["val"])
    rows = [r for r in manifest.rows if r.path in names]
    if len(rows) != len(names):
        raise SystemExit(f"{split_file}: {len(names) - len(rows)} validation images are not in {data}")
    predictor = Predictor.from_package(package)
    items = [i for i in score_rows(predictor, manifest, rows) if i.logits is not None]
    logits = np.stack([i.logits for i in items if i.logits is not None]).astype(np.float64)
    targets = np.array([class_index(i.row.label, i.row.subtype) for i in items])
    temperature = predictor.calibration.temperature
    raw_nll, auc, subtype_auc = validation_scores(logits, targets)
    return {
        "package": str(package),
        "version": predictor.model_ref.version,
        "digest": predictor.model_ref.digest,
        "images": len(items),
        "temperature": temperature,
        "nll_scaled": nll(logits, targets, temperature),
        "nll_raw": raw_nll,
        "auroc": auc,
        "subtype_auroc": subtype_auc,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--split", type=Path, required=True, help="a training run's split.json")
    parser.add_argument("--models", type=Path, nargs="+", required=True)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "kermany")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    result = {
        "split": str(args.split),
        "models": [compare(package, args.data, args.split) for package in args.models],
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "validation_compare.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
