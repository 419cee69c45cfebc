"""Open Inference Protocol ("V2", KServe/MLServer) routes, so their clients work unchanged.

One model, named ``houseprice``. Each feature is one input tensor of shape ``[n]`` (or
``[n, 1]``): ``FP64`` for numeric features, ``BYTES`` (JSON strings) for categorical ones; the
output is the ``price`` tensor, ``FP64`` of shape ``[n]``. The tensors are turned into rows and
go through the same strict validator as ``/predict``; errors follow the protocol's
``{"error": "..."}`` shape.
"""

from __future__ import annotations

import math
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError

from app.body import BodyError, read_json
from app.routes.common import get_service, json_response, request_id
from app.schemas import (
    V2Error,
    V2InferenceRequest,
    V2InferenceResponse,
    V2ModelMetadata,
    V2Tensor,
)
from app.state import LoadedModel, NotReadyError, PredictionError, Service

MODEL_NAME = "houseprice"
NUMERIC_TYPES = {
    "FP64",
    "FP32",
    "FP16",
    "INT8",
    "INT16",
    "INT32",
    "INT64",
    "UINT8",
    "UINT16",
    "UINT32",
    "UINT64",
}

router = APIRouter(prefix="/v2/models", tags=["open inference protocol (v2)"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": V2Error, "description": "Invalid request"},
    404: {"model": V2Error, "description": "Unknown model name"},
    503: {"model": V2Error, "description": "Model not ready"},
}


class V2ProtocolError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _model(svc: Service, name: str) -> LoadedModel:
    if name != MODEL_NAME:
        raise V2ProtocolError(404, f"model {name!r} not found; this server serves {MODEL_NAME!r}")
    try:
        return svc.ready_model()
    except NotReadyError as e:
        raise V2ProtocolError(503, f"model {name!r} is not ready: {e}") from None


def _fail(e: V2ProtocolError) -> Response:
    return json_response(e.status, {"error": str(e)})


@router.get(
    "/{name}",
    summary="Model metadata",
    operation_id="v2ModelMetadata",
    response_model=V2ModelMetadata,
    responses=_ERRORS,
)
async def model_metadata(name: str, request: Request) -> Response:
    try:
        model = _model(get_service(request), name)
    except V2ProtocolError as e:
        return _fail(e)
    inputs = [
        {
            "name": f.name,
            "datatype": "BYTES" if f.kind == "categorical" else "FP64",
            "shape": [-1],
        }
        for f in model.features
    ]
    return json_response(
        200,
        {
            "name": MODEL_NAME,
            "versions": [model.version],
            "platform": "houseprice-numpy",
            "inputs": inputs,
            "outputs": [{"name": "price", "datatype": "FP64", "shape": [-1]}],
        },
    )


@router.get(
    "/{name}/ready", summary="Model readiness", operation_id="v2ModelReady", responses=_ERRORS
)
async def model_ready(name: str, request: Request) -> Response:
    try:
        _model(get_service(request), name)
    except V2ProtocolError as e:
        return _fail(e)
    return json_response(200, {"name": MODEL_NAME, "ready": True})


def _flat(t: V2Tensor) -> list[Any]:
    """The tensor's elements in row-major order, checked against its shape."""
    data: list[Any] = []
    for v in t.data:
        if isinstance(v, list):
            data.extend(v)
        else:
            data.append(v)
    if len(t.shape) not in (1, 2) or (len(t.shape) == 2 and t.shape[1] != 1):
        raise V2ProtocolError(400, f"input {t.name!r}: shape must be [n] or [n, 1], got {t.shape}")
    if any(s < 0 for s in t.shape) or math.prod(t.shape) != len(data):
        raise V2ProtocolError(
            400, f"input {t.name!r}: shape {t.shape} does not match {len(data)} element(s)"
        )
    return data


def _rows(model: LoadedModel, req: V2InferenceRequest) -> list[dict[str, Any]]:
    specs = {f.name: f for f in model.features}
    columns: dict[str, list[Any]] = {}
    for t in req.inputs:
        spec = specs.get(t.name)
        if spec is None:
            raise V2ProtocolError(400, f"unknown input {t.name!r}; inputs are {sorted(specs)}")
        if t.name in columns:
            raise V2ProtocolError(400, f"input {t.name!r} given twice")
        if t.datatype not in NUMERIC_TYPES and t.datatype != "BYTES":
            raise V2ProtocolError(400, f"input {t.name!r}: unsupported datatype {t.datatype!r}")
        if (t.datatype == "BYTES") != (spec.kind == "categorical"):
            expected = "BYTES" if spec.kind == "categorical" else "FP64"
            raise V2ProtocolError(
                400, f"input {t.name!r}: datatype {t.datatype} given, expected {expected}"
            )
        columns[t.name] = _flat(t)
    lengths = {len(v) for v in columns.values()}
    if len(lengths) != 1:
        raise V2ProtocolError(
            400, f"inputs have different lengths: { {k: len(v) for k, v in columns.items()} }"
        )
    n = lengths.pop()
    if n == 0:
        raise V2ProtocolError(400, "inputs hold no elements")
    if n > model.schema.max_batch_size:
        raise V2ProtocolError(
            400, f"{n} rows is over the batch limit of {model.schema.max_batch_size}"
        )
    return [{k: v[i] for k, v in columns.items()} for i in range(n)]


def _inline_defs(schema: dict[str, Any]) -> dict[str, Any]:
    """A model's JSON schema with its ``$defs`` inlined (the models here are not recursive).

    ``openapi_extra`` is copied into the OpenAPI document as it is, where pydantic's
    ``#/$defs/V2Tensor`` references would point nowhere and clients could not resolve them.
    """
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


@router.post(
    "/{name}/infer",
    summary="Inference (Open Inference Protocol)",
    operation_id="v2Infer",
    response_model=V2InferenceResponse,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": _inline_defs(V2InferenceRequest.model_json_schema())}
            },
        }
    },
    responses={
        **_ERRORS,
        415: {"model": V2Error, "description": "Body is not JSON"},
        500: {"model": V2Error, "description": "The model failed or returned a non-finite price"},
    },
)
async def infer(name: str, request: Request) -> Response:
    svc = get_service(request)
    count_error = svc.metrics.requests.count_error
    try:
        model = _model(svc, name)
        try:
            req = await read_json(
                request.scope, request.receive, V2InferenceRequest.model_validate_json, 1
            )
        except BodyError as e:
            if not isinstance(e.detail, list):
                raise V2ProtocolError(e.status, e.detail) from None
            first = e.detail[0]
            raise V2ProtocolError(
                400, f"invalid inference request: {first['msg']} at {first['loc'][1:]}"
            ) from None
        for out in req.outputs or ():
            if out.name != "price":
                raise V2ProtocolError(
                    400, f"unknown output {out.name!r}; the only output is 'price'"
                )
        raw_rows = _rows(model, req)
        try:
            rows = model.schema.rows.validate_python(raw_rows)
        except ValidationError as e:
            first = e.errors(include_url=False)[0]
            loc = list(first["loc"])
            where = f"input {loc[1]!r} element {loc[0]}" if len(loc) >= 2 else f"at {loc}"
            raise V2ProtocolError(400, f"{where}: {first['msg']}") from None
    except V2ProtocolError as e:
        count_error("not_ready" if e.status == 503 else "validation")
        return _fail(e)

    try:
        prices = svc.price(model, rows, request_id(request.scope)).prices
    except PredictionError as e:
        return json_response(500, {"error": str(e)})
    return json_response(
        200,
        {
            "model_name": MODEL_NAME,
            "model_version": model.version,
            "id": req.id or request_id(request.scope),
            "outputs": [
                {
                    "name": "price",
                    "datatype": "FP64",
                    "shape": [len(prices)],
                    "data": prices,
                }
            ],
        },
    )
