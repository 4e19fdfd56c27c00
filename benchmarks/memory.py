"""Memory benchmark of decoding under attack: small files that declare huge images, all at once.

Starts a real `cxr serve` (one worker, SQLite, default input limits) on a free loopback port, then:

1. times one upload of a 4200x4200 PNG (the largest radiograph the default limit takes: a real
   Kermany test image scaled up, so the model reads something chest-like),
2. posts 8 uploads of a 9999x10000 grey PNG (~120 kB) and 8 of the 4200x4200 PNG at the same time,

and reads the server's peak resident memory from the kernel (VmHWM in /proc/PID/status), its RSS
before and a few seconds after the burst. Targets: peak RSS < 1.5 GB, one 4200x4200 upload < 1.5 s.
Every answer must be a 200, a 413/422 refusal: never a transport error or a 5xx.

    .venv/bin/python benchmarks/memory.py [--model models/cxr-effnet-lite0]
        [--image ../shared/data/kermany/test/PNEUMONIA/person100_bacteria_475.jpeg] [--out benchmarks/results]
        [--note "measured while a model trained on both cores"]

Linux only (reads /proc). Not a test: it writes memory.json and exits 0 even when a target is missed.
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from api_load import API, ROOT, api_key, start_server, stop_server

TARGETS = {"peak_rss_mb": 1500.0, "one_4200_upload_s": 1.5}
KERMANY = ROOT.parent / "shared/data/kermany/test/PNEUMONIA/person100_bacteria_475.jpeg"


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def inputs(source: Path) -> tuple[bytes, bytes]:
    """(9999x10000 flat grey PNG, 4200x4200 PNG of a real radiograph), both generated here."""
    huge = _png(Image.new("L", (9999, 10000), 128))
    with Image.open(source) as radiograph:
        large = _png(radiograph.convert("L").resize((4200, 4200), Image.Resampling.BICUBIC))
    return huge, large


def _status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/{pid}/status")


def _post(url: str, key: str, name: str, data: bytes) -> tuple[int | str, float]:
    started = time.perf_counter()
    try:
        response = httpx.post(
            f"{url}{API}/predict",
            files={"file": (name, data, "image/png")},
            headers={"X-API-Key": key},
            timeout=120,
        )
        return response.status_code, time.perf_counter() - started
    except httpx.HTTPError as exc:
        return type(exc).__name__, time.perf_counter() - started


def run(model: Path, source: Path) -> dict[str, Any]:
    huge, large = inputs(source)
    with tempfile.TemporaryDirectory(prefix="cxr-memory-") as tmp:
        data_dir = Path(tmp) / "var"
        server = start_server(model, data_dir, workers=1, threads=0, slots=0)
        try:
            key = api_key(server)
            pid = server.process.pid
            _post(server.url, key, "warm.png", large)  # the first inference pays for lazy setup
            rss_before = _status_kb(pid, "VmRSS")
            single = [_post(server.url, key, "large.png", large) for _ in range(3)]
            uploads = [("huge.png", huge)] * 8 + [("large.png", large)] * 8
            with ThreadPoolExecutor(max_workers=len(uploads)) as pool:
                burst = list(pool.map(lambda item: _post(server.url, key, *item), uploads))
            peak = _status_kb(pid, "VmHWM")
            time.sleep(3)
            rss_after = _status_kb(pid, "VmRSS")
        finally:
            stop_server(server)
    statuses: dict[str, int] = {}
    for (name, _), (status, _) in zip(uploads, burst, strict=True):
        statuses[f"{name}:{status}"] = statuses.get(f"{name}:{status}", 0) + 1
    one_upload = statistics.median(seconds for _, seconds in single)
    return {
        "inputs": {
            "huge_png": {"pixels": "9999x10000", "bytes": len(huge)},
            "large_png": {"pixels": "4200x4200", "bytes": len(large), "from": source.name},
        },
        "one_4200_upload_s": round(one_upload, 3),
        "one_4200_upload_statuses": [status for status, _ in single],
        "burst": {"uploads": len(uploads), "statuses": statuses},
        "rss_mb": {
            "before": round(rss_before / 1024, 1),
            "peak": round(peak / 1024, 1),
            "after": round(rss_after / 1024, 1),
        },
        "failures": [s for s, _ in burst + single if not isinstance(s, int) or s >= 500],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", type=Path, default=ROOT / "models/cxr-effnet-lite0")
    parser.add_argument("--image", type=Path, default=KERMANY)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results")
    parser.add_argument("--note", default="", help="how the machine was loaded while it ran")
    args = parser.parse_args()
    result = run(args.model, args.image)
    result["targets"] = TARGETS
    result["met"] = {
        "peak_rss_mb": result["rss_mb"]["peak"] < TARGETS["peak_rss_mb"] and not result["failures"],
        "one_4200_upload_s": result["one_4200_upload_s"] < TARGETS["one_4200_upload_s"],
    }
    result["machine"] = {"platform": platform.platform(), "python": platform.python_version()}
    result["note"] = args.note
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "memory.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
