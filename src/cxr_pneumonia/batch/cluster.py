"""The Ray engine (the ``cluster`` extra): Ray Data spreads the inputs over a pool of actors, one per
CPU of the cluster, each holding one Predictor (one ONNX Runtime session) for its whole life.

Actors read the files by path, so every node must see the inputs (and the heatmap folder) at the same
paths: a shared file system. Rows come back to the driver, which alone writes the output; a task lost
with its worker is re-run by Ray, and its rows only count once they reach the driver, so nothing is
written twice.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import CXRError
from ..inference.prediction import Prediction
from .rows import FIELDS, arrow_schema, failed_row, result_row
from .sources import Item

LOCAL_OBJECT_STORE_BYTES = 200_000_000  # `--ray local`: Ray would take 30 % of RAM in /dev/shm otherwise


def _ray() -> Any:
    # Ray reports usage to its makers unless told not to; this must be set before it is imported.
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        import ray
        import ray.data
    except ImportError:
        raise CXRError(
            "--ray needs Ray: pip install 'cxr-pneumonia[cluster]' (ray[data])", code="missing_dependency"
        ) from None
    return ray


def connect(address: str, node_ip: str | None = None) -> Any:
    """Join the cluster at ``address`` ("auto": the one this machine belongs to; "local": start one
    here for this job, on a loopback address). ``node_ip``: this machine's Ray node (CXR_RAY_NODE_IP)."""
    ray = _ray()
    if ray.is_initialized():
        return ray
    options: dict[str, Any] = {"log_to_driver": False}
    if address == "local":
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a private cluster of this job only
        options.update(object_store_memory=LOCAL_OBJECT_STORE_BYTES, include_dashboard=False)
        node_ip = node_ip or "127.0.0.2"
    if node_ip:
        options["_node_ip_address"] = node_ip
    ray.init(address=address, **options)
    ray.data.DataContext.get_current().enable_progress_bars = False  # the CLI shows its own
    return ray


class Reader:
    """A Ray Data actor: a Predictor opened once, reading batches of (path, sha256) into rows."""

    def __init__(self, model: str, heatmaps: str | None, threads: int, min_side: int) -> None:
        from ..inference import Predictor

        self.predictor = Predictor.from_package(Path(model), threads=threads, min_side=min_side)
        self.heatmaps = Path(heatmaps) if heatmaps else None

    def __call__(self, batch: dict[str, Any]) -> Any:
        import pyarrow

        items = [Item(Path(str(p)), str(s)) for p, s in zip(batch["path"], batch["sha256"], strict=True)]
        try:
            rows = self._rows(items)
        except Exception:  # one input broke the batch in an unexpected way: read them one by one
            rows = [row for item in items for row in self._rows_or_failed([item])]
        return pyarrow.Table.from_pylist(rows, schema=arrow_schema(pyarrow))

    def _rows(self, items: list[Item]) -> list[dict[str, Any]]:
        from ..inference.output import write_heatmap

        results = self.predictor.iter_predict(
            [i.path for i in items], heatmap=self.heatmaps is not None, batch_size=max(1, len(items))
        )
        rows = []
        for item, result in zip(items, results, strict=True):
            if self.heatmaps is not None and isinstance(result, Prediction):
                write_heatmap(item.path, result, self.heatmaps)
            rows.append(result_row(item.path, item.sha256, result))
        return rows

    def _rows_or_failed(self, items: list[Item]) -> list[dict[str, Any]]:
        try:
            return self._rows(items)
        except Exception as exc:
            return [failed_row(item.path, item.sha256, exc) for item in items]


def read_on_ray(
    items: list[Item],
    address: str,
    *,
    model: Path,
    heatmaps: Path | None,
    batch_size: int,
    threads: int,
    min_side: int,
    node_ip: str | None = None,
) -> Iterator[dict[str, Any]]:
    """Rows as they come back from the cluster (not in input order)."""
    if not items:
        return
    ray = connect(address, node_ip)
    actors = max(1, int(ray.cluster_resources().get("CPU", 1)))
    dataset = ray.data.from_items(
        [{"path": str(i.path), "sha256": i.sha256} for i in items],
        override_num_blocks=max(1, min(len(items) // max(1, batch_size), 4 * actors)),
    )
    rows = dataset.map_batches(
        Reader,
        fn_constructor_args=(
            str(model.resolve()),
            str(heatmaps.resolve()) if heatmaps else None,
            threads,
            min_side,
        ),
        batch_size=batch_size,
        batch_format="numpy",
        concurrency=actors,
        num_cpus=1,
        max_restarts=-1,  # a worker that dies is replaced and its batch run again
        max_task_retries=-1,
    )
    for row in rows.iter_rows():
        yield {name: _plain(row.get(name)) for name in FIELDS}


def _plain(value: Any) -> Any:
    """numpy scalars (what Ray hands back) as Python values; NaN from a null float column as None."""
    value = value.item() if hasattr(value, "item") else value
    return None if isinstance(value, float) and value != value else value
