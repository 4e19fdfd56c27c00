"""The DICOM node: a PACS sends radiographs, the detector answers with a Structured Report and a
Secondary Capture in the same study. Decision support, not a diagnosis.

Exports load lazily: ``cxr`` imports this package to register its command, and must not pay for
pynetdicom and highdicom unless the node actually runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .node import DicomNode
    from .options import Destination, NodeOptions, RetryPolicy

__all__ = ["Destination", "DicomNode", "NodeOptions", "RetryPolicy"]


def __getattr__(name: str) -> Any:
    if name == "DicomNode":
        from .node import DicomNode

        return DicomNode
    if name in ("Destination", "NodeOptions", "RetryPolicy"):
        from . import options

        return getattr(options, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
