"""What the routes share: the service, cheap JSON answers, the request id."""

from __future__ import annotations

import re
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


#: A request id a client may choose: a token that is safe as it is in a header and a log line.
_TOKEN = r"[A-Za-z0-9._:\-]{1,128}"
SANE_REQUEST_ID = re.compile(_TOKEN.encode())  # an ``X-Request-Id`` header's value
_SANE_ID = re.compile(_TOKEN)
#: Set in the scope by the request middleware when it made the id up (no usable header).
MADE_UP_ID = "houseprice.made_up_id"


def request_id(scope: Scope, named: str | None = None) -> str:
    """The id the request middleware gave this request.

    ``named`` is the id the request body names (a V2 request's ``id``): when the client sent
    no usable ``X-Request-Id`` and ``named`` is a sane token, it becomes the request's id, so
    the answer's ``X-Request-Id``, the access line, the prediction log and the feedback index
    all carry the id the client already knows.
    """
    if named is not None and scope.get(MADE_UP_ID) and _SANE_ID.fullmatch(named):
        scope["request_id"] = named
        del scope[MADE_UP_ID]
        return named
    rid: str = scope.get("request_id") or ""
    return rid
