"""The blocking client: the calls of calls.py sent over one httpx connection pool, retried with back-off."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import httpx

from ..errors import CXRError
from ..inference.prediction import Prediction
from . import calls
from .base import ClientBase, Tries
from .calls import API, RETRY_STATUSES, Call, Upload
from .models import BatchResult, Health, PredictionPage, PredictionResult, ReviewResult

__all__ = ["API", "RETRY_STATUSES", "Client", "Upload"]
T = TypeVar("T")


@calls.describe
class Client(ClientBase[httpx.Client, httpx.BaseTransport]):
    """``Client(base_url, api_key=...)`` or ``Client(base_url, token=...)`` (a bearer token from
    :meth:`login`). Retries: connection failures and 429/502/503/504 are retried ``retries`` times with
    exponential back-off (honouring Retry-After); each POST /predict carries one ``Idempotency-Key``
    for all its tries, so a service that supports the header never records one upload twice."""

    def _connect(self, **options: Any) -> httpx.Client:
        return httpx.Client(**options)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- the calls (described in calls.py) ------------------------------------------------------
    def login(self, username: str, password: str) -> str:
        return self._run(calls.login(username, password))

    def health(self) -> Health:
        return self._run(calls.health())

    def predict(self, file: Upload, *, idempotency_key: str | None = None) -> PredictionResult:
        return self._run(calls.predict(file, idempotency_key))

    def predict_batch(self, files: Sequence[Upload], *, idempotency_key: str | None = None) -> BatchResult:
        return self._run(calls.predict_batch(files, idempotency_key))

    def iter_predict(self, files: Iterable[Path], *, batch_size: int = 16) -> Iterator[Prediction | CXRError]:
        for paths in calls.chunks(files, batch_size):
            chunk = calls.Chunk.read(paths)
            yield from chunk.outcomes(self.predict_batch(chunk.uploads) if chunk.uploads else None)

    def predictions(self, **filters: Any) -> PredictionPage:
        return self._run(calls.predictions(**filters))

    def prediction(self, prediction_id: str) -> PredictionResult:
        return self._run(calls.prediction(prediction_id))

    def review(self, prediction_id: str, label: str, subtype: str | None = None) -> ReviewResult:
        return self._run(calls.review(prediction_id, label, subtype))

    def heatmap(self, prediction_id: str) -> bytes:
        return self._run(calls.heatmap(prediction_id))

    def fhir(self, prediction_id: str) -> dict[str, Any]:
        return self._run(calls.fhir(prediction_id))

    def models(self) -> list[dict[str, Any]]:
        return self._run(calls.models())

    def current_model(self) -> dict[str, Any]:
        return self._run(calls.current_model())

    # ---- transport ------------------------------------------------------------------------------
    def _run(self, call: Call[T]) -> T:
        tries = Tries(self, call)
        for wait in tries:
            time.sleep(wait)
            try:
                tries.answer = self._http.request(call.method, call.path, **call.parts)
            except httpx.TransportError as exc:
                tries.failure = exc
        return tries.result(self._http.headers)
