"""Do the patient ids shared by Kermany's train and test splits mean shared children? (an audit)

Kermany's file names put some `personN` ids in both the official train and the test split. If they are
the same children, the test metrics are optimistic: the model would have seen those lungs in training.
This measures, for the test pneumonia images of shared ids against those of ids only in test:

- sensitivity at the package threshold, AUROC against all test normals, and bacterial/viral accuracy;
- how alike a test image is to the train images of its own id (cosine of the model's pooled features),
  against the same number of train pneumonia images of other patients (the chance level), and how many
  near-duplicates (cosine >= 0.98) there are either way.

Evaluation only: nothing here chooses a model, threshold or temperature.

    .venv/bin/python benchmarks/patient_overlap.py [--model models/cxr-effnet-lite0]
        [--data ../shared/data/kermany] [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from cxr_pneumonia.data.catalog import Manifest, ManifestRow, scan
from cxr_pneumonia.imaging import load
from cxr_pneumonia.imaging.preprocess import to_model_input
from cxr_pneumonia.inference.predictor import Predictor
from cxr_pneumonia.training.metrics import auroc

ROOT = Path(__file__).resolve().parent.parent
NEAR_DUPLICATE = 0.98
CHANCE_DRAWS = 20


def embed(predictor: Predictor, manifest: Manifest, rows: list[ManifestRow]) -> tuple[np.ndarray, np.ndarray]:
    """(unit-length pooled features, calibrated class probabilities) per row, through the served model."""
    features, probs = [], []
    for start in range(0, len(rows), 64):
        batch = np.stack(
            [
                to_model_input(load(manifest.absolute(r), predictor.limits), predictor.spec)
                for r in rows[start : start + 64]
            ]
        )
        out = predictor.run_model(batch)
        pooled = out.features.mean(axis=(2, 3))
        features.append(pooled / np.linalg.norm(pooled, axis=1, keepdims=True))
        probs.append(out.probs)
    return np.concatenate(features), np.concatenate(probs)


def group_metrics(
    rows: list[ManifestRow], p: np.ndarray, probs_viral: np.ndarray, normals_p: np.ndarray, threshold: float
) -> dict[str, Any]:
    y = np.array([1] * len(rows) + [0] * len(normals_p))
    subtyped = [i for i, r in enumerate(rows) if r.subtype]
    viral = np.array([rows[i].subtype == "viral" for i in subtyped])
    return {
        "pneumonia_images": len(rows),
        "patients": len({r.patient_id for r in rows}),
        "sensitivity": round(float((p >= threshold).mean()), 4),
        "auroc_vs_all_test_normals": round(auroc(y, np.concatenate([p, normals_p])), 4),
        "subtype_accuracy": round(float(((probs_viral[subtyped] > 0.5) == viral).mean()), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "cxr-effnet-lite0")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "kermany")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()

    predictor = Predictor.from_package(args.model)
    threshold = predictor.calibration.threshold
    manifest = scan(args.data, verify=False)
    train = [r for r in manifest.rows if r.split == "train" and r.label == "pneumonia"]
    test = [r for r in manifest.rows if r.split == "test"]
    train_ids = {r.patient_id for r in manifest.rows if r.split == "train"}
    shared = [r for r in test if r.label == "pneumonia" and r.patient_id in train_ids]
    unseen = [r for r in test if r.label == "pneumonia" and r.patient_id not in train_ids]
    normals = [r for r in test if r.label == "normal"]

    train_f, _ = embed(predictor, manifest, train)
    test_rows = shared + unseen + normals
    test_f, test_probs = embed(predictor, manifest, test_rows)
    test_p = test_probs[:, 1] + test_probs[:, 2]
    viral = test_probs[:, 2] / np.maximum(test_p, 1e-12)  # P(viral | pneumonia): the served subtype answer
    n_shared, n_unseen = len(shared), len(unseen)
    normals_p = test_p[n_shared + n_unseen :]

    by_patient: dict[str, list[int]] = defaultdict(list)
    for index, row in enumerate(train):
        by_patient[row.patient_id].append(index)
    rng = np.random.default_rng(0)
    same_best, chance_best = [], []
    for k, row in enumerate(shared):
        own = by_patient.get(row.patient_id, [])
        if not own:
            continue  # the id has only normal train images (never for personN ids, but be safe)
        similarity = train_f @ test_f[k]
        same_best.append(float(similarity[own].max()))
        others = np.setdiff1d(np.arange(len(train)), own)
        draws = [similarity[rng.choice(others, len(own), replace=False)].max() for _ in range(CHANCE_DRAWS)]
        chance_best.append(float(np.median(draws)))
    same, chance = np.array(same_best), np.array(chance_best)

    result = {
        "benchmark": "patient_overlap",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "model": predictor.model_ref.model_id,
        "threshold": threshold,
        "test_pneumonia_images": {"shared_id": n_shared, "id_only_in_test": n_unseen},
        "shared_ids": group_metrics(shared, test_p[:n_shared], viral[:n_shared], normals_p, threshold),
        "ids_only_in_test": group_metrics(
            unseen,
            test_p[n_shared : n_shared + n_unseen],
            viral[n_shared : n_shared + n_unseen],
            normals_p,
            threshold,
        ),
        "similarity": {
            "pairs": len(same),
            "own_id_best_cosine_median": round(float(np.median(same)), 4),
            "chance_best_cosine_median": round(float(np.median(chance)), 4),
            "own_id_more_alike_than_chance": round(float((same > chance).mean()), 4),
            "near_duplicates_own_id": int((same >= NEAR_DUPLICATE).sum()),
            "near_duplicates_chance": int((chance >= NEAR_DUPLICATE).sum()),
        },
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "patient_overlap.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
