"""POST /predict and /predict/batch: read the upload, predict, commit the record, answer."""

from __future__ import annotations

import hashlib
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, File, Form, Header, Query, Response, UploadFile

from ...errors import CXRError, ModelError, TooLarge
from ...imaging import load
from ...imaging.limits import Limits
from ...inference.prediction import Prediction
from ...inference.predictor import BatchResult
from ...registry.serving import ServedModel
from ...store import idempotency, references
from ...store.db.models import PredictionRecord
from ...store.security.principal import Principal
from ..deps import CanPredict, ContextDep, PredictorDep, RequestContext, StateDep
from ..images import preview_data_url
from ..schemas.common import AUTH, ErrorBody, responses
from ..schemas.predictions import BatchItem, BatchOut, PredictionOut
from ..state import ServiceState
from ..strict import only_form_fields
from ..uploads import read_capped
from ..views import prediction_out

router = APIRouter(tags=["predict"])

Source = Annotated[
    Literal["api", "web"], Query(description="which door the caller is: a script or the web page")
]


IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="retry safely: the same key (per caller, for a day) returns the same record; "
        "another request with it is a 409",
    ),
]
REPLAY_HEADER = "Idempotent-Replay"


class TooManyFiles(TooLarge):
    code = "too_many_files"


def _refused(
    state: ServiceState,
    ctx: RequestContext,
    principal: Principal,
    exc: CXRError,
    source: str,
    data: bytes | None,
    in_batch: bool = False,
) -> None:
    """A refused or failed input leaves an audit event, never a prediction record."""
    state.store.audit(
        "predict",
        actor=principal.actor,
        outcome="failed" if isinstance(exc, ModelError) else "refused",
        client=ctx.client,
        request_id=ctx.request_id,
        detail={
            "error": exc.code,
            "reason": getattr(exc, "reason", exc.code),
            "source": source,
            "input_sha256": hashlib.sha256(data).hexdigest() if data else None,
            "bytes": len(data) if data else 0,
            "batch_item": in_batch,
        },
    )


def _commit(
    state: ServiceState,
    ctx: RequestContext,
    principal: Principal,
    prediction: Prediction,
    source: str,
    data: bytes,
    served: ServedModel,
    preview: bool = False,
    claim: idempotency.Claim | None = None,
    reference: str | None = None,
) -> PredictionOut:
    row = state.store.commit_prediction(
        prediction,
        source=source,
        caller=principal.actor,
        client=ctx.client,
        request_id=ctx.request_id,
        extra={"model": served.record_model()},
        image=data,
        claim=claim,
        reference=reference,
    )
    state.models.shadow(row.id, data)  # queued for the shadow model, if any: never waited for
    return _out(state, row, data, preview)


def _out(state: ServiceState, row: PredictionRecord, data: bytes, preview: bool) -> PredictionOut:
    out = prediction_out(row, reference=state.store.read_reference(row))
    if preview:
        settings = state.settings
        out.preview = preview_data_url(load(data, Limits.from_settings(settings)))
    return out


def _predict_routed(state: ServiceState, readable: list[bytes]) -> list[tuple[ServedModel, BatchResult]]:
    """Each input answered by the arm its sha256 picks, as /predict does (so an image gets the same
    model alone or in a batch); one batch per arm, results in input order."""
    arms = [state.route(hashlib.sha256(data).hexdigest()) for data in readable]
    outcomes: list[tuple[ServedModel, BatchResult] | None] = [None] * len(readable)
    for served in {id(arm): arm for arm in arms}.values():
        indices = [i for i, arm in enumerate(arms) if arm is served]
        with state.inference_slot():
            answers = served.predictor.predict_batch([readable[i] for i in indices])
        for i, answer in zip(indices, answers, strict=True):
            outcomes[i] = (served, answer)
    return [outcome for outcome in outcomes if outcome is not None]


def _claim(
    principal: Principal,
    key: str | None,
    route: str,
    parameters: dict[str, object],
    files: list[bytes | CXRError],
) -> idempotency.Claim | None:
    if key is None:
        return None
    shas = [hashlib.sha256(f).hexdigest() if isinstance(f, bytes) else f"unread:{f.code}" for f in files]
    request = idempotency.fingerprint(route, parameters, shas)
    return idempotency.Claim(principal.actor, idempotency.check_key(key), request)


def _earlier(state: ServiceState, claim: idempotency.Claim | None) -> dict[int, PredictionRecord]:
    """The records this claim's key already produced, by item (empty without a key)."""
    if claim is None:
        return {}
    with state.store.reading() as session:
        ids = idempotency.earlier(session, claim.caller, claim.key, claim.request_sha256)
        rows = {item: session.get(PredictionRecord, pid) for item, pid in ids.items()}
    return {item: row for item, row in rows.items() if row is not None}


@router.post(
    "/predict",
    response_model=PredictionOut,
    responses=responses(400, 413, 503, *AUTH),
    summary="Read one radiograph (PNG, JPEG or DICOM)",
)
def predict(
    principal: CanPredict,
    _fields: Annotated[None, Depends(only_form_fields("file", "reference", single=("file", "reference")))],
    ctx: ContextDep,
    state: StateDep,
    predictor: PredictorDep,
    file: Annotated[UploadFile, File(description="the radiograph: PNG, JPEG or DICOM")],
    response: Response,
    reference: Annotated[
        str | None,
        Form(description="your own reference (e.g. an accession number): kept encrypted, searchable"),
    ] = None,
    idempotency_key: IdempotencyKey = None,
    source: Source = "api",
    preview: Annotated[bool, Query(description="add the radiograph as a PNG data URL (<= 512 px)")] = False,
) -> PredictionOut:
    data: bytes | None = None
    try:
        data = read_capped(file, state.settings.max_bytes)
        reference = references.clean(reference)
        parameters: dict[str, object] = {"source": source, "preview": preview, "reference": reference}
        claim = _claim(principal, idempotency_key, "predict", parameters, [data])
        if (earlier := _earlier(state, claim).get(0)) is not None:
            response.headers[REPLAY_HEADER] = "true"
            return _out(state, earlier, data, preview)
        # A/B: the input's sha256 picks the arm, so the same image always gets the same model
        served = state.route(hashlib.sha256(data).hexdigest())
        assert served.batcher is not None
        # not inside an inference slot: the micro-batcher runs one batch at a time by itself
        prediction = served.batcher.predict(data)
    except CXRError as exc:
        _refused(state, ctx, principal, exc, source, data)
        raise
    return _commit(state, ctx, principal, prediction, source, data, served, preview, claim, reference)


@router.post(
    "/predict/batch",
    response_model=BatchOut,
    responses=responses(400, 413, 503, *AUTH),
    summary="Read several radiographs; each gets a prediction or an error",
)
def predict_batch(
    principal: CanPredict,
    _fields: Annotated[None, Depends(only_form_fields("files"))],
    ctx: ContextDep,
    state: StateDep,
    files: Annotated[list[UploadFile], File(description="the radiographs (at most CXR_BATCH_MAX_FILES)")],
    response: Response,
    idempotency_key: IdempotencyKey = None,
    source: Source = "api",
) -> BatchOut:
    settings = state.settings
    if len(files) > settings.batch_max_files:
        raise TooManyFiles(f"{len(files)} files sent; at most {settings.batch_max_files} per batch")
    read: list[bytes | CXRError] = []
    for upload in files:
        try:
            read.append(read_capped(upload, settings.max_bytes))
        except CXRError as exc:
            read.append(exc)
    claim = _claim(principal, idempotency_key, "predict/batch", {"source": source}, read)
    earlier = _earlier(state, claim)
    if earlier:
        response.headers[REPLAY_HEADER] = "true"  # items not committed the first time are read now
    readable = [item for i, item in enumerate(read) if isinstance(item, bytes) and i not in earlier]
    state.require_champion()  # 503 without a model, even when no file was readable
    predicted = iter(_predict_routed(state, readable))
    results: list[BatchItem] = []
    for index, (upload, item) in enumerate(zip(files, read, strict=True)):
        data = item if isinstance(item, bytes) else None
        filename = (upload.filename or "")[:255] or None  # echoed to the caller only, never stored or logged
        if index in earlier and data is not None:
            out = _out(state, earlier[index], data, False)
            results.append(BatchItem(index=index, filename=filename, ok=True, prediction=out))
            continue
        served, outcome = next(predicted) if data is not None else (None, item)
        if isinstance(outcome, Prediction) and served is not None and data is not None:
            item_claim = claim.for_item(index) if claim else None
            out = _commit(state, ctx, principal, outcome, source, data, served, claim=item_claim)
            results.append(BatchItem(index=index, filename=filename, ok=True, prediction=out))
        else:
            assert isinstance(outcome, CXRError)
            _refused(state, ctx, principal, outcome, source, data, in_batch=True)
            error = ErrorBody(
                error=outcome.code,
                detail=outcome.detail,
                request_id=ctx.request_id,
                reason=getattr(outcome, "reason", None),
            )
            results.append(BatchItem(index=index, filename=filename, ok=False, error=error))
    accepted = sum(r.ok for r in results)
    return BatchOut(results=results, accepted=accepted, refused=len(results) - accepted)
