"""app.schemas: the limits the request models declare, each at its edge (issue 20).

Mutation testing showed these survive the other unit tests: the strict config's refusal of NaN
and Infinity, the /feedback price limits, the /reload and V2 length limits, V2's non-empty
``inputs`` and ``extra="forbid"``. Each test states one limit: the last value it allows and the
first it refuses, with the error type pydantic reports for it.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from pydantic import BaseModel, TypeAdapter, ValidationError

from app.schemas import (
    FeatureSpec,
    FeedbackRequest,
    ReloadRequest,
    V2InferenceRequest,
    V2Tensor,
    _reload_kind,
    build_request_schema,
    error_list,
)

SPECS = [
    FeatureSpec.from_metadata(e)
    for e in [
        {"name": "area", "kind": "numeric", "required": True, "bounds": [1, 100]},
        {"name": "rooms", "kind": "numeric", "required": False},  # no bounds
        {"name": "year", "kind": "integer", "required": False},
        {"name": "town", "kind": "categorical", "required": True, "categories": ["A"]},
    ]
]
FEEDBACK = {"model_version": "v1", "predicted_price": 200000.0, "actual_price": 210000.0}
TENSOR = {"name": "area", "shape": [1], "datatype": "FP64", "data": [5.0]}


def error_types(model: Any, value: dict[str, Any]) -> list[str]:
    """The error types of validating ``value`` against a model or a typed dict (``[]`` when
    it is valid)."""
    try:
        TypeAdapter(model).validate_python(value)
    except ValidationError as e:
        return [err["type"] for err in e.errors()]
    return []


def json_error_types(model: type[BaseModel], body: str) -> list[str]:
    try:
        model.model_validate_json(body)
    except ValidationError as e:
        return [err["type"] for err in e.errors()]
    return []


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_house_refuses_nan_and_infinity_as_not_finite(token: str) -> None:
    house = build_request_schema(SPECS, max_batch_size=2).house
    for name in ("rooms", "year"):  # a free number and a whole number, neither bounded
        body = f'{{"area": 5, "town": "A", "{name}": {token}}}'
        assert json_error_types(house, body) == ["finite_number"], name
    assert json_error_types(house, '{"area": 5, "town": "A", "rooms": 1e308}') == []


def test_house_and_batch_are_strict_and_closed() -> None:
    schema = build_request_schema(SPECS, max_batch_size=2)
    assert error_types(schema.house, {"area": "5", "town": "A"}) == ["float_type"]
    assert error_types(schema.house, {"area": 5, "town": "A", "garage": 1}) == ["extra_forbidden"]
    batch = {"instances": [{"area": 5, "town": "A"}], "extra": 1}
    assert error_types(schema.batch, batch) == ["extra_forbidden"]


@pytest.mark.parametrize("field", ["predicted_price", "actual_price"])
def test_feedback_prices_are_positive_and_at_most_a_billion(field: str) -> None:
    assert error_types(FeedbackRequest, {**FEEDBACK, field: 1e9}) == []
    assert error_types(FeedbackRequest, {**FEEDBACK, field: 1e-9}) == []
    assert error_types(FeedbackRequest, {**FEEDBACK, field: 1e9 + 1}) == ["less_than_equal"]
    assert error_types(FeedbackRequest, {**FEEDBACK, field: 0.0}) == ["greater_than"]
    assert error_types(FeedbackRequest, {**FEEDBACK, field: "5"}) == ["float_type"]
    body = f'{{"model_version": "v1", "predicted_price": 1, "actual_price": 1, "{field}": NaN}}'
    assert json_error_types(FeedbackRequest, body) == ["finite_number"]


@pytest.mark.parametrize("field", ["request_id", "model_version"])
def test_feedback_ids_are_at_most_128_characters(field: str) -> None:
    assert error_types(FeedbackRequest, {**FEEDBACK, field: "x" * 128}) == []
    assert error_types(FeedbackRequest, {**FEEDBACK, field: "x" * 129}) == ["string_too_long"]


def test_feedback_is_closed() -> None:
    assert error_types(FeedbackRequest, {**FEEDBACK, "note": "x"}) == ["extra_forbidden"]


def test_reload_path_limits() -> None:
    assert error_types(ReloadRequest, {"path": "a" * 4096}) == []
    assert error_types(ReloadRequest, {"path": "a" * 4097}) == ["string_too_long"]
    assert error_types(ReloadRequest, {"path": "model\x00.joblib"}) == ["string_pattern_mismatch"]
    assert error_types(ReloadRequest, {"path": "m.joblib", "force": True}) == ["extra_forbidden"]
    assert error_types(ReloadRequest, {"allow_downgrade": "true"}) == ["bool_type"]
    assert error_types(ReloadRequest, {"allow_downgrade": 1}) == ["bool_type"]


def test_v2_request_limits() -> None:
    ok = {"id": "x" * 128, "inputs": [TENSOR]}
    assert error_types(V2InferenceRequest, ok) == []
    assert error_types(V2InferenceRequest, {**ok, "id": "x" * 129}) == ["string_too_long"]
    assert error_types(V2InferenceRequest, {"inputs": []}) == ["too_short"]
    assert error_types(V2InferenceRequest, {**ok, "model": "m"}) == ["extra_forbidden"]
    assert error_types(V2Tensor, {**TENSOR, "unit": "sq ft"}) == ["extra_forbidden"]
    request = {"inputs": [{**TENSOR, "unit": "sq ft"}]}
    assert error_types(V2InferenceRequest, request) == ["extra_forbidden"]


WHOLE = [
    FeatureSpec.from_metadata(e)
    for e in [
        {"name": "year", "kind": "integer", "required": True, "bounds": [1800, 2100]},
        {"name": "rooms", "kind": "integer", "required": False},
        {"name": "town", "kind": "categorical", "required": True},
    ]
]


def test_whole_numbers_are_numbers_without_a_fractional_part() -> None:
    house = build_request_schema(WHOLE, max_batch_size=2).house
    assert error_types(house, {"year": 2000, "rooms": 3.0, "town": "a"}) == []
    row = house.model_validate({"year": 2000, "rooms": 3.0, "town": "a"})
    assert (row.year, row.rooms) == (2000.0, 3.0)  # type: ignore[attr-defined]
    assert type(row.year) is float  # type: ignore[attr-defined]
    assert error_types(house, {"year": 2000.5, "town": "a"}) == ["int_from_float"]
    assert error_types(house, {"year": 2000, "rooms": -0.25, "town": "a"}) == ["int_from_float"]
    assert error_types(house, {"year": 1799, "town": "a"}) == ["greater_than_equal"]
    assert error_types(house, {"year": 2101, "town": "a"}) == ["less_than_equal"]
    assert error_types(house, {"year": 1800, "town": "a"}) == []
    assert error_types(house, {"year": 2100, "town": "a"}) == []
    with pytest.raises(ValidationError) as info:
        house.model_validate({"year": 1900.5, "town": "a"})
    message = "Input should be a valid integer, got a number with a fractional part"
    assert info.value.errors()[0]["msg"] == message


def test_whole_numbers_are_documented_as_integers_with_their_bounds() -> None:
    properties = build_request_schema(WHOLE, max_batch_size=2).house.model_json_schema()[
        "properties"
    ]
    year = properties["year"]
    assert (year["type"], year["minimum"], year["maximum"]) == ("integer", 1800, 2100)
    assert properties["rooms"]["anyOf"] == [{"type": "integer"}, {"type": "null"}]


def test_error_list_drops_the_unions_tag_and_keeps_three_keys() -> None:
    schema = build_request_schema(WHOLE, max_batch_size=2)
    # "instances" as a value: tried as a batch, then answered by the union's house member
    body = b'{"year": 2000.5, "rooms": 2.5, "town": "instances"}'
    with pytest.raises(ValidationError) as info:
        schema.validate(body)
    assert info.value.errors()[0]["loc"] == ("house", "year")  # the tag error_list drops
    message = "Input should be a valid integer, got a number with a fractional part"
    assert error_list(info.value, 1) == [
        {"loc": ["body", "year"], "msg": message, "type": "int_from_float"}
    ]
    assert error_list(info.value, 5, prefix=("inputs", 0)) == [
        {"loc": ["inputs", 0, "year"], "msg": message, "type": "int_from_float"},
        {"loc": ["inputs", 0, "rooms"], "msg": message, "type": "int_from_float"},
    ]
    with pytest.raises(ValidationError) as info:
        schema.validate(b'{"instances": [{"year": 2000, "town": ""}]}')
    assert error_list(info.value, 5) == [
        {
            "loc": ["body", "instances", 0, "town"],
            "msg": "String should have at least 1 character",
            "type": "string_too_short",
        }
    ]


def test_feature_spec_reads_every_field_of_the_metadata() -> None:
    # Built inside the test, not at import: mutation testing swaps the function after import.
    entry = {
        "name": "area",
        "kind": "integer",
        "required": True,
        "unit": "sq ft",
        "description": "Living area",
        "categories": ["b", "a", 3],
        "min": 10,
        "max": 90,
        "bounds": [1, 100],
        "example": 50,
    }
    spec = FeatureSpec.from_metadata(entry)
    assert spec == FeatureSpec(
        name="area",
        kind="integer",
        required=True,
        unit="sq ft",
        description="Living area",
        categories=frozenset({"a", "b", "3"}),
        category_list=("b", "a", "3"),
        lo=10.0,
        hi=90.0,
        bounds=(1.0, 100.0),
        example=50,
    )
    bare = FeatureSpec.from_metadata({"name": "x", "kind": "numeric"})
    assert (bare.required, bare.unit, bare.description, bare.category_list) == (False, "", "x", ())
    assert (bare.lo, bare.hi, bare.bounds, bare.example) == (-math.inf, math.inf, None, None)
    for kind in ("numeric", "integer", "categorical"):
        assert FeatureSpec.from_metadata({"name": "x", "kind": kind}).kind == kind
    with pytest.raises(ValueError, match=r"^feature 'x': kind must be numeric, integer or"):
        FeatureSpec.from_metadata({"name": "x", "kind": "Integer"})
    with pytest.raises(ValueError, match=r"has no 'name'$"):
        FeatureSpec.from_metadata({"kind": "numeric"})


def test_each_feature_is_documented_from_its_metadata() -> None:
    """Unit, training range, bounds, categories and examples reach /docs as the artifact says."""
    entries = [
        {"name": "area", "kind": "numeric", "unit": "sq ft", "description": "Area"}
        | {"required": True, "bounds": [1, 100], "min": 10, "max": 90, "example": 50},
        {"name": "rooms", "kind": "numeric", "required": False, "min": 1},  # no max: no range
        {"name": "year", "kind": "integer", "required": False, "unit": "year"}
        | {"min": 1900, "max": 2000, "example": 1950},
        {"name": "town", "kind": "categorical", "required": True, "categories": ["B", "A"]}
        | {"description": "Town"},
        {"name": "zone", "kind": "categorical", "required": False, "example": "Z"},
        {"name": "street", "kind": "categorical", "required": False},  # nothing to show
    ]
    specs = [FeatureSpec.from_metadata(e) for e in entries]
    schema = build_request_schema(specs, max_batch_size=3, title="Home")
    house = schema.components["Home"]
    props = house["properties"]
    assert props["area"] == {
        "description": "Area [sq ft]. Training range 10 to 90.",
        "examples": [50],
        "maximum": 100.0,
        "minimum": 1.0,
        "title": "Area",
        "type": "number",
        "x-training-range": [10.0, 90.0],
        "x-unit": "sq ft",
    }
    optional = " Optional: omitted or null is imputed as in training."
    assert props["year"] == {
        "anyOf": [{"type": "integer"}, {"type": "null"}],
        "default": None,
        "description": "year [year]. Training range 1900 to 2000." + optional,
        "examples": [1950],
        "title": "Year",
        "x-training-range": [1900.0, 2000.0],
        "x-unit": "year",
    }
    assert props["town"] == {
        "description": "Town. Known categories: B, A. Others are accepted and reported as unknown.",
        "examples": ["B", "A"],
        "maxLength": 100,
        "minLength": 1,
        "title": "Town",
        "type": "string",
        "x-categories": ["B", "A"],
    }
    rooms, zone = props["rooms"], props["zone"]
    assert rooms["anyOf"] == [{"type": "number"}, {"type": "null"}]
    assert rooms["description"] == "rooms." + optional  # no unit, no range: still a sentence
    assert not {"examples", "x-unit", "x-training-range"} & rooms.keys()
    assert zone["anyOf"] == [{"maxLength": 100, "minLength": 1, "type": "string"}, {"type": "null"}]
    assert zone["examples"] == ["Z"] and "x-categories" not in zone
    assert "examples" not in props["street"]
    assert props["zone"]["description"] == "zone." + optional
    assert props["street"]["description"] == "street." + optional
    assert house["required"] == ["area", "town"] and house["additionalProperties"] is False
    assert house["examples"] == [{"area": 50, "year": 1950, "zone": "Z"}]
    assert schema.example == {"area": 50, "year": 1950, "zone": "Z"}
    batch = schema.components["HomeBatch"]["properties"]["instances"]
    assert (batch["minItems"], batch["maxItems"], batch["description"]) == (1, 3, "1 to 3 houses")
    assert batch["items"] == {"$ref": "#/components/schemas/Home"}
    assert schema.max_batch_size == 3


def test_every_description_reads_as_sentences() -> None:
    """Each part of a feature's description ends with one full stop and is followed by a space."""
    entries = [
        {"name": "lot", "kind": "numeric", "unit": "sq ft", "description": "Lot area."},
        {"name": "age", "kind": "integer", "description": "Age?", "min": 0, "max": 9},
        {"name": "kind", "kind": "categorical", "description": "Kind.", "categories": ["x"]},
    ]
    specs = [FeatureSpec.from_metadata(e) for e in entries]
    props = build_request_schema(specs, max_batch_size=3).components["House"]["properties"]
    optional = "Optional: omitted or null is imputed as in training."
    assert props["lot"]["description"] == "Lot area [sq ft]. " + optional
    assert props["age"]["description"] == "Age? Training range 0 to 9. " + optional
    assert props["kind"]["description"] == (
        "Kind. Known categories: x. Others are accepted and reported as unknown. " + optional
    )


def test_batch_model_rows_adapter_and_default_title() -> None:
    schema = build_request_schema(WHOLE, max_batch_size=3)
    assert schema.house.__name__ == "House" and set(schema.components) == {"House", "HouseBatch"}
    example = {"year": 1900}
    entries = [
        {"name": "year", "kind": "integer", "example": 1900},
        {"name": "town", "kind": "categorical", "required": True},
    ]
    schema = build_request_schema([FeatureSpec.from_metadata(e) for e in entries], 3)
    batch = schema.components["HouseBatch"]
    assert batch["examples"] == [{"instances": [example, example]}]
    # fail_fast: the first invalid house is reported, not every one
    body = b'{"instances": [{"town": "a"}, {"town": "a", "year": 1.5}, {"town": "a", "year": 2.5}]}'
    with pytest.raises(ValidationError) as info:
        schema.validate(body)
    assert [e["loc"] for e in info.value.errors()] == [("batch", "instances", 1, "year")]
    # the V2 route validates its rows as a list of houses
    rows = schema.rows.validate_python([{"town": "a"}, {"town": "b", "year": 2000}])
    assert [type(r) for r in rows] == [schema.house, schema.house]
    with pytest.raises(ValidationError):
        schema.rows.validate_python([{"town": "a", "extra": 1}])


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        ({"shadow_path": "s.joblib"}, "load_shadow"),
        ({"drop_shadow": True}, "drop_shadow"),
        ({"shadow_path": "s.joblib", "drop_shadow": True}, "load_shadow"),
        ({"path": "m.joblib"}, "champion"),
        ({}, "champion"),
        (["shadow_path"], "champion"),
        (None, "champion"),
    ],
)
def test_a_reload_body_is_told_apart_by_the_key_it_holds(body: Any, kind: str) -> None:
    assert _reload_kind(body) == kind
