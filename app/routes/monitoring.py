"""``GET /metrics``, ``GET /drift`` and ``POST /feedback``.

Feedback turns into three counters per model version — count, sum of absolute errors and sum
of squared errors — rather than a gauge of "current MAE": sums add up across replicas and over
time windows, so PromQL computes the live error correctly with no shared state::

    MAE  = sum(rate(houseprice_feedback_abs_error_dollars_sum[1h])) / sum(rate(houseprice_feedback_total[1h]))
    RMSE = sqrt(sum(rate(houseprice_feedback_squared_error_dollars_sum[1h])) / sum(rate(houseprice_feedback_total[1h])))
"""  # noqa: E501

from __future__ import annotations

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
        404: {"model": ErrorMessage, "description": "A model version this server never served"},
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
        mt = svc.metrics
        mt.feedback.labels(fb.model_version).inc()
        mt.feedback_abs_error.labels(fb.model_version).observe(abs(err))
        mt.feedback_squared_error.labels(fb.model_version).observe(err * err)
    return json_response(
        200,
        {"model_version": fb.model_version, "abs_error": abs(err), "squared_error": err * err},
    )
