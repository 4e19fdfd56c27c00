"""The licence report of the base install (`python -m cxr_pneumonia.licences [--check]`).

The base install is what `pip install cxr-pneumonia` pulls (no extras): walked from our own
requirements through importlib.metadata. --check fails on GPL or AGPL (the project is Apache-2.0 and
is shipped as a whole); LGPL is allowed because those libraries are linked dynamically and can be
replaced by the user (psycopg and its libpq wrapper, LGPL-3.0-only), which is what the LGPL asks.
"""

from __future__ import annotations

import re
import sys
import tomllib
from importlib.metadata import PackageNotFoundError, distribution, version
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement

ROOT = "cxr-pneumonia"
_STRONG_COPYLEFT = re.compile(r"\b(A?GPL|GNU (Affero )?General Public)", re.I)
_LESSER = re.compile(r"\b(LGPL|Lesser|Library General)", re.I)


def licence_of(name: str) -> str:
    meta: dict[str, Any] = distribution(name).metadata.json  # keys in lower case, lists for repeats
    if meta.get("license_expression"):
        return str(meta["license_expression"])
    classifiers = [c.split(" :: ")[-1] for c in meta.get("classifier", []) if c.startswith("License ::")]
    text = str(meta.get("license", "")).strip().splitlines()
    return "; ".join(classifiers) or (text[0][:80] if text else "UNKNOWN")


def pyproject_requirements(path: Path) -> list[str]:
    """The base ``dependencies`` of a source checkout (what a fresh install from it would pull)."""
    return [Requirement(line).name for line in tomllib.loads(path.read_text())["project"]["dependencies"]]


def base_install(roots: list[str] | None = None) -> dict[str, str]:
    """Every distribution the base install needs, with its licence (``roots``: its requirements; by
    default those of the installed cxr-pneumonia)."""
    seen: dict[str, str] = {}
    todo = list(roots) if roots is not None else [ROOT]
    while todo:
        name = todo.pop()
        key = name.lower().replace("_", "-")
        if key in seen:
            continue
        try:
            dist = distribution(name)
        except PackageNotFoundError:
            continue
        seen[key] = licence_of(name)
        for line in dist.requires or []:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(requirement.name)
    return dict(sorted(seen.items()))


def forbidden(licence: str) -> bool:
    """GPL or AGPL, but not LGPL (nor a dual licence that offers a permissive choice)."""
    if _LESSER.search(licence) or re.search(r"\bOR\b|\bor later\b.*\bMIT\b", licence):
        return False
    return bool(_STRONG_COPYLEFT.search(licence))


def main(argv: list[str]) -> int:
    """[--check] [--requirements] [--pyproject FILE]: the report, the check, or pinned requirements
    (what `make sbom` feeds to cyclonedx-py)."""
    source = Path(argv[argv.index("--pyproject") + 1]) if "--pyproject" in argv else None
    report = base_install(pyproject_requirements(source) if source else None)
    report.pop(ROOT, None)
    bad = {name: licence for name, licence in report.items() if forbidden(licence)}
    if "--requirements" in argv:
        for name in report:
            print(f"{name}=={version(name)}")
        return 0
    if "--check" not in argv:
        for name, licence in report.items():
            print(f"{name:<32} {licence}")
    for name, licence in bad.items():
        print(f"forbidden in the base install: {name} ({licence})", file=sys.stderr)
    return 1 if bad and "--check" in argv else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
