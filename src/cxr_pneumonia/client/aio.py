"""The asyncio (or trio) client: the same calls as ``Client``, awaited; many may run at once on one
connection pool. Files are read in a worker thread so a large upload does not stall the event loop."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import anyio
import httpx
from anyio import to_thread

from ..errors import CXRError
from ..inference.prediction import Prediction
from . import calls
from .base import ClientBase, Tries
from .calls import Call, Upload
from .models import BatchResult, Health, PredictionPage, PredictionResult, ReviewResult

T = TypeVar("T")


@calls.describe
class AsyncClient(ClientBase[httpx.AsyncClient, httpx.AsyncBaseTransport]):
    """``async with AsyncClient(base_url, api_key=...) as cxr: await cxr.predict(...)``: the options,
    retries (back-off, Retry-After, one Idempotency-Key per upload), results and errors of ``Client``."""

    def _connect(self, **options: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(**options)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # ---- the calls (described in calls.py) ------------------------------------------------------
    async def login(self, username: str, password: str) -> str:
        return await self._run(calls.login(username, password))

    async def health(self) -> Health:
        return await self._run(calls.health())

    async def predict(self, file: Upload, *, idempotency_key: str | None = None) -> PredictionResult:
        return await self._run(await to_thread.run_sync(calls.predict, file, idempotency_key))

    async def predict_batch(
        self, files: Sequence[Upload], *, idempotency_key: str | None = None
    ) -> BatchResult:
        return await self._run(await to_thread.run_sync(calls.predict_batch, files, idempotency_key))

    async def iter_predict(
        self, files: Iterable[Path], *, batch_size: int = 16
    ) -> AsyncIterator[Prediction | CXRError]:
        for paths in calls.chunks(files, batch_size):
            chunk = await to_thread.run_sync(calls.Chunk.read, paths)
            batch = await self.predict_batch(chunk.uploads) if chunk.uploads else None
            for outcome in chunk.outcomes(batch):
                yield outcome

    async def predictions(self, **filters: Any) -> PredictionPage:
        return await self._run(calls.predictions(**filters))

    async def prediction(self, prediction_id: str) -> PredictionResult:
        return await self._run(calls.prediction(prediction_id))

    async def review(self, prediction_id: str, label: str, subtype: str | None = None) -> ReviewResult:
        return await self._run(calls.review(prediction_id, label, subtype))

    async def heatmap(self, prediction_id: str) -> bytes:
        return await self._run(calls.heatmap(prediction_id))

    async def fhir(self, prediction_id: str) -> dict[str, Any]:
        return await self._run(calls.fhir(prediction_id))

    async def models(self) -> list[dict[str, Any]]:
        return await self._run(calls.models())

    async def current_model(self) -> dict[str, Any]:
        return await self._run(calls.current_model())

    # ---- transport ------------------------------------------------------------------------------
    async def _run(self, call: Call[T]) -> T:
        tries = Tries(self, call)
        for wait in tries:
            await anyio.sleep(wait)
            try:
                tries.answer = await self._http.request(call.method, call.path, **call.parts)
            except httpx.TransportError as exc:
                tries.failure = exc
        return tries.result(self._http.headers)
