"""``POST /predict``: one house or ``{"instances": [...]}`` -> prices.

The body is read and validated here rather than by a FastAPI body parameter: the request
model belongs to the *serving* artifact and changes on a hot reload, and validating the raw
bytes with pydantic-core (``model_validate_json``) skips a ``json.loads`` pass. The handler is
``async def`` with no thread hop: validation and a NumPy prediction take microseconds, less
than handing the request to a worker thread would cost.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response
from pydantic import ValidationError

from app.routes.common import get_service, is_json, json_response, request_id
from app.schemas import error_list
from app.state import PredictionError

router = APIRouter(tags=["prediction"])

_ERRORS = {
    400: "Malformed JSON",
    413: "Body larger than MAX_BODY_BYTES",
    415: "Content type is not application/json",
    422: "Invalid house(s): each error names the field",
    503: "No verified model loaded, or shutting down",
}


@router.post(
    "/predict",
    summary="Predict sale prices",
    description=(
        "Send one house (an object with the model's features) or a batch "
        '`{"instances": [house, ...]}`. Fields, units, bounds and known categories come '
        "from the serving model (see `GET /model`). A category never seen in training is "
        "accepted, encoded as all zeros and listed in `unknown_categories`."
    ),
    responses={
        200: {"description": "Predicted price(s)"},
        **{code: {"description": text} for code, text in _ERRORS.items()},
    },
)
async def predict(request: Request) -> Response:
    svc = get_service(request)
    model = svc.holder.current
    errors = svc.metrics.prediction_errors
    if model is None or svc.holder.shutting_down:
        errors.labels("not_ready").inc()
        return json_response(
            503, {"detail": svc.holder.not_ready_reason()}, headers={"Retry-After": "1"}
        )
    if not is_json(request.headers.get("content-type")):
        errors.labels("unsupported_media_type").inc()
        return json_response(415, {"detail": "Content-Type must be application/json"})
    try:
        body = await request.body()
    except HTTPException as e:
        errors.labels("too_large" if e.status_code == 413 else "body").inc()
        raise
    try:
        rows, batch = model.schema.validate(body)
    except ValidationError as e:
        detail = error_list(e)
        malformed = any(err["type"] == "json_invalid" for err in detail)
        errors.labels("malformed_json" if malformed else "validation").inc()
        return json_response(400 if malformed else 422, {"detail": detail})

    rid = request_id(request)
    try:
        y, quality = svc.price(model, rows, rid)
    except PredictionError as e:
        return json_response(500, {"detail": str(e)})
    if batch:
        return json_response(
            200,
            {
                "prices": y.tolist(),
                "model_version": model.version,
                "request_id": rid,
                "unknown_categories": [
                    {"row": i, "feature": f, "value": v} for i, f, v in quality.unknown
                ],
            },
        )
    return json_response(
        200,
        {
            "price": float(y[0]),
            "model_version": model.version,
            "request_id": rid,
            "unknown_categories": {f: v for _, f, v in quality.unknown},
        },
    )
