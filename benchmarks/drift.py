"""The drift detector measured offline with `cxr monitor replay`'s code (monitoring/replay.py).

With the bundled model (or --model) and its reference (the package's own, else built from the
validation split of its training data, never test):

1. the Kermany test split alone (624 images, the model's own population): which tests alarm, and
   false alarms per 1,000 in-population images (inputs seen while an input or feature test alarmed);
2. the test split, then nih-sample (mostly adults, another hospital): the detection delay, inputs
   after the switch until the first input or feature alarm (the issue asks for at most 50);
3. the test split with a brightness/contrast shift (a new X-ray machine: contrast x0.55, +95 grey
   levels): the delay until the first input alarm.

    .venv/bin/python benchmarks/drift.py [--model PKG] [--data ../shared/data] [--out benchmarks/results]

Writes drift.json. An output alarm on the test split is a true prevalence shift (62.5% pneumonia
against ~74% in validation), reported as such, not as a false alarm.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DRIFT_KINDS = ("input", "feature")


def _first(result: Any, kinds: tuple[str, ...], start: int = 0) -> int | None:
    alarms = [
        i
        for name, i in result.first_alarm.items()
        if result.kinds[name] in kinds and i is not None and i >= start
    ]
    return min(alarms) if alarms else None


def _tests(result: Any) -> list[dict[str, Any]]:
    return result.to_dict()["tests"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = parser.parse_args()

    from PIL import Image

    from cxr_pneumonia.config import get_settings
    from cxr_pneumonia.inference import Predictor
    from cxr_pneumonia.monitoring.detector import DriftConfig
    from cxr_pneumonia.monitoring.provide import reference_for
    from cxr_pneumonia.monitoring.replay import replay

    settings = get_settings()
    predictor = Predictor.from_package(args.model or settings.model_path, min_side=settings.min_side)
    started = time.monotonic()
    reference = reference_for(predictor, settings)
    config = DriftConfig.from_settings(settings)
    test = str(args.data / "kermany" / "test")
    nih = str(args.data / "nih-sample" / "images")

    in_population = replay(predictor, reference, [test], config=config)
    n_test = in_population.images
    alarmed = sum(in_population.alarmed_inputs.get(k, 0) for k in DRIFT_KINDS)
    switch = replay(predictor, reference, [test, nih], config=config)
    first_after = _first(switch, DRIFT_KINDS, start=n_test)
    first_any = _first(switch, DRIFT_KINDS)
    before_switch = first_any if first_any is not None and first_any < n_test else None

    with tempfile.TemporaryDirectory() as tmp:
        import numpy as np

        for path in sorted(Path(test).glob("*/*.jpeg")):
            pixels = np.asarray(Image.open(path).convert("L"), dtype=np.float64)
            shifted = np.clip(pixels * 0.55 + 95.0, 0, 255).astype(np.uint8)
            Image.fromarray(shifted).save(Path(tmp) / f"{path.parent.name}-{path.name}", quality=92)
        shift = replay(predictor, reference, [tmp], config=config)

    load = os.getloadavg()[0]
    result = {
        "benchmark": "drift",
        "model": predictor.model_ref.model_id,
        "reference": {
            "images": reference.size,
            **{k: reference.info.get(k) for k in ("selection", "data_source", "rows")},
        },
        "config": {
            "window": config.window,
            "eval_every": config.eval_every,
            "min_count": config.min_count,
            "alpha": config.alpha,
            "persistence": config.persistence,
        },
        "kermany_test": {
            "images": n_test,
            "first_input_or_feature_alarm": _first(in_population, DRIFT_KINDS),
            "first_output_alarm": _first(in_population, ("output",)),
            "false_alarm_inputs_per_1000": 1000.0 * alarmed / max(1, n_test),
            "tests": _tests(in_population),
        },
        "kermany_test_then_nih": {
            "switch_at": n_test,
            "images": switch.images,
            "first_input_or_feature_alarm_before_switch": before_switch,
            "first_input_or_feature_alarm_after_switch": first_after,
            "detection_delay": None if first_after is None else first_after - n_test,
            # the done-when: none before the switch, one within 50 images after it
            "done_when_met": before_switch is None and first_after is not None and first_after <= n_test + 50,
            "tests": _tests(switch),
        },
        "kermany_test_brightness_contrast_shift": {
            "shift": "contrast x0.55, brightness +95 grey levels",
            "images": shift.images,
            "first_input_alarm": _first(shift, ("input",)),
            "tests": _tests(shift),
        },
        "seconds": round(time.monotonic() - started, 1),
        "machine": {
            "python": sys.version.split()[0],
            "cores": os.cpu_count(),
            "load_1min": load,
            "loaded_machine": load > 0.5 * (os.cpu_count() or 1),
        },
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "drift.json").write_text(json.dumps(result, indent=2) + "\n")
    print(
        json.dumps(
            {
                k: v
                for k, v in result.items()
                if k
                not in ("kermany_test", "kermany_test_then_nih", "kermany_test_brightness_contrast_shift")
            },
            indent=2,
        )
    )
    for key in ("kermany_test", "kermany_test_then_nih", "kermany_test_brightness_contrast_shift"):
        print(key, {k: v for k, v in result[key].items() if k != "tests"})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
