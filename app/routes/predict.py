"""``POST /predict``: one house or ``{"instances": [...]}`` -> prices.

The one route that carries the traffic is a plain ASGI endpoint (a Starlette ``Route``), not
a FastAPI path operation. FastAPI's per-request machinery — a ``Request``, dependency
solving, the endpoint wrapper — cost about 55 µs in process, more than validating and
pricing a house does; without it ``/predict`` answers at about 80 % of the rate of a FastAPI
route that returns a constant, against 50-70 % with it (docs/PERFORMANCE.md). Nothing else
changes: the same middleware (request id, body
limit, metrics, access line), the same exception handlers, the same JSON errors, and
``OPERATION`` below is the OpenAPI operation ``app.main`` publishes for it, with the serving
model's request schema.

The body is validated from raw bytes with pydantic-core (``model_validate_json``), which
skips a ``json.loads`` pass, against the validators of the *serving* artifact, which change
on a hot reload. The handler never leaves the event loop: validation and a NumPy prediction
take microseconds, less than handing the request to a worker thread would cost.
"""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException
from pydantic import ValidationError
from starlette.requests import ClientDisconnect
from starlette.routing import Match, Route
from starlette.types import Receive, Scope, Send

from app.routes.common import encode_json, is_json
from app.schemas import error_list
from app.state import PredictionError, Service

PATH = "/predict"

ERRORS = {
    400: "Malformed JSON",
    413: "Body larger than MAX_BODY_BYTES",
    415: "Content type is not application/json",
    422: "Invalid house(s): each error names the field",
    503: "No verified model loaded, or shutting down",
}

OPERATION: dict[str, Any] = {
    "tags": ["prediction"],
    "summary": "Predict sale prices",
    "description": (
        "Send one house (an object with the model's features) or a batch "
        '`{"instances": [house, ...]}`. Fields, units, bounds and known categories come '
        "from the serving model (see `GET /model`). A category never seen in training is "
        "accepted, encoded as all zeros and listed in `unknown_categories`."
    ),
    "operationId": "predict_predict_post",
    "responses": {
        "200": {"description": "Predicted price(s)"},
        **{str(code): {"description": text} for code, text in ERRORS.items()},
    },
}


Answer = tuple[int, Any, list[tuple[bytes, bytes]]]  # status, JSON content, extra headers


class Predict:
    """The ASGI endpoint of ``POST /predict``, bound to one app's ``Service``."""

    def __init__(self, service: Service) -> None:
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        status, content, headers = await self.answer(scope, receive)
        body = encode_json(content)
        headers += [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def answer(self, scope: Scope, receive: Receive) -> Answer:
        svc = self.service
        model = svc.holder.current
        errors = svc.metrics.prediction_errors
        if model is None or svc.holder.shutting_down:
            errors.labels("not_ready").inc()
            return 503, {"detail": svc.holder.not_ready_reason()}, [(b"retry-after", b"1")]
        if not is_json(_header(scope, b"content-type")):
            errors.labels("unsupported_media_type").inc()
            return 415, {"detail": "Content-Type must be application/json"}, []
        try:
            body = await read_body(receive)
        except HTTPException as e:  # from the middleware's body limit and deadline
            errors.labels("too_large" if e.status_code == 413 else "body").inc()
            raise
        try:
            rows, batch = model.schema.validate(body)
        except ValidationError as e:
            detail = error_list(e)
            malformed = any(err["type"] == "json_invalid" for err in detail)
            errors.labels("malformed_json" if malformed else "validation").inc()
            return 400 if malformed else 422, {"detail": detail}, []

        rid: str = scope.get("request_id") or ""
        try:
            y, quality = svc.price(model, rows, rid)
        except PredictionError as e:
            return 500, {"detail": str(e)}, []
        if batch:
            prices = {
                "prices": y.tolist(),
                "model_version": model.version,
                "request_id": rid,
                "unknown_categories": [
                    {"row": i, "feature": f, "value": v} for i, f, v in quality.unknown
                ],
            }
            return 200, prices, []
        price = {
            "price": float(y[0]),
            "model_version": model.version,
            "request_id": rid,
            "unknown_categories": {f: v for _, f, v in quality.unknown},
        }
        return 200, price, []


async def read_body(receive: Receive) -> bytes:
    """The whole request body, as ``Request.body()`` reads it, without building a Request."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


class _Route(Route):
    """A Starlette route that records itself as ``scope["route"]`` when it matches.

    Starlette's router does that for every route; FastAPI's does it only for its own path
    operations, and the request middleware labels metrics with the matched route's path.
    """

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child = super().matches(scope)
        if match is not Match.NONE:
            child["route"] = self
        return match, child


def route(service: Service) -> Route:
    """The ``/predict`` route of one app; ``app.main`` adds it before every other route."""
    return _Route(PATH, Predict(service), methods=["POST"], name="predict", include_in_schema=False)
