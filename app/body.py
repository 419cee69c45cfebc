"""The one JSON-body reader of every route, and its one error mapping.

415 when the content type is not JSON, 400 when the body is not JSON, 422 when it does not
validate; a 400 or 422 lists at most ``MAX_ERRORS`` errors, each naming its field, and says how
many there were (``error_count``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from pydantic import ValidationError
from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope

from app.schemas import error_list

T = TypeVar("T")


def header(scope: Scope, name: bytes) -> str | None:
    """The first value of a request header (``name`` in lower case), or ``None``."""
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def is_json(content_type: str | None) -> bool:
    """``application/json`` or a ``+json`` type, with any parameters (charset)."""
    if content_type == "application/json":  # what nearly every client sends
        return True
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


class BodyError(Exception):
    """A request body the route cannot use: 415 (not JSON), 400 (malformed), 422 (invalid)."""

    def __init__(self, status: int, detail: Any, reason: str, error_count: int = 0) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.reason = reason  # the prediction_errors label of this refusal
        self.error_count = error_count  # all the errors, of which ``detail`` lists the first

    def content(self) -> dict[str, Any]:
        if self.error_count:
            return {"detail": self.detail, "error_count": self.error_count}
        return {"detail": self.detail}


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


_KEY = re.compile(rb'"((?:[^"\\]++|\\.)*+)"\s*:')  # an object key: a JSON string, its colon


def _key_name(raw: bytes) -> str:
    """An object key's name as JSON reads it: ``"\\u0069nstances"`` is ``instances``."""
    if b"\\" in raw:
        try:
            return str(json.loads(b'"%s"' % raw))
        except ValueError:  # not a valid escape: validation names what is wrong
            pass
    return raw.decode("utf-8", "replace")


class KeyGuard:
    """Refuses, before validation, a body whose objects hold more keys than their model has.

    pydantic reports every unknown key of an object, one error each: a 16 MB body of unknown
    keys means a million errors, many seconds of CPU and gigabytes before the first one could
    be listed. Every key has a colon, so a body with no more colons than its objects could hold
    keys (two counts in C) goes to validation untouched; one with more is scanned for unknown
    keys and refused with the first ``max_errors`` of them and their count (the colons beyond
    the known keys'). ``fields`` are the object model's fields,
    ``extra`` the keys a body may add (``"instances"``).
    """

    def __init__(self, fields: Iterable[str], extra: Iterable[str] = ()) -> None:
        self.known = frozenset([*fields, *extra])
        self.per_object = len(self.known)
        self._known_keys = [b'"%s"' % k.encode() for k in self.known]

    def check(self, body: bytes, max_errors: int) -> None:
        """Raise a 422 :class:`BodyError` when ``body`` holds too many keys."""
        colons = body.count(b":")
        if colons <= self.per_object:  # one house, one feedback: a single count
            return
        if colons <= body.count(b"{") * self.per_object:
            return
        first: list[str] = []
        for match in _KEY.finditer(body):
            name = _key_name(match.group(1))
            if name not in self.known:
                first.append(name)
                if len(first) == max_errors:
                    break
        if not first:  # colons inside strings, not keys: validation decides
            return
        known = sum(map(body.count, self._known_keys))
        detail = [
            {
                "loc": ["body", name],
                "msg": "Extra inputs are not permitted",
                "type": "extra_forbidden",
            }
            for name in first
        ]
        raise BodyError(422, detail, "validation", max(colons - known, len(first)))


async def read_json(
    scope: Scope,
    receive: Receive,
    parse: Callable[[bytes], T],
    max_errors: int,
    guard: KeyGuard | None = None,
) -> T:
    """Read the body and ``parse`` it (a pydantic ``model_validate_json``); one error mapping.

    415 when the content type is not JSON, 400 when the body is not JSON, 422 when it does not
    validate; 400 and 422 list at most ``max_errors`` errors, each naming its field, and say
    how many there were.
    """
    if not is_json(header(scope, b"content-type")):
        raise BodyError(415, "Content-Type must be application/json", "unsupported_media_type")
    return parse_body(await read_body(receive), parse, max_errors, guard)


async def read_optional_json(
    scope: Scope,
    receive: Receive,
    parse: Callable[[bytes], T],
    max_errors: int,
    guard: KeyGuard | None = None,
) -> T | None:
    """:func:`read_json` for a body that may be empty (then ``None``, whatever the type)."""
    body = await read_body(receive)
    if not body.strip():
        return None
    if not is_json(header(scope, b"content-type")):
        raise BodyError(415, "Content-Type must be application/json", "unsupported_media_type")
    return parse_body(body, parse, max_errors, guard)


def parse_body(
    body: bytes, parse: Callable[[bytes], T], max_errors: int, guard: KeyGuard | None = None
) -> T:
    """``parse(body)``, its pydantic error turned into a :class:`BodyError`; ``guard`` first."""
    if guard is not None:
        guard.check(body, max_errors)
    try:
        return parse(body)
    except ValidationError as e:
        raise validation_error(e, max_errors) from None


def validation_error(exc: ValidationError, max_errors: int) -> BodyError:
    """A pydantic error as a 400 (the body is not JSON) or 422 :class:`BodyError`."""
    detail = error_list(exc, max_errors)
    malformed = any(err["type"] == "json_invalid" for err in detail)
    status, reason = (400, "malformed_json") if malformed else (422, "validation")
    return BodyError(status, detail, reason, exc.error_count())
