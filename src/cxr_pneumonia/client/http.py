"""The client: one httpx connection pool, credentials, retries with back-off, typed answers."""

from __future__ import annotations

import mimetypes
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx

from ..errors import CXRError
from ..inference.prediction import Prediction
from .errors import ServerUnavailable, error_from_response
from .models import BatchResult, Health, PredictionPage, PredictionResult, ReviewResult

API = "/api/v1"
RETRY_STATUSES = frozenset({429, 502, 503, 504})  # busy or restarting: worth another try
Upload = str | Path | bytes


def _file_part(item: Upload, index: int) -> tuple[str, bytes, str]:
    if isinstance(item, bytes):
        return (f"upload-{index}", item, "application/octet-stream")
    path = Path(item)
    media = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return (path.name, path.read_bytes(), media)


class Client:
    """``Client(base_url, api_key=...)`` or ``Client(base_url, token=...)`` (a bearer token from
    :meth:`login`). Retries: connection failures and 429/502/503/504 are retried ``retries`` times with
    exponential back-off (honouring Retry-After); each POST /predict carries one ``Idempotency-Key``
    for all its tries, so a service that supports the header never records one upload twice."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        token: str | None = None,
        timeout: float = 60.0,
        retries: int = 3,
        backoff_seconds: float = 0.5,
        max_backoff_seconds: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if api_key and token:
            raise ValueError("give an API key or a token, not both")
        headers = {"User-Agent": "cxr-pneumonia-client"}
        if api_key:
            headers["X-API-Key"] = api_key
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.retries = retries
        self.backoff_seconds = backoff_seconds
        self.max_backoff_seconds = max_backoff_seconds
        self._http = httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=timeout,
                                  transport=transport)  # fmt: skip

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- the calls ------------------------------------------------------------------------------
    def login(self, username: str, password: str) -> str:
        """Exchange a password for a bearer token; later calls use it. Returns the token."""
        body = self._request("POST", f"{API}/auth/token", data={"username": username, "password": password})
        token = str(body.json()["access_token"])
        self._http.headers.pop("X-API-Key", None)
        self._http.headers["Authorization"] = f"Bearer {token}"
        return token

    def health(self) -> Health:
        """GET /health/ready. A service that is up but not ready answers with its reasons, not an error."""
        response = self._send("GET", f"{API}/health/ready", retry_statuses=frozenset({429, 502, 504}))
        if response.status_code not in (200, 503):
            raise error_from_response(response)
        return Health.model_validate(response.json())

    def predict(self, file: Upload, *, idempotency_key: str | None = None) -> PredictionResult:
        """Read one radiograph (a path or the file's bytes). Raises RejectedImage / InputError / ..."""
        key = idempotency_key or uuid.uuid4().hex
        response = self._request("POST", f"{API}/predict", files={"file": _file_part(file, 0)},
                                 headers={"Idempotency-Key": key})  # fmt: skip
        return PredictionResult.model_validate(response.json())

    def predict_batch(self, files: Sequence[Upload], *, idempotency_key: str | None = None) -> BatchResult:
        """Read several radiographs in one request (at most the server's CXR_BATCH_MAX_FILES); each
        item is a prediction or an error."""
        parts = [("files", _file_part(item, i)) for i, item in enumerate(files)]
        key = idempotency_key or uuid.uuid4().hex
        response = self._request(
            "POST", f"{API}/predict/batch", files=parts, headers={"Idempotency-Key": key}
        )
        return BatchResult.model_validate(response.json())

    def iter_predict(self, files: Iterable[Path], *, batch_size: int = 16) -> Iterator[Prediction | CXRError]:
        """Results in input order, as ``Predictor.iter_predict`` gives them locally (what `cxr predict
        --server` renders). A file that cannot be read here is an error item, like a local one."""
        chunk: list[Path] = []
        for path in files:
            chunk.append(path)
            if len(chunk) >= batch_size:
                yield from self._predict_chunk(chunk)
                chunk = []
        if chunk:
            yield from self._predict_chunk(chunk)

    def _predict_chunk(self, paths: list[Path]) -> Iterator[Prediction | CXRError]:
        readable: list[tuple[Path, bytes]] = []
        unreadable: dict[int, CXRError] = {}
        for index, path in enumerate(paths):
            try:
                readable.append((path, path.read_bytes()))
            except OSError as exc:
                unreadable[index] = CXRError(
                    f"cannot read {path.name}: {exc.strerror}", code="unreadable_file"
                )
        answered = iter(self.predict_batch([data for _, data in readable]).results if readable else [])
        for index in range(len(paths)):
            if index in unreadable:
                yield unreadable[index]
                continue
            outcome = next(answered).outcome()
            assert isinstance(outcome, Prediction | CXRError)
            yield outcome

    def predictions(self, **filters: Any) -> PredictionPage:
        """GET /predictions with the service's filters: label, refer, source, since, until, model,
        reviewed, limit, offset (None values are left out)."""
        params = {
            k: (str(v).lower() if isinstance(v, bool) else v) for k, v in filters.items() if v is not None
        }
        return PredictionPage.model_validate(self._request("GET", f"{API}/predictions", params=params).json())

    def prediction(self, prediction_id: str) -> PredictionResult:
        return PredictionResult.model_validate(
            self._request("GET", f"{API}/predictions/{prediction_id}").json()
        )

    def review(self, prediction_id: str, label: str, subtype: str | None = None) -> ReviewResult:
        body: dict[str, Any] = {"label": label, **({"subtype": subtype} if subtype else {})}
        response = self._request("POST", f"{API}/predictions/{prediction_id}/review", json=body)
        return ReviewResult.model_validate(response.json())

    def heatmap(self, prediction_id: str) -> bytes:
        """The prediction's heatmap as a PNG."""
        return self._request("GET", f"{API}/predictions/{prediction_id}/heatmap.png").content

    def fhir(self, prediction_id: str) -> dict[str, Any]:
        """The prediction as a FHIR R4B Bundle (JSON)."""
        body: dict[str, Any] = self._request("GET", f"{API}/predictions/{prediction_id}/fhir").json()
        return body

    def models(self) -> list[dict[str, Any]]:
        """GET /models: the loaded models (champion, challenger, shadow) with their registry version,
        digest and card link."""
        body = self._request("GET", f"{API}/models").json()
        items = body.get("models", []) if isinstance(body, dict) else body
        return list(items)

    def current_model(self) -> dict[str, Any]:
        """GET /models/current: the package being served, with its card."""
        body: dict[str, Any] = self._request("GET", f"{API}/models/current").json()
        return body

    # ---- transport ------------------------------------------------------------------------------
    def _request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        response = self._send(method, url, **kwargs)
        if response.is_error:
            raise error_from_response(response)
        return response

    def _send(
        self, method: str, url: str, *, retry_statuses: frozenset[int] = RETRY_STATUSES, **kwargs: Any
    ) -> httpx.Response:
        attempt = 0
        while True:
            try:
                response = self._http.request(method, url, **kwargs)
            except httpx.TransportError as exc:
                if attempt >= self.retries:
                    raise ServerUnavailable(
                        f"{method} {url}: {type(exc).__name__}: {exc}", "unreachable", 0
                    ) from None
                delay = self._delay(attempt, None)
            else:
                if response.status_code not in retry_statuses or attempt >= self.retries:
                    return response
                delay = self._delay(attempt, response.headers.get("Retry-After"))
            attempt += 1
            time.sleep(delay)

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        delay = min(self.max_backoff_seconds, self.backoff_seconds * 2**attempt)
        if retry_after and retry_after.isdigit():
            delay = min(self.max_backoff_seconds, max(delay, float(retry_after)))
        return delay
