"""Expand command-line inputs (files, directories, globs) into a sorted list of files."""

from __future__ import annotations

import glob
from pathlib import Path

_WILDCARDS = set("*?[")


def expand_inputs(items: list[str]) -> tuple[list[Path], list[str]]:
    """(files, problems). Directories are walked recursively; hidden files are skipped."""
    files: list[Path] = []
    problems: list[str] = []
    for item in items:
        if _WILDCARDS & set(item):
            matches = sorted(Path(m) for m in glob.glob(item, recursive=True))
            found = [m for m in matches if m.is_file()]
            if not found:
                problems.append(f"{item}: no file matches")
            files.extend(found)
            continue
        path = Path(item)
        if path.is_dir():
            found = sorted(
                p
                for p in path.rglob("*")
                if p.is_file() and not any(part.startswith(".") for part in p.parts[-1:])
            )
            if not found:
                problems.append(f"{item}: the directory holds no files")
            files.extend(found)
        elif path.exists():
            files.append(path)
        else:
            problems.append(f"{item}: no such file or directory")
    seen: set[Path] = set()
    unique = [f for f in files if not (f in seen or seen.add(f))]  # type: ignore[func-returns-value]
    return unique, problems
