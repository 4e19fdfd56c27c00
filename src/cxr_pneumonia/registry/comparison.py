"""`cxr models compare`: two registered versions' recorded metrics side by side, and, from the store,
their agreement where the service answered with one and shadowed with the other."""

from __future__ import annotations

from typing import Any

from ..store.shadow import pairs
from .agreement import agreement
from .lifecycle import Registry, describe


def compare_versions(registry: Registry, name: str, a: str, b: str) -> dict[str, Any]:
    first, second = describe(registry.get(name, a)), describe(registry.get(name, b))
    keys = sorted(set(first["evaluations"]) | set(second["evaluations"]))
    rows = [
        {
            "evaluation": key,
            "metric": metric,
            "a": first["evaluations"].get(key, {}).get(metric),
            "b": second["evaluations"].get(key, {}).get(metric),
        }
        for key in keys
        for metric in sorted(set(first["evaluations"].get(key, {})) | set(second["evaluations"].get(key, {})))
    ]
    with registry.store.reading() as session:
        live = agreement(pairs(session, first["digest"], second["digest"]), first["digest"], second["digest"])
    return {"a": first, "b": second, "metrics": rows, "live": live}
