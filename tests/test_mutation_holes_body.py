"""app.body, the request-validation path every route reads its JSON through, unit by unit.

The API tests reach it over HTTP; these state its rules directly (so mutation testing can run
them per mutant in milliseconds): which content types are JSON, how a body in chunks is read,
the 415/400/422 mapping with ``max_errors`` and ``error_count``, and the key guard that
refuses a body with more keys than its objects can hold before pydantic lists them one by one.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict
from starlette.requests import ClientDisconnect

from app.body import (
    BodyError,
    KeyGuard,
    header,
    is_json,
    parse_body,
    read_body,
    read_json,
    read_optional_json,
)


class Pair(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    a: int
    b: int = 0


def receiver(*chunks: bytes, disconnect: bool = False) -> Callable[[], Awaitable[dict[str, Any]]]:
    """An ASGI ``receive`` giving ``chunks`` as one request body (then a disconnect if asked)."""
    messages: list[dict[str, Any]] = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
        for i, c in enumerate(chunks)
    ]
    if disconnect:
        messages[-1]["more_body"] = True
        messages.append({"type": "http.disconnect"})

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    return receive


def scope(content_type: str | None) -> dict[str, Any]:
    headers = [(b"host", b"x")]
    if content_type is not None:
        headers.append((b"content-type", content_type.encode("latin-1")))
    headers.append((b"content-type", b"text/plain"))  # only the first value counts
    return {"type": "http", "headers": headers}


def test_header_is_the_first_value_by_lower_case_name() -> None:
    s = scope("application/json")
    assert header(s, b"content-type") == "application/json"
    assert header(s, b"host") == "x"
    assert header(s, b"accept") is None
    assert header({"headers": [(b"x-name", "é".encode("latin-1"))]}, b"x-name") == "é"


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        ("application/json", True),
        ("Application/JSON; charset=utf-8", True),
        ("  application/json  ;charset=utf-8", True),
        ("application/json; charset=utf-8; v=2", True),
        ("application/problem+json", True),
        ("application/vnd.api+json; v=1", True),
        ("text/json", False),
        ("text/plain+json", False),
        ("application/jsonx", False),
        ("application/x-www-form-urlencoded", False),
        ("", False),
        (None, False),
    ],
)
def test_is_json(content_type: str | None, expected: bool) -> None:
    assert is_json(content_type) is expected


def test_read_body_joins_chunks_and_raises_on_disconnect() -> None:
    assert asyncio.run(read_body(receiver(b'{"a"', b": 1", b"}"))) == b'{"a": 1}'
    assert asyncio.run(read_body(receiver(b'{"a"', b": 1}"))) == b'{"a": 1}'
    assert asyncio.run(read_body(receiver(b"one"))) == b"one"
    assert asyncio.run(read_body(receiver(b""))) == b""
    no_body: list[dict[str, Any]] = [{"type": "http.request"}]  # no "body", no "more_body"

    async def receive() -> dict[str, Any]:
        return no_body.pop(0)

    assert asyncio.run(read_body(receive)) == b""
    with pytest.raises(ClientDisconnect):
        asyncio.run(read_body(receiver(b'{"a"', disconnect=True)))


def test_body_error_content_has_the_count_only_when_there_is_one() -> None:
    assert BodyError(415, "nope", "unsupported_media_type").content() == {"detail": "nope"}
    error = BodyError(422, [{"loc": ["body"]}], "validation", 7)
    assert error.content() == {"detail": [{"loc": ["body"]}], "error_count": 7}
    assert (error.status, error.reason, error.error_count) == (422, "validation", 7)
    assert str(error) == "[{'loc': ['body']}]"


def read(content_type: str | None, body: bytes, max_errors: int = 20) -> Pair:
    receive, parse = receiver(body), Pair.model_validate_json
    guard = KeyGuard(Pair.model_fields)
    return asyncio.run(read_json(scope(content_type), receive, parse, max_errors, guard))


def test_read_json_maps_415_400_and_422() -> None:
    assert read("application/json", b'{"a": 1}') == Pair(a=1)
    with pytest.raises(BodyError) as info:
        read("text/plain", b'{"a": 1}')
    assert (info.value.status, info.value.reason) == (415, "unsupported_media_type")
    assert info.value.detail == "Content-Type must be application/json"
    with pytest.raises(BodyError) as info:
        read(None, b'{"a": 1}')
    assert info.value.status == 415
    with pytest.raises(BodyError) as info:
        read("application/json", b'{"a": ')
    assert (info.value.status, info.value.reason) == (400, "malformed_json")
    assert info.value.detail[0]["type"] == "json_invalid"
    with pytest.raises(BodyError) as info:
        read("application/json", b'{"a": "1", "b": "2"}', max_errors=1)
    assert (info.value.status, info.value.reason) == (422, "validation")
    assert info.value.detail == [
        {"loc": ["body", "a"], "msg": "Input should be a valid integer", "type": "int_type"}
    ]
    assert info.value.error_count == 2
    assert info.value.content()["error_count"] == 2
    with pytest.raises(BodyError) as info:  # the guard answers before pydantic
        read("application/json", b'{"a": "x", "c": 3, "d": 4}', max_errors=1)
    assert [d["loc"] for d in info.value.detail] == [["body", "c"]]


def test_read_optional_json_takes_an_empty_body_whatever_its_type() -> None:
    def optional(content_type: str | None, body: bytes, max_errors: int = 20) -> Pair | None:
        receive, parse = receiver(body), Pair.model_validate_json
        guard = KeyGuard(Pair.model_fields)
        return asyncio.run(
            read_optional_json(scope(content_type), receive, parse, max_errors, guard)
        )

    assert optional(None, b"") is None
    assert optional("text/plain", b"  \n") is None
    assert optional("application/json", b'{"a": 2}') == Pair(a=2)
    with pytest.raises(BodyError) as info:
        optional("text/plain", b'{"a": 2}')
    assert (info.value.status, info.value.reason) == (415, "unsupported_media_type")
    assert info.value.detail == "Content-Type must be application/json"
    with pytest.raises(BodyError) as info:
        optional("application/json", b"{")
    assert info.value.status == 400
    with pytest.raises(BodyError) as info:  # the guard answers, with the first max_errors keys
        optional("application/json", b'{"a": "x", "c": 3, "d": 4}', max_errors=1)
    assert info.value.detail == [
        {"loc": ["body", "c"], "msg": "Extra inputs are not permitted", "type": "extra_forbidden"}
    ]
    assert info.value.error_count == 2
    with pytest.raises(BodyError) as info:  # pydantic answers, with the first max_errors errors
        optional("application/json", b'{"a": "1", "b": "2"}', max_errors=1)
    assert [d["loc"] for d in info.value.detail] == [["body", "a"]]
    assert info.value.error_count == 2


def test_key_guard_passes_bodies_its_objects_can_hold() -> None:
    guard = KeyGuard(Pair.model_fields)
    assert guard.per_object == 2
    for body in (b'{"a": 1, "b": 2}', b'{"a": 1}', b'[{"a": 1, "b": 2}, {"a": 3, "b": 4}]'):
        guard.check(body, 20)  # no more colons than the objects hold keys
    guard.check(b'{"a": 1, "b": "x:y:z"}', 20)  # colons in a string, no unknown key
    KeyGuard(["a"], extra=["instances"]).check(b'{"instances": [{"a": 1}]}', 20)


def test_key_guard_leaves_bodies_within_capacity_to_validation() -> None:
    """No more colons than the objects could hold keys: untouched, even with an unknown key
    (pydantic then lists it, among the other errors)."""
    guard = KeyGuard(Pair.model_fields)
    guard.check(b'"x": 1, "y": 2', 20)  # not even JSON: as many colons as one object's keys
    guard.check(b'[{"a": 1, "z": 2}, {"a": 1, "b": 2}]', 20)  # 4 colons, 2 objects of 2
    guard.check(b'[{"a": 1, "z": 2}, {"a": 1}]', 20)  # 3 colons, 2 objects of 2


def test_key_guard_names_a_key_that_is_not_utf8() -> None:
    guard = KeyGuard(Pair.model_fields)
    with pytest.raises(BodyError) as info:
        guard.check(b'{"a": 1, "b": 2, "\xff": 3}', 20)
    assert info.value.detail[0]["loc"] == ["body", "\ufffd"]


def test_key_guard_refuses_unknown_keys_with_the_first_and_their_count() -> None:
    guard = KeyGuard(Pair.model_fields)
    body = json.dumps({"a": 1, "b": 2, **{f"k{i}": i for i in range(30)}}).encode()
    with pytest.raises(BodyError) as info:
        guard.check(body, 3)
    error = info.value
    assert (error.status, error.reason, error.error_count) == (422, "validation", 30)
    assert error.detail == [
        {
            "loc": ["body", f"k{i}"],
            "msg": "Extra inputs are not permitted",
            "type": "extra_forbidden",
        }
        for i in range(3)
    ]
    with pytest.raises(BodyError) as info:  # one unknown key and a colon inside a value
        guard.check(b'{"a": 1, "b": 2, "c": "x:y"}', 20)
    assert [d["loc"] for d in info.value.detail] == [["body", "c"]]
    assert info.value.error_count == 2  # the colons beyond the known keys', at least the list's
    with pytest.raises(BodyError) as info:  # escaped quotes inside an unknown key
        guard.check(b'{"a": 1, "b": 2, "x\\"y": 3}', 20)
    assert info.value.detail[0]["loc"] == ["body", 'x"y']  # named as JSON reads it


def test_parse_body_runs_the_guard_first() -> None:
    guard = KeyGuard(Pair.model_fields)
    assert parse_body(b'{"a": 5}', Pair.model_validate_json, 20, guard) == Pair(a=5)
    with pytest.raises(BodyError) as info:
        parse_body(b'{"a": "x", "c": 1, "d": 2}', Pair.model_validate_json, 20, guard)
    assert [d["loc"] for d in info.value.detail] == [["body", "c"], ["body", "d"]]
    with pytest.raises(BodyError) as info:
        parse_body(b'{"a": "x", "c": 1, "d": 2}', Pair.model_validate_json, 20)
    assert [d["type"] for d in info.value.detail] == [
        "int_type",
        "extra_forbidden",
        "extra_forbidden",
    ]


def test_key_guard_reads_keys_written_with_json_escapes() -> None:
    """``"\\u0061"`` is the key ``a``: a known key however it is spelled, and an unknown one
    is named as JSON reads it."""
    guard = KeyGuard(Pair.model_fields)
    guard.check(b'{"\\u0061": 1, "b": "x:y:z"}', 20)  # over the colon count: scanned, passes
    with pytest.raises(BodyError) as info:
        guard.check(b'{"a": 1, "b": 2, "\\u007a": 3}', 20)
    assert info.value.detail[0]["loc"] == ["body", "z"]
