"""The Open Inference Protocol ("V2", KServe/MLServer/Triton REST), so their clients work unchanged.

Server: ``GET /v2`` (metadata), ``/v2/health/live``, ``/v2/health/ready`` (status only, empty
body: 200 true; not ready is 503 with the reason, where the spec says "4xx", so an
orchestrator retries). Model ``houseprice``, optionally at its serving version
(``/v2/models/houseprice/versions/<model_version>/...``): metadata, ``ready``, ``infer``.

Each feature is one input tensor of shape ``[n]`` (or ``[n, 1]``): ``FP64`` (any numeric
datatype) for numeric features, ``BYTES`` (JSON strings) for categorical ones. The outputs are
``price`` and, when the artifact stores intervals, ``price_low`` and ``price_high`` at
``INTERVAL_LEVEL``, each ``FP64`` of shape ``[n]``. The tensors' values are validated as
strictly as ``/predict``'s houses and priced by the same path, and a 200 goes through the same
after-answer hook (the prediction log, feedback by the request id, the shadow). The request id
is the ``X-Request-Id``; without one, the body's ``id`` when it is a plain token (letters,
digits, ``._:-``, up to 128), else a new one. The answer's ``id`` echoes the body's. Errors
are the protocol's ``{"error": "..."}``: 400 for a bad request, 404 for an unknown model or
version, 503 when not ready, 500 when the model fails. Only JSON tensors: the binary tensor
extension (a body with ``Inference-Header-Content-Length``) is refused with a 400 that says so.

``infer`` carries traffic, so like ``/predict`` it is a plain ASGI endpoint (a Starlette route
matched before FastAPI's) that parses the body once: the common request by the serving model's
own V2 validator, in one pass, its tensors' columns priced as they are and transposed once into
the rows the drift window takes, as ``/predict``'s (:func:`_table`); any other by the generic one
(``V2_REQUEST``, then :func:`_rows`), whose errors name the input and element. FastAPI cannot
see the route, so :func:`operation` writes its OpenAPI entry.
"""

from __future__ import annotations

import math
from typing import Any
from weakref import WeakKeyDictionary

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from app.body import header, is_json, read_body
from app.routes.common import encode_json, get_service, json_response, request_id
from app.routes.predict import PRICED, _Route
from app.schemas import (
    REF_TEMPLATE,
    V2_NUMERIC_TYPES,
    V2_REQUEST,
    V2Error,
    V2InferenceRequest,
    V2ModelMetadata,
    V2RequestOutput,
    V2Tensor,
)
from app.state import LoadedModel, NotReadyError, PredictionError, Service, Table

MODEL_NAME = "houseprice"
SERVER_VERSION = "0.1.0"
NUMERIC_TYPES = frozenset(V2_NUMERIC_TYPES)
INFER_PATHS = ("/v2/models/{name}/infer", "/v2/models/{name}/versions/{version}/infer")

router = APIRouter(prefix="/v2", tags=["open inference protocol (v2)"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": V2Error, "description": "Invalid request"},
    404: {"model": V2Error, "description": "Unknown model name or version"},
    503: {"model": V2Error, "description": "Model not ready"},
}


class V2ProtocolError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _model(svc: Service, name: str, version: str | None = None) -> LoadedModel:
    if name != MODEL_NAME:
        raise V2ProtocolError(404, f"model {name!r} not found; this server serves {MODEL_NAME!r}")
    try:
        model = svc.ready_model()
    except NotReadyError as e:
        raise V2ProtocolError(503, f"model {name!r} is not ready: {e}") from None
    if version is not None and version != model.version:
        raise V2ProtocolError(
            404, f"model {name!r} version {version!r} not found; serving version {model.version!r}"
        )
    return model


def _fail(e: V2ProtocolError) -> Response:
    return json_response(e.status, {"error": str(e)})


def outputs_of(model: LoadedModel) -> list[str]:
    """The output tensors of ``model``: the price, and its interval when it has one."""
    return ["price", "price_low", "price_high"] if model.interval is not None else ["price"]


# --- server ------------------------------------------------------------------------------------


@router.get("", summary="Server metadata", operation_id="v2ServerMetadata")
async def server_metadata() -> Response:
    return json_response(200, {"name": MODEL_NAME, "version": SERVER_VERSION, "extensions": []})


@router.get(
    "/health/live",
    summary="Server liveness (status only, empty body)",
    operation_id="v2Live",
    response_class=Response,
    responses={200: {"description": "Live", "content": {}}},
)
async def server_live() -> Response:
    return Response(status_code=200)


@router.get(
    "/health/ready",
    summary="Server readiness (status only, empty body)",
    operation_id="v2Ready",
    response_class=Response,
    responses={
        200: {"description": "Ready", "content": {}},
        503: {"model": V2Error, "description": "Not ready"},
    },
)
async def server_ready(request: Request) -> Response:
    try:
        get_service(request).ready_model()
    except NotReadyError as e:
        return json_response(503, {"error": f"not ready: {e}"}, {"Retry-After": "1"})
    return Response(status_code=200)


# --- model metadata and readiness --------------------------------------------------------------


def _metadata(request: Request, name: str, version: str | None) -> Response:
    try:
        model = _model(get_service(request), name, version)
    except V2ProtocolError as e:
        return _fail(e)
    inputs = [{"name": k, "datatype": v, "shape": [-1]} for k, v in _datatypes(model).items()]
    outputs = [{"name": o, "datatype": "FP64", "shape": [-1]} for o in outputs_of(model)]
    return json_response(
        200,
        {
            "name": MODEL_NAME,
            "versions": [model.version],
            "platform": "houseprice-numpy",
            "inputs": inputs,
            "outputs": outputs,
        },
    )


def _ready(request: Request, name: str, version: str | None) -> Response:
    try:
        _model(get_service(request), name, version)
    except V2ProtocolError as e:
        return _fail(e)
    return json_response(200, {"name": MODEL_NAME, "ready": True})


@router.get(
    "/models/{name}",
    summary="Model metadata",
    operation_id="v2ModelMetadata",
    response_model=V2ModelMetadata,
    responses=_ERRORS,
)
async def model_metadata(name: str, request: Request) -> Response:
    return _metadata(request, name, None)


@router.get(
    "/models/{name}/versions/{version}",
    summary="Model metadata, at a version",
    operation_id="v2ModelVersionMetadata",
    response_model=V2ModelMetadata,
    responses=_ERRORS,
)
async def model_version_metadata(name: str, version: str, request: Request) -> Response:
    return _metadata(request, name, version)


@router.get(
    "/models/{name}/ready",
    summary="Model readiness",
    operation_id="v2ModelReady",
    responses=_ERRORS,
)
async def model_ready(name: str, request: Request) -> Response:
    return _ready(request, name, None)


@router.get(
    "/models/{name}/versions/{version}/ready",
    summary="Model readiness, at a version",
    operation_id="v2ModelVersionReady",
    responses=_ERRORS,
)
async def model_version_ready(name: str, version: str, request: Request) -> Response:
    return _ready(request, name, version)


# --- inference ---------------------------------------------------------------------------------


def _parse(body: bytes) -> V2InferenceRequest:
    """The inference request, its structure checked while parsing (pydantic-core)."""
    try:
        return V2_REQUEST.validate_json(body)
    except ValidationError as e:
        first = e.errors(include_url=False, include_input=False)[0]
        where = f" at {list(first['loc'])}" if first["loc"] else ""
        raise V2ProtocolError(400, f"invalid inference request: {first['msg']}{where}") from None


def _flat(t: V2Tensor) -> list[Any]:
    """The tensor's elements in row-major order, checked against its shape."""
    shape, data, name = t["shape"], t["data"], t["name"]
    if len(shape) not in (1, 2) or (len(shape) == 2 and shape[1] != 1):
        raise V2ProtocolError(400, f"input {name!r}: shape must be [n] or [n, 1], got {shape}")
    if any(type(v) is list for v in data):
        data = [x for v in data for x in (v if type(v) is list else (v,))]
    if any(s < 0 for s in shape) or math.prod(shape) != len(data):
        raise V2ProtocolError(
            400, f"input {name!r}: shape {shape} does not match {len(data)} element(s)"
        )
    return data


_DATATYPES: WeakKeyDictionary[LoadedModel, dict[str, str]] = WeakKeyDictionary()


def _datatypes(model: LoadedModel) -> dict[str, str]:
    """Input name -> its datatype (``BYTES`` or ``FP64``), once per loaded model."""
    found = _DATATYPES.get(model)
    if found is None:
        found = _DATATYPES[model] = {
            f.name: "BYTES" if f.kind == "categorical" else "FP64" for f in model.features
        }
    return found


def _rows(model: LoadedModel, inputs: list[V2Tensor]) -> list[Any]:
    """The validated houses of the input tensors."""
    datatypes = _datatypes(model)
    columns: dict[str, list[Any]] = {}
    n = -1  # the tensors' common length
    for t in inputs:
        name, datatype, shape, data = t["name"], t["datatype"], t["shape"], t["data"]
        expected = datatypes.get(name)
        if expected is None:
            raise V2ProtocolError(400, f"unknown input {name!r}; inputs are {sorted(datatypes)}")
        if name in columns:
            raise V2ProtocolError(400, f"input {name!r} given twice")
        if datatype != expected and (expected == "BYTES" or datatype not in NUMERIC_TYPES):
            if datatype not in NUMERIC_TYPES and datatype != "BYTES":
                raise V2ProtocolError(400, f"input {name!r}: unsupported datatype {datatype!r}")
            raise V2ProtocolError(
                400, f"input {name!r}: datatype {datatype} given, expected {expected}"
            )
        # the common case inline: shape [n], n elements (an element that is a list then
        # fails validation); any other shape is checked and flattened by _flat
        if len(shape) != 1 or shape[0] != len(data):
            data = _flat(t)
        columns[name] = data
        if len(data) != n:
            if n >= 0:
                lengths = {k: len(v) for k, v in columns.items()}
                raise V2ProtocolError(400, f"inputs have different lengths: {lengths}")
            n = len(data)
    if n == 0:
        raise V2ProtocolError(400, "inputs hold no elements")
    if n > model.schema.max_batch_size:
        raise V2ProtocolError(
            400, f"{n} rows is over the batch limit of {model.schema.max_batch_size}"
        )
    try:
        if n == 1:  # one house: its model directly, without the list around it
            return [model.schema.house.model_validate({k: v[0] for k, v in columns.items()})]
        names = list(columns)
        raw = [dict(zip(names, row, strict=True)) for row in zip(*columns.values(), strict=True)]
        rows: list[Any] = model.schema.rows.validate_python(raw)
    except ValidationError as e:
        first = e.errors(include_url=False)[0]
        loc = [0, *first["loc"]] if n == 1 else list(first["loc"])
        where = f"input {loc[1]!r} element {loc[0]}" if len(loc) >= 2 else f"at {loc}"
        raise V2ProtocolError(400, f"{where}: {first['msg']}") from None
    return rows


def _table(
    model: LoadedModel, body: bytes
) -> tuple[Table, list[tuple[Any, ...]], V2InferenceRequest] | None:
    """The table of a request whose tensors are each a feature's values, with shape ``[n]``,
    once, for ``n`` rows within the batch limit, every required feature given: the common
    request, checked in one pass of the model's own validator (``RequestSchema.tensors``),
    its columns taken as they are, and the same houses as rows (as
    ``LoadedModel.tabulate`` gives them). ``None`` for any other body, which :func:`_parse` and
    :func:`_rows` then check, naming what is wrong."""
    try:
        req = model.schema.tensors.validate_json(body)
    except ValidationError:
        return None
    inputs = req["inputs"]
    columns = {t["name"]: t["data"] for t in inputs}
    n = len(inputs[0]["data"])
    if (
        len(columns) != len(inputs)  # an input given twice
        or not 0 < n <= model.schema.max_batch_size
        or [t["shape"] for t in inputs].count([n]) != len(inputs)
        or list(map(len, columns.values())).count(n) != len(inputs)
        or not model.required <= columns.keys()
    ):
        return None
    if list(columns) != model.names:  # in the model's order, as /predict's table is
        missing = (None,) * n  # an optional feature not given
        columns = {name: columns.get(name, missing) for name in model.names}
    # every column holds n values (checked above): zip's own check would cost V2 a third more
    return columns, list(zip(*columns.values(), strict=False)), req


def _tensor(name: str, data: list[float]) -> dict[str, Any]:
    return {"name": name, "datatype": "FP64", "shape": [len(data)], "data": data}


class Infer:
    """The ASGI endpoint of ``POST /v2/models/{name}[/versions/{version}]/infer``."""

    def __init__(self, service: Service) -> None:
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        status, content = await self.answer(scope, receive)
        body = encode_json(content)
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        if status == 200:  # after the answer is sent: the log, feedback index and shadow
            self.service.traffic.served(*scope[PRICED])

    async def answer(self, scope: Scope, receive: Receive) -> tuple[int, dict[str, Any]]:
        svc = self.service
        params = scope["path_params"]
        try:
            model = _model(svc, params["name"], params.get("version"))
            body = await read_body(receive)
            if header(scope, b"inference-header-content-length") is not None:
                raise V2ProtocolError(
                    400,
                    "the binary tensor data extension is not supported: send JSON tensors "
                    "(tritonclient: binary_data=False)",
                )
            content_type = header(scope, b"content-type")
            if content_type is not None and not is_json(content_type):
                raise V2ProtocolError(415, "Content-Type must be application/json")
            fast = _table(model, body)
            if fast is not None:
                table, rows, req = fast
                wanted = _wanted(model, req.get("outputs"))
            else:
                req = _parse(body)
                wanted = _wanted(model, req.get("outputs"))
                table, rows = model.tabulate(_rows(model, req["inputs"]))
        except V2ProtocolError as e:
            reason = {503: "not_ready", 415: "unsupported_media_type"}.get(e.status, "validation")
            svc.metrics.requests.count_error(reason)
            return e.status, {"error": str(e)}
        named = req.get("id")
        rid = request_id(scope, named)
        try:
            priced = svc.price(model, table, rid, rows)
        except PredictionError as e:
            return 500, {"error": str(e)}
        scope[PRICED] = model, priced, rid
        prices = priced.prices
        outputs = [_tensor("price", prices)] if "price" in wanted else []
        if model.interval is not None and wanted != ["price"]:
            low, high = model.interval.factors
            if "price_low" in wanted:
                outputs.append(_tensor("price_low", [low(p) for p in prices]))
            if "price_high" in wanted:
                outputs.append(_tensor("price_high", [high(p) for p in prices]))
        return 200, {
            "model_name": MODEL_NAME,
            "model_version": model.version,
            "id": named or rid,  # the protocol echoes the request's id
            "outputs": outputs,
        }


def _wanted(model: LoadedModel, requested: list[V2RequestOutput] | None) -> list[str]:
    """The outputs to return: the requested ones (each must exist), else all."""
    available = outputs_of(model)
    if not requested:
        return available
    names = [o["name"] for o in requested]
    for name in names:
        if name not in available:
            raise V2ProtocolError(
                400, f"unknown output {name!r}; the outputs are {', '.join(available)}"
            )
    return names


def routes(service: Service) -> list[Route]:
    """The ``infer`` routes of one app; ``app.main`` adds them before FastAPI's routes."""
    endpoint = Infer(service)
    return [
        _Route(path, endpoint, methods=["POST"], name=f"v2_infer{i}", include_in_schema=False)
        for i, path in enumerate(INFER_PATHS)
    ]


def _inline_defs(schema: dict[str, Any]) -> dict[str, Any]:
    """A model's JSON schema with its ``$defs`` inlined (the models here are not recursive)."""
    defs = schema.pop("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return walk(defs[ref.removeprefix("#/$defs/")])
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    inlined: dict[str, Any] = walk(schema)
    return inlined


_INFER_ERRORS = {
    "400": "Invalid request (the message names the input and element)",
    "404": "Unknown model name or version",
    "415": "Body is not JSON",
    "500": "The model failed or returned a non-finite price",
    "503": "Model not ready",
}


def operation(path: str) -> dict[str, Any]:
    """The OpenAPI operation of one ``infer`` path."""
    ref = {"$ref": REF_TEMPLATE.format(model="V2Error")}
    parameters = [
        {"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
        for p in ("name", "version")
        if "{" + p + "}" in path
    ]
    request = _inline_defs(V2_REQUEST.json_schema())
    return {
        "tags": ["open inference protocol (v2)"],
        "summary": "Inference (Open Inference Protocol)",
        "operationId": "v2Infer" if "{version}" not in path else "v2VersionInfer",
        "parameters": parameters,
        "requestBody": {"required": True, "content": {"application/json": {"schema": request}}},
        "responses": {
            "200": {
                "description": "Output tensors: price (and price_low, price_high with intervals)",
                "content": {
                    "application/json": {
                        "schema": {"$ref": REF_TEMPLATE.format(model="V2InferenceResponse")}
                    }
                },
            },
            **{
                code: {
                    "description": text,
                    "content": {"application/json": {"schema": ref}},
                }
                for code, text in _INFER_ERRORS.items()
            },
        },
    }
