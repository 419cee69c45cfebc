"""``GET /model``: the serving artifact's metadata record (Contract 1), and the shadow
model's under ``"shadow"`` while one is loaded."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from app.routes.common import get_service, json_response
from app.schemas import ErrorMessage

router = APIRouter(tags=["model"])


@router.get(
    "/model",
    summary="Metadata of the serving model",
    operation_id="getModel",
    response_model=dict[str, Any],
    responses={503: {"model": ErrorMessage, "description": "No model loaded"}},
)
async def model_metadata(
    request: Request,
    include_reference: bool = Query(
        False, description="Include the training reference profiles (bulky; used by /drift)"
    ),
) -> Response:
    svc = get_service(request)
    model = svc.ready_model()
    meta = {k: v for k, v in model.metadata.items() if include_reference or k != "reference"}
    meta["artifact"] = {"sha256": model.sha256, "loaded_at": model.loaded_at}
    shadow = svc.traffic.shadow
    if shadow is not None:  # the challenger, scored on the same traffic (SHADOW_MODEL_PATH)
        meta["shadow"] = shadow.describe()
    rule = model.interval  # the stored level INTERVAL_LEVEL serves (null: answers carry none)
    meta["served_interval"] = None if rule is None else asdict(rule)
    return json_response(200, meta)  # plain JSON: save_artifact stores it so
