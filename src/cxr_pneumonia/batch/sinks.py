"""Appendable outputs: JSON lines (one file) and Parquet (a folder of parts). Rows are written as they
come, so a killed job loses at most the rows not yet flushed, and `done()` says what a re-run skips."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Protocol

from ..errors import CXRError
from .rows import arrow_schema

PARQUET_ROWS_PER_PART = 256


class Sink(Protocol):
    def write(self, row: dict[str, Any]) -> None: ...
    def close(self) -> None: ...


class JsonLinesSink:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        _cut_partial_line(path)
        self._handle = path.open("a", encoding="utf-8")

    def write(self, row: dict[str, Any]) -> None:
        self._handle.write(json.dumps(row) + "\n")
        self._handle.flush()

    def close(self) -> None:
        self._handle.close()


def _cut_partial_line(path: Path) -> None:
    """A killed run may leave its last line cut short: drop it (that input is read again) so the rows
    appended next start on a line of their own."""
    if not path.is_file() or path.stat().st_size == 0:
        return
    data = path.read_bytes()
    if not data.endswith(b"\n"):
        with path.open("r+b") as handle:
            handle.truncate(data.rfind(b"\n") + 1)


def _pyarrow() -> Any:
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise CXRError(
            "Parquet output needs pyarrow: pip install pyarrow (the cluster extra brings it)",
            code="missing_dependency",
        ) from None
    return pyarrow


class ParquetSink:
    """``<dir>/part-<time>-<n>.parquet``, a part per PARQUET_ROWS_PER_PART rows and one at close.
    A part is written to a temporary name and renamed, so a reader never sees half a part."""

    def __init__(self, directory: Path) -> None:
        self._pa = _pyarrow()
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self._rows: list[dict[str, Any]] = []
        self._stamp = f"{time.time_ns():020d}"
        self._parts = 0

    def write(self, row: dict[str, Any]) -> None:
        self._rows.append(row)
        if len(self._rows) >= PARQUET_ROWS_PER_PART:
            self._flush()

    def close(self) -> None:
        self._flush()

    def _flush(self) -> None:
        if not self._rows:
            return
        table = self._pa.Table.from_pylist(self._rows, schema=arrow_schema(self._pa))
        target = self.directory / f"part-{self._stamp}-{self._parts:05d}.parquet"
        temporary = target.with_name(f".{target.name}.tmp")
        self._pa.parquet.write_table(table, temporary)
        os.replace(temporary, target)
        self._parts += 1
        self._rows = []


def open_sink(fmt: str, output: Path) -> Sink:
    return ParquetSink(output) if fmt == "parquet" else JsonLinesSink(output)


def read_rows(fmt: str, output: Path) -> list[dict[str, Any]]:
    """Every row an output holds (none when it does not exist yet)."""
    if fmt == "parquet":
        if not output.is_dir():
            return []
        pa = _pyarrow()
        rows: list[dict[str, Any]] = []
        for part in sorted(output.glob("part-*.parquet")):
            rows.extend(pa.parquet.read_table(part).to_pylist())
        return rows
    if not output.is_file():
        return []
    rows = []
    for line in output.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # the last line of a killed run may be cut short: that input is read again
    return rows


def done(fmt: str, output: Path) -> set[tuple[str, str]]:
    return {(row["path"], row["sha256"]) for row in read_rows(fmt, output) if row.get("sha256")}
