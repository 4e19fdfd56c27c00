"""The prediction history: list, read, images, reviews. Every read is an audit event."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from sqlalchemy.orm import Session

from ...imaging import load
from ...imaging.limits import Limits
from ...imaging.xray import XRay
from ...inference.heatmap import heatmap_png, overlay_png
from ...integration.fhir import prediction_bundle
from ...store import audit as audit_chain
from ...store import references
from ...store.db.models import PredictionRecord
from ...store.errors import NotFound
from ...store.records import PredictionFilter, add_review, get_prediction, heatmap_from_png, list_predictions
from ..deps import CanReadHistory, CanReview, ContextDep, SessionDep, StateDep, audit_read
from ..images import DISPLAY_MAX_SIDE, THUMBNAIL_MAX_SIDE, display_png
from ..params import Moment, PredictionId
from ..schemas.common import AUTH, responses
from ..schemas.predictions import PredictionOut, PredictionPage, ReviewIn, ReviewOut
from ..state import ServiceState
from ..views import prediction_out, review_out

router = APIRouter(tags=["predictions"])

PNG: dict[int | str, dict[str, Any]] = {200: {"content": {"image/png": {}}, "description": "a PNG image"}}


def _load_row(session: Session, prediction_id: str) -> PredictionRecord:
    row = get_prediction(session, prediction_id)
    if row is None:
        raise NotFound(f"no prediction {prediction_id}")
    return row


@router.get("/predictions", response_model=PredictionPage, responses=responses(400, *AUTH))
def list_history(
    principal: CanReadHistory,
    ctx: ContextDep,
    state: StateDep,
    session: SessionDep,
    label: Literal["normal", "pneumonia"] | None = None,
    refer: bool | None = None,
    source: Literal["api", "web", "dicom", "cli"] | None = None,
    since: Annotated[
        Moment | None, Query(description="created at or after (ISO 8601; UTC if no offset)")
    ] = None,
    until: Annotated[Moment | None, Query(description="created before")] = None,
    model: Annotated[
        str | None,
        Query(
            pattern=r"^[A-Za-z0-9_.:+-]{1,160}$", description="model name, name:version, or a sha256 prefix"
        ),
    ] = None,
    reviewed: bool | None = None,
    reference: Annotated[
        str | None, Query(max_length=64, description="the caller's reference, matched exactly")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> PredictionPage:
    wanted = references.clean(reference)
    where = PredictionFilter(
        label=label,
        refer=refer,
        source=source,
        since=since,
        until=until,
        model=model,
        reviewed=reviewed,
        reference_hmac=state.store.reference_index(wanted) if wanted else None,
    )
    rows, total = list_predictions(session, where, limit=limit, offset=offset)
    items = [_out(state, row) for row in rows]
    filters = {
        k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in vars(where).items() if v is not None
    }
    audit_read(
        session,
        state,
        ctx,
        principal,
        "read_predictions",
        {"filters": filters, "limit": limit, "offset": offset, "returned": len(items)},
    )
    return PredictionPage(items=items, total=total, limit=limit, offset=offset)


@router.get("/predictions/{prediction_id}", response_model=PredictionOut, responses=responses(404, *AUTH))
def read_prediction(
    principal: CanReadHistory,
    ctx: ContextDep,
    state: StateDep,
    session: SessionDep,
    prediction_id: PredictionId,
) -> PredictionOut:
    out = _out(state, _load_row(session, prediction_id))
    audit_read(session, state, ctx, principal, "read_prediction", {"prediction_id": prediction_id})
    return out


@router.get(
    "/predictions/{prediction_id}/heatmap.png",
    response_class=Response,
    responses={**PNG, **responses(404, *AUTH)},
)
def read_heatmap(
    principal: CanReadHistory,
    ctx: ContextDep,
    state: StateDep,
    session: SessionDep,
    prediction_id: PredictionId,
) -> Response:
    """The heatmap in colour (blue to red), on the package's fixed scale."""
    row = _heatmap_row(session, prediction_id)
    assert row.heatmap_png is not None
    body = heatmap_png(heatmap_from_png(row.heatmap_png))
    audit_read(session, state, ctx, principal, "read_heatmap", {"prediction_id": prediction_id})
    return Response(body, media_type="image/png")


@router.get(
    "/predictions/{prediction_id}/heatmap-grey.png",
    response_class=Response,
    responses={**PNG, **responses(404, *AUTH)},
)
def read_heatmap_grey(
    principal: CanReadHistory,
    ctx: ContextDep,
    state: StateDep,
    session: SessionDep,
    prediction_id: PredictionId,
) -> Response:
    """The heatmap as stored: an 8-bit grey map at the model's input size, 255 = the package's
    reference heat (``heatmap_reference``), for tools that apply their own colour map."""
    row = _heatmap_row(session, prediction_id)
    assert row.heatmap_png is not None
    audit_read(session, state, ctx, principal, "read_heatmap", {"prediction_id": prediction_id, "grey": True})
    return Response(row.heatmap_png, media_type="image/png")


def _heatmap_row(session: Session, prediction_id: str) -> PredictionRecord:
    row = _load_row(session, prediction_id)
    if row.heatmap_png is None:
        raise NotFound(f"prediction {prediction_id} has no heatmap")
    return row


FHIR_JSON = "application/fhir+json"


@router.get(
    "/predictions/{prediction_id}/fhir",
    response_class=Response,
    responses={
        200: {"content": {FHIR_JSON: {}}, "description": "a FHIR R4B Bundle"},
        **responses(404, *AUTH),
    },
)
def read_fhir(
    principal: CanReadHistory,
    ctx: ContextDep,
    state: StateDep,
    session: SessionDep,
    prediction_id: PredictionId,
) -> Response:
    """The prediction as a FHIR R4B Bundle (collection): a preliminary DiagnosticReport, an Observation
    (SNOMED CT 233604007, calibrated probability, refer flag) and the model as a Device."""
    bundle = prediction_bundle(_load_row(session, prediction_id))
    audit_read(
        session, state, ctx, principal, "read_prediction", {"prediction_id": prediction_id, "fhir": True}
    )
    return Response(json.dumps(bundle), media_type=FHIR_JSON)


def _out(state: ServiceState, row: PredictionRecord) -> PredictionOut:
    return prediction_out(row, reference=state.store.read_reference(row))


def _stored_xray(state: ServiceState, session: Session, row: PredictionRecord) -> XRay:
    if row.image_sha256 is None:
        raise NotFound(
            "the image of this prediction was not kept (images are kept only with CXR_STORE_IMAGES)",
            code="not_stored",
        )
    png = state.store.read_image(session, row.image_sha256)
    if png is None:
        raise NotFound("the stored image is missing", code="not_stored")
    return load(png, replace(Limits.from_settings(state.settings), max_bytes=len(png) + 1))


@router.get(
    "/predictions/{prediction_id}/image.png",
    response_class=Response,
    responses={**PNG, **responses(404, *AUTH)},
)
def read_image(
    principal: CanReadHistory,
    ctx: ContextDep,
    state: StateDep,
    session: SessionDep,
    prediction_id: PredictionId,
    size: Annotated[
        Literal["display", "thumbnail"], Query(description="thumbnail: at most 128 px")
    ] = "display",
) -> Response:
    side = THUMBNAIL_MAX_SIDE if size == "thumbnail" else DISPLAY_MAX_SIDE
    body = display_png(_stored_xray(state, session, _load_row(session, prediction_id)), side)
    audit_read(session, state, ctx, principal, "read_image", {"prediction_id": prediction_id, "size": size})
    return Response(body, media_type="image/png")


@router.get(
    "/predictions/{prediction_id}/overlay.png",
    response_class=Response,
    responses={**PNG, **responses(404, *AUTH)},
)
def read_overlay(
    principal: CanReadHistory,
    ctx: ContextDep,
    state: StateDep,
    session: SessionDep,
    prediction_id: PredictionId,
) -> Response:
    row = _load_row(session, prediction_id)
    xray = _stored_xray(state, session, row)
    if row.heatmap_png is None:
        raise NotFound(f"prediction {prediction_id} has no heatmap")
    body = overlay_png(xray, heatmap_from_png(row.heatmap_png))
    audit_read(
        session, state, ctx, principal, "read_image", {"prediction_id": prediction_id, "overlay": True}
    )
    return Response(body, media_type="image/png")


@router.post(
    "/predictions/{prediction_id}/review",
    response_model=ReviewOut,
    status_code=201,
    responses=responses(400, 404, *AUTH),
)
def review(
    principal: CanReview, ctx: ContextDep, state: StateDep, prediction_id: PredictionId, body: ReviewIn
) -> ReviewOut:
    """Record the clinician's confirmed label (kept alongside, never replacing, the prediction)."""
    with state.store.transaction() as session:  # the review and its audit event commit together
        row = _load_row(session, prediction_id)
        created = add_review(session, row, reviewer=principal.actor, label=body.label, subtype=body.subtype)
        out = review_out(created, row.label)
        audit_chain.append(
            session,
            action="review",
            actor=principal.actor,
            outcome="ok",
            client=ctx.client,
            request_id=ctx.request_id,
            detail={
                "prediction_id": prediction_id,
                "review_id": created.id,
                "label": body.label,
                "subtype": body.subtype,
                "agrees": out.agrees,
            },
        )
    return out
