"""The served models (champion, challenger, shadow), their cards, their agreement, and the reload."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response

from ...errors import CXRError
from ...registry.agreement import agreement
from ...store.shadow import pairs
from ..deps import (
    API_PREFIX,
    CanManage,
    CanReadHistory,
    CanReadModel,
    ContextDep,
    SessionDep,
    StateDep,
    audit_read,
)
from ..schemas.common import AUTH, responses
from ..schemas.system import ModelsOut, ReloadOut, ServedModelOut

router = APIRouter(tags=["models"])
Selector = Annotated[
    str,
    Query(min_length=8, max_length=160, description="a model: digest (or its first 12+) or NAME:VERSION"),
]


class UnknownModel(CXRError):
    code = "not_found"
    http_status = 404


@router.get("/models", response_model=ModelsOut, responses=responses(*AUTH))
def list_models(_principal: CanReadModel, state: StateDep) -> ModelsOut:
    router_ = state.models
    runner = router_.shadow_runner
    return ModelsOut(
        models=[
            ServedModelOut(**m.describe(), card=f"{API_PREFIX}/models/{m.id}/card") for m in router_.served()
        ],
        ab_percent=state.settings.ab_percent if router_.get("challenger") else 0.0,
        errors=dict(router_.errors),
        shadow_queue=runner.stats() if runner else None,
    )


@router.get("/models/compare", responses=responses(400, *AUTH))
def compare(
    principal: CanReadHistory, ctx: ContextDep, state: StateDep, session: SessionDep, a: Selector, b: Selector
) -> dict[str, Any]:
    """Agreement of model a (which answered) and model b (which ran in shadow) on the same inputs, and
    sensitivity/specificity of each on the clinician-reviewed ones, with Wilson 95% intervals."""
    report = agreement(pairs(session, a, b), a, b)
    audit_read(session, state, ctx, principal, "compare_models", {"a": a, "b": b, "pairs": report["pairs"]})
    return report


@router.get(
    "/models/{model_id}/card",
    response_class=Response,  # errors stay JSON (documented as such); the card is Markdown
    responses={200: {"content": {"text/markdown": {}}}, **responses(404, *AUTH)},
)
def model_card(
    _principal: CanReadModel, state: StateDep, model_id: Annotated[str, Path(pattern=r"^[0-9a-f]{12,64}$")]
) -> Response:
    """The model card (Markdown) of a served model, by its id from GET /models."""
    served = state.models.find(model_id)
    if served is None:
        raise UnknownModel(f"no served model has the id {model_id}")
    return Response(served.predictor.package.card_text(), media_type="text/markdown")


@router.post("/admin/models/reload", response_model=ReloadOut, responses=responses(*AUTH))
def reload_models(principal: CanManage, ctx: ContextDep, state: StateDep) -> ReloadOut:
    """Check every served URI now; a moved alias is loaded beside the old model, verified, warmed up
    and switched to. A package that fails is refused (and audited); the old one keeps serving."""
    results = state.models.reload(actor=principal.actor)
    state.store.audit(
        "model_reload",
        actor=principal.actor,
        outcome="ok",
        client=ctx.client,
        request_id=ctx.request_id,
        detail={"results": [{k: r[k] for k in ("role", "outcome")} for r in results]},
    )
    return ReloadOut(results=results)
