"""Every call of the REST service, described once: method, path, request parts, which statuses are
retried or answered, and how the answer is read. ``Client`` and ``AsyncClient`` only send them.

A builder here does no I/O on the network (it may read the file to upload): it returns a ``Call``
that either client sends, retries and finishes the same way.
"""

from __future__ import annotations

import mimetypes
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import httpx
from pydantic import BaseModel

from ..errors import CXRError
from ..inference.prediction import Prediction
from .errors import error_from_response
from .models import BatchResult, Health, PredictionPage, PredictionResult, ReviewResult

API = "/api/v1"
RETRY_STATUSES = frozenset({429, 502, 503, 504})  # busy or restarting: worth another try
Upload = str | Path | bytes
T = TypeVar("T")
C = TypeVar("C", bound=type)
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Call(Generic[T]):
    """One request and how its answer becomes a result (or the project's exception)."""

    method: str
    path: str
    parse: Callable[[httpx.Response], T]
    parts: dict[str, Any] = field(default_factory=dict)  # httpx request arguments: params, data, files...
    retry: frozenset[int] = RETRY_STATUSES
    answered: frozenset[int] | None = None  # statuses parsed as a result; None: every non-error one
    session: Callable[[httpx.Headers, T], None] | None = None  # what the result changes in the client

    def finish(self, response: httpx.Response, headers: httpx.Headers) -> T:
        """The final answer (after any retries) as the result, or raise the project's exception."""
        refused = response.is_error if self.answered is None else response.status_code not in self.answered
        if refused:
            raise error_from_response(response)
        result = self.parse(response)
        if self.session is not None:
            self.session(headers, result)
        return result


def credentials(api_key: str | None, token: str | None) -> dict[str, str]:
    """The headers every request of a client carries."""
    if api_key and token:
        raise ValueError("give an API key or a token, not both")
    headers = {"User-Agent": "cxr-pneumonia-client"}
    if api_key:
        headers["X-API-Key"] = api_key
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return headers


def _file_part(item: Upload, index: int) -> tuple[str, bytes, str]:
    if isinstance(item, bytes):
        return (f"upload-{index}", item, "application/octet-stream")
    path = Path(item)
    media = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return (path.name, path.read_bytes(), media)


def _json(response: httpx.Response) -> Any:
    return response.json()


def _as(model: type[M]) -> Callable[[httpx.Response], M]:
    """Read a JSON answer as one of the typed results of models.py."""
    return lambda response: model.model_validate(response.json())


def _use_token(headers: httpx.Headers, token: str) -> None:
    headers.pop("X-API-Key", None)
    headers["Authorization"] = f"Bearer {token}"


# ---- the calls (each client method of the same name sends one; these docstrings are theirs) -------
def login(username: str, password: str) -> Call[str]:
    """Exchange a password for a bearer token; later calls use it. Returns the token."""
    return Call("POST", f"{API}/auth/token", lambda r: str(r.json()["access_token"]),
                {"data": {"username": username, "password": password}}, session=_use_token)  # fmt: skip


def health() -> Call[Health]:
    """GET /health/ready. A service that is up but not ready answers with its reasons, not an error."""
    return Call("GET", f"{API}/health/ready", _as(Health),
                retry=frozenset({429, 502, 504}), answered=frozenset({200, 503}))  # fmt: skip


def predict(file: Upload, idempotency_key: str | None = None) -> Call[PredictionResult]:
    """Read one radiograph (a path or the file's bytes). Raises RejectedImage / InputError / ..."""
    parts = {"files": {"file": _file_part(file, 0)}, "headers": _idempotent(idempotency_key)}
    return Call("POST", f"{API}/predict", _as(PredictionResult), parts)


def predict_batch(files: Sequence[Upload], idempotency_key: str | None = None) -> Call[BatchResult]:
    """Read several radiographs in one request (at most the server's CXR_BATCH_MAX_FILES); each
    item is a prediction or an error."""
    parts = {
        "files": [("files", _file_part(item, i)) for i, item in enumerate(files)],
        "headers": _idempotent(idempotency_key),
    }
    return Call("POST", f"{API}/predict/batch", _as(BatchResult), parts)


def _idempotent(key: str | None) -> dict[str, str]:
    """One key for all the tries of one upload, so a retried upload is recorded once."""
    return {"Idempotency-Key": key or uuid.uuid4().hex}


def predictions(**filters: Any) -> Call[PredictionPage]:
    """GET /predictions with the service's filters: label, refer, source, since, until, model,
    reviewed, limit, offset (None values are left out)."""
    params = {k: (str(v).lower() if isinstance(v, bool) else v) for k, v in filters.items() if v is not None}
    return Call("GET", f"{API}/predictions", _as(PredictionPage), {"params": params})


def prediction(prediction_id: str) -> Call[PredictionResult]:
    """One prediction of the history, with its reviews."""
    return Call("GET", f"{API}/predictions/{prediction_id}", _as(PredictionResult))


def review(prediction_id: str, label: str, subtype: str | None = None) -> Call[ReviewResult]:
    """Record a reviewer's reading of a prediction (label, and a subtype for pneumonia)."""
    body: dict[str, Any] = {"label": label, **({"subtype": subtype} if subtype else {})}
    return Call("POST", f"{API}/predictions/{prediction_id}/review", _as(ReviewResult), {"json": body})


def heatmap(prediction_id: str) -> Call[bytes]:
    """The prediction's heatmap as a PNG."""
    return Call("GET", f"{API}/predictions/{prediction_id}/heatmap.png", lambda r: r.content)


def fhir(prediction_id: str) -> Call[dict[str, Any]]:
    """The prediction as a FHIR R4B Bundle (JSON)."""
    return Call("GET", f"{API}/predictions/{prediction_id}/fhir", _json)


def models() -> Call[list[dict[str, Any]]]:
    """GET /models: the loaded models (champion, challenger, shadow) with their registry version,
    digest and card link."""

    def parse(response: httpx.Response) -> list[dict[str, Any]]:
        body = response.json()
        return list(body.get("models", []) if isinstance(body, dict) else body)

    return Call("GET", f"{API}/models", parse)


def current_model() -> Call[dict[str, Any]]:
    """GET /models/current: the package being served, with its card."""
    return Call("GET", f"{API}/models/current", _json)


ITER_PREDICT_DOC = """Results in input order, as ``Predictor.iter_predict`` gives them locally (what `cxr predict
--server` renders). A file that cannot be read here is an error item, like a local one."""
CALLS = (login, health, predict, predict_batch, predictions, prediction, review, heatmap, fhir, models,
         current_model)  # fmt: skip


def describe(cls: C) -> C:
    """Give a client's methods the docstrings of the calls above (written once, for both clients)."""
    docs = {call.__name__: call.__doc__ for call in CALLS} | {"iter_predict": ITER_PREDICT_DOC}
    for name, doc in docs.items():
        getattr(cls, name).__doc__ = doc
    return cls


# ---- iter_predict: batches of files, answered in input order -------------------------------------
@dataclass
class Chunk:
    """Up to ``batch_size`` files of an ``iter_predict``: the ones read here go in one batch request,
    the unreadable ones are error items in their places."""

    size: int
    uploads: list[bytes]
    unreadable: dict[int, CXRError]

    @classmethod
    def read(cls, paths: list[Path]) -> Chunk:
        uploads: list[bytes] = []
        unreadable: dict[int, CXRError] = {}
        for index, path in enumerate(paths):
            try:
                uploads.append(path.read_bytes())
            except OSError as exc:
                unreadable[index] = CXRError(
                    f"cannot read {path.name}: {exc.strerror}", code="unreadable_file"
                )
        return cls(len(paths), uploads, unreadable)

    def outcomes(self, batch: BatchResult | None) -> Iterator[Prediction | CXRError]:
        """The chunk's results in input order (``batch``: the answer for ``uploads``, None if empty)."""
        answered = iter(batch.results if batch is not None else [])
        for index in range(self.size):
            if index in self.unreadable:
                yield self.unreadable[index]
                continue
            outcome = next(answered).outcome()
            assert isinstance(outcome, Prediction | CXRError)
            yield outcome


def chunks(files: Iterable[Path], batch_size: int) -> Iterator[list[Path]]:
    chunk: list[Path] = []
    for path in files:
        chunk.append(path)
        if len(chunk) >= batch_size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
