"""Try an int8 (static, QDQ) variant of a model package and compare it with fp32.

Calibration images come from the *train* split (never test). The rule from the inference issue: keep
the int8 variant only if its test AUROC is within 0.005 of fp32. Both are reported either way.

    .venv/bin/python benchmarks/quantization.py [--model models/cxr-effnet-lite0] [--data ../shared/data/kermany]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

from cxr_pneumonia.imaging import load
from cxr_pneumonia.imaging.preprocess import to_model_input
from cxr_pneumonia.package import ModelPackage
from cxr_pneumonia.training.metrics import auroc

ROOT = Path(__file__).resolve().parent.parent


class _Reader(CalibrationDataReader):
    def __init__(self, batches: list[np.ndarray]) -> None:
        self._batches = iter(batches)

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self._batches, None)
        return None if batch is None else {"image": batch}


def _tensors(files: list[Path], package: ModelPackage) -> np.ndarray:
    return np.stack([to_model_input(load(f), package.manifest.preprocess) for f in files])


def _scores(session: ort.InferenceSession, tensors: np.ndarray, temperature: float) -> np.ndarray:
    out = []
    for start in range(0, len(tensors), 32):
        (logits,) = session.run(["logits"], {"image": tensors[start : start + 32]})
        z = logits / temperature
        p = np.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        out.append(1.0 - p[:, 0])
    return np.concatenate(out)


def _throughput(session: ort.InferenceSession, tensors: np.ndarray) -> float:
    session.run(["logits"], {"image": tensors[:16]})
    start = time.perf_counter()
    for begin in range(0, len(tensors), 16):
        session.run(["logits", "features"], {"image": tensors[begin : begin + 16]})
    return len(tensors) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "cxr-effnet-lite0")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "kermany")
    parser.add_argument("--calibration-images", type=int, default=256)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()

    package = ModelPackage.open(args.model)
    rng = np.random.default_rng(0)
    train_files = sorted((args.data / "train").rglob("*.jpeg"))
    calibration_files = [
        train_files[i] for i in rng.choice(len(train_files), args.calibration_images, replace=False)
    ]
    test_files = sorted((args.data / "test").rglob("*.jpeg"))
    y_test = np.array([0 if f.parent.name == "NORMAL" else 1 for f in test_files])

    calibration = _tensors(calibration_files, package)
    test = _tensors(test_files, package)
    with tempfile.TemporaryDirectory() as tmp:
        int8_path = Path(tmp) / "model.int8.onnx"
        quantize_static(
            str(package.onnx_path),
            str(int8_path),
            _Reader([calibration[i : i + 16] for i in range(0, len(calibration), 16)]),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            per_channel=True,
        )
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        fp32 = ort.InferenceSession(str(package.onnx_path), options, providers=["CPUExecutionProvider"])
        int8 = ort.InferenceSession(str(int8_path), options, providers=["CPUExecutionProvider"])
        temperature = package.manifest.calibration.temperature
        result: dict[str, Any] = {
            "model": package.manifest.model_id,
            "calibration_images": len(calibration_files),
            "fp32": {
                "test_auroc": auroc(y_test, _scores(fp32, test, temperature)),
                "images_per_s": _throughput(fp32, test),
                "size_mb": package.onnx_path.stat().st_size / 1e6,
            },
            "int8": {
                "test_auroc": auroc(y_test, _scores(int8, test, temperature)),
                "images_per_s": _throughput(int8, test),
                "size_mb": int8_path.stat().st_size / 1e6,
            },
        }
    result["auroc_drop"] = result["fp32"]["test_auroc"] - result["int8"]["test_auroc"]
    result["speedup"] = result["int8"]["images_per_s"] / result["fp32"]["images_per_s"]
    result["keep_int8"] = bool(result["auroc_drop"] <= 0.005 and result["speedup"] > 1.0)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "quantization.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
