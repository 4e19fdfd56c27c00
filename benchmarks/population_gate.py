"""How often a model answers, with no refer flag, radiographs of a population it was not made for.

Runs the package over every image of an external sample (default: ../shared/data/nih-sample, adults)
and over the Kermany test split, and reports the share answered with no refer flag, referred and
refused. When the package's population gate was fitted on part of that sample (model.json
`training.population_gate`), the sample is split again with the recorded seed and fraction, and the
figures that count are those of the half that nothing was fitted on.

    .venv/bin/python benchmarks/population_gate.py [--model PACKAGE (default: the bundled model)] [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from cxr_pneumonia.config import default_model_path
from cxr_pneumonia.data.external import external_halves, read_external
from cxr_pneumonia.errors import CXRError
from cxr_pneumonia.inference import Prediction, Predictor

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"


def rates(results: list[Prediction | CXRError]) -> dict[str, Any]:
    n = max(len(results), 1)
    answered = [r for r in results if isinstance(r, Prediction)]
    return {
        "images": len(results),
        "unflagged": sum(1 for r in answered if not r.refer),
        "unflagged_rate": sum(1 for r in answered if not r.refer) / n,
        "referred_rate": sum(1 for r in answered if r.refer) / n,
        "atypical_rate": sum(1 for r in answered if r.outside_population) / n,
        "refused_rate": sum(1 for r in results if not isinstance(r, Prediction)) / n,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=default_model_path())
    parser.add_argument("--external", type=Path, default=SHARED / "nih-sample" / "findings.csv")
    parser.add_argument("--kermany", type=Path, default=SHARED / "kermany")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()

    predictor = Predictor.from_package(args.model)
    gate = predictor.package.manifest.training.get("population_gate")
    images = read_external(args.external)
    by_path = dict(
        zip(
            [i.path for i in images],
            predictor.predict_batch([i.path for i in images], heatmap=False),
            strict=True,
        )
    )
    result: dict[str, Any] = {"model": predictor.model_ref.model_id, "digest": predictor.model_ref.digest}
    result["external_all"] = rates(list(by_path.values()))
    if gate and Path(gate["outliers"]).resolve() == args.external.resolve():
        fitted, untouched = external_halves(args.external, gate["fit_fraction"], gate["seed"])
        result["external_untouched_half"] = rates([by_path[i.path] for i in untouched])
        result["external_fitted_half"] = rates([by_path[i.path] for i in fitted])
        result["note"] = (
            "the gate was fitted on external_fitted_half: external_untouched_half is the figure that counts"
        )
    test = sorted((args.kermany / "test").rglob("*.jpeg"))
    result["kermany_test"] = rates(predictor.predict_batch(test, heatmap=False))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "population_gate.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
