"""A batch job: inputs minus what the output holds, read by one engine, rows appended to the output."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import Settings
from . import sinks
from .rows import tally
from .sources import Item, pending

FORMATS = ("jsonl", "parquet")


@dataclass
class Job:
    files: list[Path]
    fmt: str  # jsonl | parquet
    output: Path | None  # None: JSON lines to stdout (nothing to resume from)
    model: Path
    settings: Settings
    ray: str | None = None  # None: this machine's pool; else a Ray address, "auto" or "local"
    heatmaps: Path | None = None
    batch_size: int = 16
    skipped: int = 0
    counts: dict[str, int] = field(default_factory=dict)

    def todo(self) -> list[Item]:
        done = sinks.done(self.fmt, self.output) if self.output is not None else set()
        items = list(pending(self.files, done))
        self.skipped = len(self.files) - len(items)
        return items

    def read(self, items: list[Item]) -> Iterator[dict[str, Any]]:
        if self.ray is not None:
            from .cluster import read_on_ray

            return read_on_ray(items, self.ray, model=self.model, heatmaps=self.heatmaps, batch_size=self.batch_size,
                               threads=self.settings.intra_op_threads or 1, min_side=self.settings.min_side,
                               node_ip=self.settings.ray_node_ip)  # fmt: skip
        from ..inference import Predictor
        from .local import read_local

        predictor = Predictor.from_package(
            self.model, threads=self.settings.intra_op_threads, min_side=self.settings.min_side
        )
        return read_local(items, predictor, heatmaps=self.heatmaps, batch_size=self.batch_size)

    def run(
        self, items: list[Item], write: Callable[[dict[str, Any]], None], advance: Callable[[], None]
    ) -> None:
        """Read ``items``, handing each row to ``write`` (the sink, or stdout) as it comes."""
        for row in self.read(items):
            write(row)
            tally(self.counts, row)
            advance()
