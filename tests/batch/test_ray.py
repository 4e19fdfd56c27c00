"""`cxr predict --ray` on a real two-node Ray cluster on loopback: the same rows as the local path,
an undecodable input as a failed row, and a worker killed mid-run survived with no row lost or doubled."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import RayCluster, read_jsonl, run_predict

pytestmark = pytest.mark.slow

SUBSET_STEP = 8  # every 8th image of the Kermany test split (78 of 624); benchmarks/ray_batch.py reads all


@pytest.fixture(scope="module")
def subset(kermany: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CSV manifest of a fixed subset of the test split, plus a file that is no image at all."""
    images = sorted((kermany / "test").glob("*/*.jpeg"))[::SUBSET_STEP]
    broken = tmp_path_factory.mktemp("broken") / "truncated.jpeg"
    broken.write_bytes(images[0].read_bytes()[:300])  # a JPEG cut short: it does not decode
    manifest = tmp_path_factory.mktemp("manifest") / "subset.csv"
    manifest.write_text("path,label\n" + "".join(f"{p},x\n" for p in [*images, broken]))
    return manifest


def _by_path(rows: list[dict]) -> dict[str, dict]:
    found = {row["path"]: row for row in rows}
    assert len(found) == len(rows), "a path appears twice"
    return found


def test_ray_gives_the_rows_of_the_local_path(ray_cluster: RayCluster, subset: Path, tmp_path: Path) -> None:
    local, remote = tmp_path / "local.jsonl", tmp_path / "ray.jsonl"
    done = run_predict([str(subset), "--format", "jsonl", "--output", str(local)])
    assert done.returncode == 1, done.stderr  # 1: the broken input failed
    done = run_predict([str(subset), "--format", "jsonl", "--output", str(remote), "--ray", ray_cluster.address],
                       env={"CXR_RAY_NODE_IP": "127.0.0.2"})  # fmt: skip
    assert done.returncode == 1, done.stderr
    ours, theirs = _by_path(read_jsonl(local)), _by_path(read_jsonl(remote))
    expected = len(subset.read_text().splitlines()) - 1
    assert set(ours) == set(theirs) and len(ours) == expected
    for path, row in ours.items():
        other = theirs[path]
        for key in (
            "sha256",
            "status",
            "label",
            "refer",
            "subtype",
            "findings",
            "error",
            "reason",
            "model_digest",
        ):
            assert row[key] == other[key], (path, key)
        for key in ("p_pneumonia", "p_bacterial", "p_viral", "ood_score"):
            if row[key] is not None:  # one session per actor, one thread each: floats agree to 1e-5
                assert abs(row[key] - other[key]) <= 1e-5 * max(1.0, abs(row[key])), (path, key)
    failed = [row for row in theirs.values() if row["status"] == "failed"]
    assert [Path(row["path"]).name for row in failed] == ["truncated.jpeg"]
    assert failed[0]["error"] and failed[0]["sha256"]


def _map_workers() -> list[int]:
    """Ray Data's actor processes (their process title starts ray::MapWorker)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if command.startswith(b"ray::MapWorker"):
                pids.append(int(entry.name))
    return pids


def test_a_worker_killed_mid_run_loses_and_doubles_nothing(
    ray_cluster: RayCluster, kermany: Path, tmp_path: Path
) -> None:
    images = sorted((kermany / "test").glob("*/*.jpeg"))[1::SUBSET_STEP][:48]
    manifest = tmp_path / "kill.csv"
    manifest.write_text("path\n" + "".join(f"{p}\n" for p in images))
    output = tmp_path / "ray.jsonl"
    env = {**os.environ, **ray_cluster.env, "CXR_RAY_NODE_IP": "127.0.0.2"}
    job = subprocess.Popen(
        [sys.executable, "-m", "cxr_pneumonia.cli", "predict", str(manifest), "--format", "jsonl",
         "--output", str(output), "--ray", ray_cluster.address, "--batch-size", "4"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    before = set(_map_workers())
    killed = None
    deadline = time.monotonic() + 600
    while killed is None and time.monotonic() < deadline and job.poll() is None:
        workers = [pid for pid in _map_workers() if pid not in before]
        if output.exists() and output.read_text().count("\n") >= 4 and workers:
            killed = workers[0]
            os.kill(killed, signal.SIGKILL)
        time.sleep(0.2)
    _, stderr = job.communicate(timeout=600)
    assert killed is not None, "the job ended before a worker could be killed: " + stderr
    assert job.returncode == 0, stderr
    rows = read_jsonl(output)
    assert sorted(row["path"] for row in rows) == sorted(map(str, images))  # none missing, none twice
    assert all(row["status"] == "ok" for row in rows)
