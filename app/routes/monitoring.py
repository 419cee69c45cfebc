"""``GET /metrics``, ``GET /drift`` and ``POST /feedback``.

Feedback names the answer by ``request_id`` (and ``index`` in a batch; the server looks it up
in the feedback index of ``app/traffic.py``) or gives its ``model_version`` and
``predicted_price``. It turns into three counters per model version and role (``champion``, or
``shadow`` for the shadow's price of a house found by id) — count, sum of absolute errors and
sum of squared errors — rather than a gauge of "current MAE": sums add up across replicas and
over time windows, so PromQL computes the live error correctly with no shared state::

    MAE  = sum(rate(houseprice_feedback_abs_error_dollars_sum[1h])) / sum(rate(houseprice_feedback_total[1h]))
    RMSE = sqrt(sum(rate(houseprice_feedback_squared_error_dollars_sum[1h])) / sum(rate(houseprice_feedback_total[1h])))
"""  # noqa: E501

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.body import KeyGuard, read_json
from app.routes.common import get_service, json_response
from app.schemas import (
    ErrorMessage,
    FeedbackRequest,
    FeedbackResponse,
    ValidationErrorResponse,
)
from app.state import Service

router = APIRouter(tags=["monitoring"])
_GUARD = KeyGuard(FeedbackRequest.model_fields)


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    operation_id="getMetrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
async def metrics(request: Request) -> Response:
    data, content_type = get_service(request).metrics.render()
    return Response(data, media_type=content_type)


@router.get(
    "/drift",
    summary="Live drift report per feature and for the prediction",
    operation_id="getDrift",
    responses={503: {"model": ErrorMessage, "description": "No model, or monitoring off"}},
)
async def drift(request: Request) -> Response:
    svc = get_service(request)
    model = svc.ready_model()
    if not svc.monitoring:
        return json_response(503, {"detail": "monitoring is disabled (MONITORING_ENABLED=false)"})
    if model.monitor is None:
        return json_response(
            503, {"detail": "the serving artifact has no reference profile to compare with"}
        )
    return json_response(200, model.monitor.report())


@router.post(
    "/feedback",
    summary="Report the observed sale price of a served prediction",
    operation_id="postFeedback",
    response_model=FeedbackResponse,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": FeedbackRequest.model_json_schema()}},
        }
    },
    responses={
        400: {"model": ValidationErrorResponse, "description": "Malformed JSON"},
        415: {"model": ErrorMessage, "description": "Body is not JSON"},
        404: {
            "model": ErrorMessage,
            "description": "A model version this server never served, or a request_id not "
            "among its recent answers (FEEDBACK_INDEX_SIZE houses)",
        },
        422: {"model": ValidationErrorResponse, "description": "Invalid feedback"},
    },
)
async def feedback(request: Request) -> Response:
    svc = get_service(request)
    fb = await read_json(
        request.scope,
        request.receive,
        FeedbackRequest.model_validate_json,
        svc.settings.max_errors,
        _GUARD,
    )
    if fb.model_version is None or fb.predicted_price is None:
        return _feedback_by_id(svc, fb)
    # Only versions this process has served: a free-form label would let any client create
    # unbounded Prometheus series.
    if fb.model_version not in svc.holder.versions:
        return json_response(
            404,
            {
                "detail": f"model_version {fb.model_version!r} was never served here; "
                f"served: {sorted(svc.holder.versions)}"
            },
        )
    err = fb.actual_price - fb.predicted_price
    if svc.monitoring:
        svc.metrics.observe_feedback(fb.model_version, "champion", err)
    return json_response(
        200,
        {"model_version": fb.model_version, "abs_error": abs(err), "squared_error": err * err},
    )


def _feedback_by_id(svc: Service, fb: FeedbackRequest) -> Response:
    """Feedback naming a recent answer by ``request_id`` (and ``index`` in a batch): scored
    against the champion's price and, when the shadow priced the house, the shadow's."""
    rid = str(fb.request_id)
    index = svc.traffic.index
    if index is None:
        return json_response(
            404,
            {
                "detail": "feedback by request_id is off (FEEDBACK_INDEX_SIZE=0); send "
                "model_version and predicted_price"
            },
        )
    served = index.get(rid)
    if served is None:
        return json_response(
            404,
            {
                "detail": f"request_id {rid!r} is not among the {index.capacity} most recent "
                "houses priced here (unknown, or expired from the feedback index); send "
                "model_version and predicted_price instead"
            },
        )
    n = len(served.prices)
    i = fb.index if fb.index is not None else 0
    if i >= n or (fb.index is None and n > 1):
        why = (
            f"request {rid!r} priced {n} houses: give the house's position in the batch"
            if fb.index is None
            else f"request {rid!r} priced {n} house(s): index {i} is out of range"
        )
        return json_response(
            422,
            {
                "detail": [{"loc": ["body", "index"], "msg": why, "type": "value_error"}],
                "error_count": 1,
            },
        )
    predicted = served.prices[i]
    err = fb.actual_price - predicted
    out: dict[str, Any] = {
        "model_version": served.model_version,
        "abs_error": abs(err),
        "squared_error": err * err,
        "request_id": rid,
        "index": i,
        "predicted_price": predicted,
    }
    shadow_prices, shadow_version = served.shadow_prices, served.shadow_version
    if svc.monitoring:
        svc.metrics.observe_feedback(served.model_version, "champion", err)
    if shadow_prices is not None and shadow_version is not None:
        s_err = fb.actual_price - shadow_prices[i]
        if svc.monitoring:
            svc.metrics.observe_feedback(shadow_version, "shadow", s_err)
        out["shadow"] = {
            "model_version": shadow_version,
            "predicted_price": shadow_prices[i],
            "abs_error": abs(s_err),
            "squared_error": s_err * s_err,
        }
    return json_response(200, out)
