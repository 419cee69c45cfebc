"""``POST /predict``: one house or ``{"instances": [...]}`` -> prices.

The one route that carries the traffic is a plain ASGI endpoint (a Starlette ``Route``), not
a FastAPI path operation: FastAPI's per-request machinery (a ``Request``, dependency solving,
the endpoint wrapper) costs more than validating and pricing a house does. FastAPI cannot see
the route, so this module also writes its OpenAPI operation (:func:`operation`), with the
serving model's request schema.

The body is validated from raw bytes with pydantic-core (``model_validate_json``) against the
validators of the *serving* artifact, which change on a hot reload. The handler never leaves
the event loop: validation and pricing take microseconds, less than a worker thread's hand-off.
"""

from __future__ import annotations

import copy
from typing import Any

from starlette.routing import Match, Route
from starlette.types import Receive, Scope, Send

from app.answers import explain_flag, explanations
from app.body import BodyError, read_json
from app.routes.common import encode_json, request_id
from app.state import LoadedModel, NotReadyError, PredictionError, Service

PATH = "/predict"

Answer = tuple[int, Any, list[tuple[bytes, bytes]]]  # status, JSON content, extra headers
#: The scope key under which ``answer`` leaves what it priced for the after-answer hook.
PRICED = "houseprice.priced"


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
        if status == 200:  # after the answer is sent: the log, feedback index and shadow
            self.service.traffic.served(*scope[PRICED])

    async def answer(self, scope: Scope, receive: Receive) -> Answer:
        svc = self.service
        count_error = svc.metrics.requests.count_error
        try:
            model = svc.ready_model()
            explain = explain_flag(scope) if scope["query_string"] else False
            rows, batch = await read_json(
                scope, receive, model.schema.validate, svc.settings.max_errors, model.key_guard
            )
            table, values = model.tabulate(rows)
            # before pricing: a model that cannot explain refuses before anything is recorded
            explained = explanations(model, table) if explain else None
        except NotReadyError as e:
            count_error("not_ready")
            return 503, {"detail": str(e)}, [(b"retry-after", b"1")]
        except BodyError as e:
            count_error(e.reason)
            return e.status, e.content(), []
        except PredictionError as e:
            count_error("model_error")
            return 500, {"detail": str(e)}, []
        rid = request_id(scope)
        try:
            priced = svc.price(model, table, rid, values)
        except PredictionError as e:
            return 500, {"detail": str(e)}, []
        scope[PRICED] = model, priced, rid
        unknown = priced.quality.unknown
        interval = model.interval
        if batch:
            content: dict[str, Any] = {"prices": priced.prices}
            if interval is not None:
                content["intervals"] = interval.around(priced.prices)
            if explained is not None:
                content["explanations"] = explained
            content.update(
                model_version=model.version,
                request_id=rid,
                unknown_categories=[{"row": i, "feature": f, "value": v} for i, f, v in unknown],
            )
            return 200, content, []
        price = priced.prices[0]
        content = {"price": price}
        if interval is not None:
            content["interval"] = interval.of(price)
        if explained is not None:
            content["explanation"] = explained[0]
        content["model_version"] = model.version
        content["request_id"] = rid
        content["unknown_categories"] = {f: v for _, f, v in unknown} if unknown else {}
        return 200, content, []


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


_ERRORS = {
    "400": ("Malformed JSON", "ValidationErrorResponse"),
    "413": ("Body larger than MAX_BODY_BYTES", "ErrorMessage"),
    "415": ("Content type is not application/json", "ErrorMessage"),
    "422": ("Invalid house(s): each error names the field", "ValidationErrorResponse"),
    "500": ("The model failed or returned a non-finite price (logged)", "ErrorMessage"),
    "503": ("No verified model loaded, or shutting down", "ErrorMessage"),
}


EXPLAIN_DOC = (
    "Add `explanation` (a batch: `explanations`, one per house): `{space, method, baseline, "
    "contributions: {feature: c}}` such that `exp(baseline + Σ c)` (space `log`; `expm1` for "
    "`log1p`) or `baseline + Σ c` (space `price`) is the price. Method `exact-linear`: each "
    "feature's term of the linear model; `saabas`: tree path contributions (each split's "
    "change of the node value credited to its feature). 422 for a model with neither."
)


def _explained_example(model: LoadedModel) -> dict[str, Any] | None:
    """The one-house example answer with its explanation (``None`` if the model has none)."""
    try:
        row = model.schema.house.model_validate(model.schema.example)
        explained = explanations(model, model.table([row]))[0]
    except BodyError:
        return None
    value = {**model.answer_examples["house"]["value"], "explanation": explained}
    return {"summary": "One house with ?explain=true", "value": value}


def operation(model: LoadedModel | None, ref: str) -> dict[str, Any]:
    """The OpenAPI operation of ``POST /predict`` for the serving ``model`` (or none yet).

    ``ref`` formats a component name into a ``$ref`` (``REF_TEMPLATE``); the house schemas
    themselves are ``model.schema.components``, which the caller adds to the document.
    """

    def to(name: str) -> dict[str, str]:
        return {"$ref": ref.format(model=name)}

    description = (
        "Send one house (an object with the model's features) or a batch "
        '`{"instances": [house, ...]}`. Fields, units, bounds and known categories come '
        "from the serving model (see `GET /model`). A category never seen in training is "
        "accepted, encoded as all zeros and listed in `unknown_categories`."
    )
    ok: dict[str, Any] = {"schema": {"oneOf": [to("PredictResponse"), to("BatchPredictResponse")]}}
    if model is None:
        request: dict[str, Any] = {"schema": {"type": "object"}}
    else:
        description += f" Serving model version: `{model.version}`."
        example = model.schema.example
        request = {
            "schema": {"oneOf": [to("House"), to("HouseBatch")]},
            "examples": {
                "house": {"summary": "One house", "value": example},
                "batch": {"summary": "A batch", "value": {"instances": [example, example]}},
            },
        }
        ok["examples"] = copy.deepcopy(model.answer_examples)
        explained = _explained_example(model)
        if explained is not None:
            ok["examples"]["house_explained"] = explained
    return {
        "tags": ["prediction"],
        "summary": "Predict sale prices",
        "description": description,
        "operationId": "predict",
        "parameters": [
            {
                "name": "explain",
                "in": "query",
                "required": False,
                "schema": {"type": "boolean", "default": False},
                "description": EXPLAIN_DOC,
            }
        ],
        "requestBody": {"required": True, "content": {"application/json": request}},
        "responses": {
            "200": {"description": "Predicted price(s)", "content": {"application/json": ok}},
            **{
                code: {
                    "description": text,
                    "content": {"application/json": {"schema": to(schema)}},
                }
                for code, (text, schema) in _ERRORS.items()
            },
        },
    }
