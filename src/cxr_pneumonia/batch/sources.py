"""What a batch job reads: files, folders, globs and CSV manifests; minus what its output already holds."""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import CXRError
from ..inference.inputs import expand_inputs

MANIFEST_COLUMN = "path"


@dataclass(frozen=True)
class Item:
    path: Path
    sha256: str  # of the file's bytes; "" when the file could not be read (it becomes a failed row)


def read_manifest(manifest: Path) -> list[Path]:
    """The ``path`` column of a CSV manifest (e.g. `cxr data` manifests); relative paths are taken
    from the manifest's folder. Other columns are ignored."""
    try:
        with manifest.open(newline="") as handle:
            reader = csv.DictReader(handle)
            if reader.fieldnames is None or MANIFEST_COLUMN not in reader.fieldnames:
                raise CXRError(
                    f"{manifest}: a manifest needs a '{MANIFEST_COLUMN}' column", code="bad_manifest"
                )
            paths = [row[MANIFEST_COLUMN] for row in reader if row.get(MANIFEST_COLUMN)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise CXRError(f"{manifest}: cannot read the manifest ({exc})", code="bad_manifest") from None
    return [p if p.is_absolute() else manifest.parent / p for p in map(Path, paths)]


def expand_sources(items: list[str]) -> tuple[list[Path], list[str]]:
    """Like `cxr predict`'s inputs, where an argument ending in .csv is a manifest of files to read."""
    plain = [item for item in items if not item.lower().endswith(".csv")]
    files, problems = expand_inputs(plain) if plain else ([], [])
    for item in items:
        if item.lower().endswith(".csv"):
            listed = read_manifest(Path(item))
            if not listed:
                problems.append(f"{item}: the manifest lists no files")
            files.extend(listed)
    seen: set[Path] = set()
    return [f for f in files if not (f in seen or seen.add(f))], problems  # type: ignore[func-returns-value]


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    try:
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return ""
    return digest.hexdigest()


def pending(files: Iterable[Path], done: set[tuple[str, str]]) -> Iterator[Item]:
    """The inputs still to read: those whose (path, sha256) is not in ``done`` (the output's rows).
    Keyed on both: a file changed in place is read again, and two copies of one image are two rows."""
    for path in files:
        sha256 = file_sha256(path)
        if (str(path), sha256) not in done or not sha256:
            yield Item(path, sha256)
