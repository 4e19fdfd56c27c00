"""POST /dicomweb/studies: STOW-RS intake (PS3.18), for a PACS or VNA that pushes over HTTP. The same
credentials as /predict; each instance goes to the DICOM node's spool (integration/stow.py), where the
node applies the same quality gate and sends the same results as for a C-STORE."""

from __future__ import annotations

import json

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from ...imaging.limits import Limits
from ...integration.stow import StowItem, store_instance, stow_response
from ...store.spool import Spool
from ..deps import CanPredict, ContextDep, StateDep
from ..multipart import UnsupportedMediaType, boundary_of, split_parts
from ..schemas.common import AUTH, responses

router = APIRouter(tags=["dicomweb"])
DICOM_JSON = "application/dicom+json"


@router.post(
    "/dicomweb/studies",
    response_class=Response,
    responses={
        200: {"content": {DICOM_JSON: {}}, "description": "every instance stored (DICOM JSON)"},
        202: {"content": {DICOM_JSON: {}}, "description": "some instances failed: FailedSOPSequence"},
        409: {"content": {DICOM_JSON: {}}, "description": "no instance stored"},
        **responses(400, 413, 415, *AUTH),
    },
    summary='STOW-RS: store DICOM instances (multipart/related; type="application/dicom")',
)
async def stow(request: Request, principal: CanPredict, ctx: ContextDep, state: StateDep) -> Response:
    boundary, part_type = boundary_of(request.headers.get("content-type", ""))
    if part_type is not None and part_type.lower() != "application/dicom":
        raise UnsupportedMediaType(f'type="{part_type}": only application/dicom instances are taken')
    body = await request.body()  # capped by the body-size middleware (CXR_DICOMWEB_MAX_REQUEST_BYTES)
    parts = split_parts(body, boundary)
    settings = state.settings
    limits = Limits(settings.max_bytes, settings.max_pixels)

    def store_all() -> list[StowItem]:
        spool = Spool(settings.resolved_dicom_spool_dir, clean=False)  # the node owns the spool
        return [
            store_instance(data, media or (part_type or ""), spool, limits, ctx.client)
            for media, data in parts
        ]

    items = await run_in_threadpool(store_all)
    status, answer = stow_response(items)
    await run_in_threadpool(
        state.store.audit,
        "dicomweb.store",
        actor=principal.actor,
        outcome="accepted" if status == 200 else "partial" if status == 202 else "refused",
        client=ctx.client,
        request_id=ctx.request_id,
        detail={
            "instances": len(items),
            "stored": [{"job": i.job, "input_sha256": i.sha256} for i in items if i.failure is None],
            "failed": [
                {"reason": i.failure, "detail": i.detail, "input_sha256": i.sha256}
                for i in items
                if i.failure is not None
            ],
        },
    )
    return Response(json.dumps(answer), status_code=status, media_type=DICOM_JSON)
