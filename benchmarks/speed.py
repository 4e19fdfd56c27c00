"""Speed benchmark of inference on the Kermany test split (624 images), ours vs the naive way.

Each measurement runs in its own subprocess so peak memory (ru_maxrss) belongs to that mode alone.

    .venv/bin/python benchmarks/speed.py [--model PACKAGE (default: the bundled model)] [--data ../shared/data/kermany/test]
        [--checkpoint runs/bundled/checkpoints/best.pt] [--out benchmarks/results]

Modes:
  ours-single  Predictor.predict(path) one file at a time, heatmap on, cache off: latency p50/p95
  ours-batch   Predictor.predict_batch(all files) (decoder pool + batched ONNX Runtime, heatmaps on)
  naive        the way the systems we replace do it: PyTorch eager, torchvision transforms, one image at
               a time, Grad-CAM by autograd (same architecture; same weights when --checkpoint is given)
  startup      `cxr predict ONE_IMAGE --format json`, process start to exit (median of 5)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def _shown(path: Path) -> str:
    """A path as the reader would type it: relative to the checkout when it is inside it."""
    resolved = path.resolve()
    return str(resolved.relative_to(ROOT)) if resolved.is_relative_to(ROOT) else str(path)


def _files(data: Path) -> list[Path]:
    return sorted(p for p in data.rglob("*") if p.suffix.lower() in (".jpeg", ".jpg", ".png", ".dcm"))


def _percentiles(values_ms: list[float]) -> dict[str, float]:
    ordered = sorted(values_ms)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]

    return {"p50_ms": statistics.median(ordered), "p95_ms": pick(0.95), "mean_ms": statistics.fmean(ordered)}


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_ours_single(model: Path, files: list[Path]) -> dict[str, Any]:
    from cxr_pneumonia.inference import Predictor
    from cxr_pneumonia.inference.cache import MemoryCache

    predictor = Predictor.from_package(model, cache=MemoryCache(0))
    for f in files[:5]:  # warm-up
        with contextlib.suppress(Exception):
            predictor.predict(f, use_cache=False)
    latencies = []
    for f in files:
        start = time.perf_counter()
        with contextlib.suppress(Exception):  # a refusal is an answer too: it is timed the same way
            predictor.predict(f, use_cache=False)
        latencies.append((time.perf_counter() - start) * 1000)
    return {"images": len(files), **_percentiles(latencies), "peak_rss_mb": _peak_mb()}


def run_ours_batch(model: Path, files: list[Path]) -> dict[str, Any]:
    from cxr_pneumonia.inference import Predictor
    from cxr_pneumonia.inference.cache import MemoryCache

    predictor = Predictor.from_package(model, cache=MemoryCache(0))
    predictor.predict_batch(files[:16])  # warm-up
    start = time.perf_counter()
    results = predictor.predict_batch(files, batch_size=16, decode_workers=2)
    seconds = time.perf_counter() - start
    return {
        "images": len(results),
        "seconds": seconds,
        "images_per_s": len(results) / seconds,
        "peak_rss_mb": _peak_mb(),
    }


def run_naive(files: list[Path], checkpoint: Path | None) -> dict[str, Any]:
    import torch
    from PIL import Image
    from torchvision import transforms

    from cxr_pneumonia.models.network import build_model

    model, _ = build_model(pretrained=checkpoint is None)
    weights = "ImageNet backbone, untrained head (same architecture and compute)"
    if checkpoint is not None and checkpoint.is_file():
        model.load_state_dict(torch.load(checkpoint, map_location="cpu", weights_only=True)["model"])
        weights = f"trained checkpoint {checkpoint}"
    model.eval()
    transform = transforms.Compose(
        [
            transforms.Resize((224, 224)),
            transforms.ToTensor(),
            transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
        ]
    )

    def one(path: Path) -> None:
        image = transform(Image.open(path).convert("RGB")).unsqueeze(0)
        logits, features = model(image)
        features.retain_grad()
        score = torch.logsumexp(logits[:, 1:], dim=1) - logits[:, 0]
        model.zero_grad()
        score.sum().backward()
        cam = torch.relu((features.grad.mean(dim=(2, 3), keepdim=True) * features).sum(dim=1))
        torch.nn.functional.interpolate(cam[None], size=(224, 224), mode="bilinear")

    for f in files[:5]:
        one(f)
    latencies = []
    start = time.perf_counter()
    for f in files:
        t = time.perf_counter()
        one(f)
        latencies.append((time.perf_counter() - t) * 1000)
    seconds = time.perf_counter() - start
    return {
        "images": len(files),
        "seconds": seconds,
        "images_per_s": len(files) / seconds,
        **_percentiles(latencies),
        "peak_rss_mb": _peak_mb(),
        "weights": weights,
        "torch_threads": torch.get_num_threads(),
    }


def run_startup(model: Path, image: Path, repeats: int = 5) -> dict[str, Any]:
    cxr = Path(sys.executable).parent / "cxr"
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(
            [str(cxr), "predict", str(image), "--model", str(model), "--format", "json"],
            check=True,
            capture_output=True,
        )
        times.append(time.perf_counter() - start)
    return {"median_s": statistics.median(times), "runs_s": times}


def _child(mode: str, args: argparse.Namespace) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", mode, "--model", str(args.model), "--data", str(args.data)]
        + (["--checkpoint", str(args.checkpoint)] if args.checkpoint else []),
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def markdown(result: dict[str, Any]) -> str:
    single, batch, naive, startup = (result[k] for k in ("ours_single", "ours_batch", "naive", "startup"))
    t = result["targets"]
    rows = [
        "| measure | ours | naive (PyTorch eager, one at a time) | target |",
        "|---|---|---|---|",
        f"| single-image latency p50 (file → prediction + heatmap) | {single['p50_ms']:.1f} ms | {naive['p50_ms']:.1f} ms | ≤ {t['p50_ms']} ms |",
        f"| single-image latency p95 | {single['p95_ms']:.1f} ms | {naive['p95_ms']:.1f} ms | |",
        f"| throughput, 624 images | {batch['images_per_s']:.1f} img/s | {naive['images_per_s']:.1f} img/s | ≥ {t['images_per_s']} img/s and ≥ {t['ratio']}x naive |",
        f"| speed-up (throughput ratio) | {result['speedup']:.1f}x | 1x | |",
        f"| peak memory (RSS) | {batch['peak_rss_mb']:.0f} MB (batch), {single['peak_rss_mb']:.0f} MB (single) | {naive['peak_rss_mb']:.0f} MB | |",
        f"| `cxr predict` one image, start to exit (median of 5) | {startup['median_s']:.2f} s | | ≤ {t['startup_s']} s |",
    ]
    return (
        f"Measured {result['measured']} on {result['machine']}; model `{result['model']}`; "
        f"naive weights: {naive['weights']}.\n\n" + "\n".join(rows) + "\n"
    )


def main() -> None:
    from cxr_pneumonia.config import default_model_path

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", type=Path, default=default_model_path())
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "kermany" / "test")
    parser.add_argument("--checkpoint", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    files = _files(args.data)
    if args.child:
        runners = {
            "ours-single": lambda: run_ours_single(args.model, files),
            "ours-batch": lambda: run_ours_batch(args.model, files),
            "naive": lambda: run_naive(files, args.checkpoint),
        }
        print(json.dumps(runners[args.child]()))
        return
    if not files:
        sys.exit(f"no images under {args.data}")
    result: dict[str, Any] = {
        "measured": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": f"{platform.machine()}, {__import__('os').cpu_count()} cores, Python {platform.python_version()}",
        "model": _shown(args.model),
        "data": _shown(args.data),
        "images": len(files),
        "targets": {"p50_ms": 30, "images_per_s": 60, "ratio": 3, "startup_s": 1.5},
    }
    for key, mode in (("ours_single", "ours-single"), ("ours_batch", "ours-batch"), ("naive", "naive")):
        print(f"running {mode} ...", file=sys.stderr)
        result[key] = _child(mode, args)
    print("running startup ...", file=sys.stderr)
    result["startup"] = run_startup(args.model, files[0])
    result["speedup"] = result["ours_batch"]["images_per_s"] / result["naive"]["images_per_s"]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "speed.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "speed.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
