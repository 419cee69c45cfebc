"""What the routes share: the service, cheap JSON answers, and the one JSON-body reader."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import Request
from fastapi.responses import Response
from pydantic import ValidationError
from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope

from app.schemas import error_list
from app.state import Service

T = TypeVar("T")


def get_service(request: Request) -> Service:
    """The app's ``Service`` (settings, metrics, model holder), set by ``create_app``."""
    service: Service = request.app.state.service
    return service


#: ``json.dumps`` with arguments builds a new encoder per call; this one is built once.
_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False)


def encode_json(content: Any) -> bytes:
    """Compact JSON bytes. ``allow_nan=False``: a NaN would be invalid JSON for strict
    clients, so it fails loudly here instead."""
    return _ENCODER.encode(content).encode()


def json_response(status: int, content: Any, headers: dict[str, str] | None = None) -> Response:
    """A JSON response without a response model: the serialisation is one ``encode_json``."""
    return Response(
        encode_json(content), status_code=status, media_type="application/json", headers=headers
    )


def header(scope: Scope, name: bytes) -> str | None:
    """The first value of a request header (``name`` in lower case), or ``None``."""
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def is_json(content_type: str | None) -> bool:
    """``application/json`` or a ``+json`` type, with any parameters (charset)."""
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def request_id(scope: Scope) -> str:
    """The id the request middleware gave this request."""
    rid: str = scope.get("request_id") or ""
    return rid


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


async def read_json(
    scope: Scope, receive: Receive, parse: Callable[[bytes], T], max_errors: int
) -> T:
    """Read the body and ``parse`` it (a pydantic ``model_validate_json``); one error mapping.

    415 when the content type is not JSON, 400 when the body is not JSON, 422 when it does not
    validate; 400 and 422 list at most ``max_errors`` errors, each naming its field, and say
    how many there were.
    """
    if not is_json(header(scope, b"content-type")):
        raise BodyError(415, "Content-Type must be application/json", "unsupported_media_type")
    return parse_body(await read_body(receive), parse, max_errors)


async def read_optional_json(
    scope: Scope, receive: Receive, parse: Callable[[bytes], T], max_errors: int
) -> T | None:
    """:func:`read_json` for a body that may be empty (then ``None``, whatever the type)."""
    body = await read_body(receive)
    if not body.strip():
        return None
    if not is_json(header(scope, b"content-type")):
        raise BodyError(415, "Content-Type must be application/json", "unsupported_media_type")
    return parse_body(body, parse, max_errors)


def parse_body(body: bytes, parse: Callable[[bytes], T], max_errors: int) -> T:
    """``parse(body)``, its pydantic error turned into a :class:`BodyError`."""
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
