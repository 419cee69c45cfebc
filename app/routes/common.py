"""What the routes share: the service, cheap JSON answers, the request id."""

from __future__ import annotations

from json import JSONEncoder
from json.encoder import c_make_encoder, encode_basestring_ascii  # type: ignore[attr-defined]
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from pydantic_core import PydanticSerializationError, to_json
from starlette.types import Scope

from app.state import Service


def get_service(request: Request) -> Service:
    """The app's ``Service`` (settings, metrics, model holder), set by ``create_app``."""
    service: Service = request.app.state.service
    return service


#: The standard library's C encoder of ``json.dumps(separators=(",", ":"), allow_nan=False)``,
#: built once (``JSONEncoder.encode`` builds one per call): the strict check behind
#: :func:`encode_json`. No circular-reference markers (the answers are trees the routes build).
_STRICT = c_make_encoder(
    None, JSONEncoder().default, encode_basestring_ascii, None, ":", ",", False, False, False
)


def encode_json(content: Any) -> bytes:
    """Compact JSON bytes, by pydantic-core's serialiser (a float's text costs a fraction of
    ``repr``'s). ``allow_nan=False``: a NaN or infinity would be invalid JSON for strict
    clients, so it fails loudly (``ValueError``); pydantic-core writes them as ``NaN`` or
    ``Infinity``, so output holding that text is encoded again by the strict encoder, which
    raises for a float and returns the same JSON for a string that merely contains it. What
    pydantic-core cannot write (a lone surrogate, an unknown type) goes to the strict encoder
    too: escaped, or a ``TypeError`` as ``json.dumps`` gives."""
    try:
        out = to_json(content)
    except PydanticSerializationError:  # a lone surrogate, a type it does not know: as before
        return _strict(content)
    if b"NaN" in out or b"Infinity" in out:
        return _strict(content)
    return out


def _strict(content: Any) -> bytes:
    return "".join(_STRICT(content, 0)).encode()


def json_response(status: int, content: Any, headers: dict[str, str] | None = None) -> Response:
    """A JSON response without a response model: the serialisation is one ``encode_json``."""
    return Response(
        encode_json(content), status_code=status, media_type="application/json", headers=headers
    )


def request_id(scope: Scope) -> str:
    """The id the request middleware gave this request."""
    rid: str = scope.get("request_id") or ""
    return rid
