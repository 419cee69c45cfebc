"""The serving shortcuts answer exactly as the general paths they bypass.

``RequestSchema.validate`` tries a body mentioning "instances" as a batch before the tagged
union; the result (rows, batch flag) and, for invalid bodies, the errors must be the union's.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from app.schemas import FeatureSpec, RequestSchema, build_request_schema, error_list

FEATURES = [
    {"name": "area", "kind": "numeric", "required": True, "bounds": [1, 20000], "example": 1500},
    {"name": "rooms", "kind": "numeric", "required": False, "bounds": [0, 20], "example": 3},
    {"name": "hood", "kind": "categorical", "required": True, "categories": ["A", "B"]},
]


@pytest.fixture(scope="module")
def schema() -> RequestSchema:
    specs = tuple(FeatureSpec.from_metadata(f) for f in FEATURES)
    return build_request_schema(specs, max_batch_size=100)


def union(schema: RequestSchema, body: bytes) -> tuple[list[Any], bool]:
    parsed = schema.body.validate_json(body)
    if isinstance(parsed, schema.batch):
        return list(parsed.instances), True  # type: ignore[attr-defined]
    return [parsed], False


HOUSE = {"area": 1200.0, "rooms": 2, "hood": "A"}
BODIES = {
    "batch": {"instances": [HOUSE, {"area": 80, "hood": "instances"}]},
    "house naming instances": {"area": 90, "hood": "instances"},
    "house": HOUSE,
}
INVALID = {
    "batch with a bad row": {"instances": [HOUSE, {"area": -1, "hood": "A"}]},
    "empty batch": {"instances": []},
    "batch and house fields": {"instances": [HOUSE], "area": 3},
    "house naming instances, bad": {"area": "x", "hood": "instances"},
    "instances not a list": {"instances": 3},
}


@pytest.mark.parametrize("name", sorted(BODIES))
def test_valid_bodies_give_the_unions_rows(schema: RequestSchema, name: str) -> None:
    body = json.dumps(BODIES[name]).encode()
    rows, batch = schema.validate(body)
    ref_rows, ref_batch = union(schema, body)
    assert batch is ref_batch
    assert [r.model_dump() for r in rows] == [r.model_dump() for r in ref_rows]


def test_a_batch_key_written_with_json_escapes_is_the_batch_key(schema: RequestSchema) -> None:
    """``"\\u0069nstances"`` is the key ``instances`` to every JSON parser: a batch, not a house
    with an unknown field; and an escaped feature name is that feature."""
    house = json.dumps(HOUSE)
    body = b'{"\\u0069nstances": [' + house.encode() + b', {"\\u0061rea": 80, "hood": "B"}]}'
    rows, batch = schema.validate(body)
    assert batch is True
    assert [r.model_dump() for r in rows] == [
        {"area": 1200.0, "rooms": 2, "hood": "A"},
        {"area": 80.0, "rooms": None, "hood": "B"},
    ]
    ref_rows, ref_batch = union(schema, body)
    assert ref_batch is True and [r.model_dump() for r in ref_rows] == [
        r.model_dump() for r in rows
    ]


@pytest.mark.parametrize("name", sorted(INVALID))
def test_invalid_bodies_give_the_unions_errors(schema: RequestSchema, name: str) -> None:
    body = json.dumps(INVALID[name]).encode()
    with pytest.raises(ValidationError) as ours:
        schema.validate(body)
    with pytest.raises(ValidationError) as ref:
        union(schema, body)
    assert error_list(ours.value, 20) == error_list(ref.value, 20)


def test_the_server_freezes_the_heap_after_start_up_and_the_app_alone_does_not(
    artifact_path: str,
) -> None:
    """GC policy is the server's (``app/serve.py``): an app embedded in a test client gets
    none of it; ``Server.startup`` freezes the start-up heap and raises the young threshold."""
    import asyncio
    import gc

    import uvicorn
    from fastapi.testclient import TestClient

    from app.main import create_app
    from app.serve import YOUNG_GC_THRESHOLD, Server
    from app.settings import Settings

    gc.unfreeze()
    default = gc.get_threshold()
    app = create_app(Settings.from_env({"MODEL_PATH": artifact_path}))
    try:
        with TestClient(app) as client:
            assert client.get("/health/ready").status_code == 200
            assert gc.get_freeze_count() == 0 and gc.get_threshold() == default
        server = Server(uvicorn.Config(app, host="127.0.0.1", port=0), app.state.service)

        async def start_and_stop() -> None:
            serving = asyncio.create_task(server.serve())
            for _ in range(1000):
                if server.started:
                    break
                await asyncio.sleep(0.01)
            assert app.state.service.holder.ready
            assert gc.get_freeze_count() > 10_000  # the start-up heap, model included
            assert gc.get_threshold() == (YOUNG_GC_THRESHOLD, *default[1:])
            server.should_exit = True
            await serving

        asyncio.run(start_and_stop())
    finally:
        gc.unfreeze()
        gc.set_threshold(*default)
