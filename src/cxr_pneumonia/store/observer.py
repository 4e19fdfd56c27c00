"""What the store reports once a write has committed, for a door that counts it (Prometheus, in the
REST service). The store knows no metrics library: a door hands in an observer, or nothing is counted."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from ..inference.prediction import Prediction

if TYPE_CHECKING:
    from .db.models import PredictionRecord


class StoreObserver(Protocol):
    def observe_prediction(self, prediction: Prediction, source: str) -> None: ...

    def observe_refusal(self, reason: str, source: str) -> None: ...


class NoObserver:
    """For doors that expose no metrics (the DICOM node, the CLI)."""

    def observe_prediction(self, prediction: Prediction, source: str) -> None:
        pass

    def observe_refusal(self, reason: str, source: str) -> None:
        pass


class Observers:
    """Several observers in order (the service's metrics, then the drift monitor)."""

    def __init__(self, *observers: StoreObserver) -> None:
        self.observers = observers

    def observe_prediction(self, prediction: Prediction, source: str) -> None:
        for observer in self.observers:
            observer.observe_prediction(prediction, source)

    def observe_refusal(self, reason: str, source: str) -> None:
        for observer in self.observers:
            observer.observe_refusal(reason, source)


class PredictionPublisher(Protocol):
    """Sends accepted predictions elsewhere (integration/fhir_push.py). ``stage`` runs before the commit
    and writes durably; ``release`` after it, ``discard`` if it failed: a crash loses nothing."""

    def stage(self, row: PredictionRecord) -> Path: ...

    def release(self, staged: Path) -> None: ...

    def discard(self, staged: Path) -> None: ...
