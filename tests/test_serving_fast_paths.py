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


@pytest.mark.parametrize("name", sorted(INVALID))
def test_invalid_bodies_give_the_unions_errors(schema: RequestSchema, name: str) -> None:
    body = json.dumps(INVALID[name]).encode()
    with pytest.raises(ValidationError) as ours:
        schema.validate(body)
    with pytest.raises(ValidationError) as ref:
        union(schema, body)
    assert error_list(ours.value) == error_list(ref.value)


def test_start_up_freezes_the_heap_and_raises_the_young_gc_threshold(artifact_path: str) -> None:
    import gc

    from fastapi.testclient import TestClient

    from app.main import YOUNG_GC_THRESHOLD, create_app
    from app.settings import Settings

    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    default = gc.get_threshold()
    app = create_app(Settings.from_env({"MODEL_PATH": artifact_path}))
    try:
        with TestClient(app) as client:
            assert client.get("/health/ready").status_code == 200
            assert gc.get_freeze_count() > 10_000  # the start-up heap, model included
            assert gc.get_threshold() == (YOUNG_GC_THRESHOLD, *default[1:])
    finally:
        gc.unfreeze()
        gc.set_threshold(*default)
