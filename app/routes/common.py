"""What the routes share: the service, cheap JSON answers, the request id."""

from __future__ import annotations

from json import JSONEncoder
from json.encoder import c_make_encoder, encode_basestring_ascii  # type: ignore[attr-defined]
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from starlette.types import Scope

from app.state import Service


def get_service(request: Request) -> Service:
    """The app's ``Service`` (settings, metrics, model holder), set by ``create_app``."""
    service: Service = request.app.state.service
    return service


#: The C encoder behind ``json.dumps(separators=(",", ":"), allow_nan=False)``, built once:
#: ``JSONEncoder.encode`` builds a new one on every call. No circular-reference markers (the
#: answers are trees the routes build).
_ENCODE = c_make_encoder(
    None, JSONEncoder().default, encode_basestring_ascii, None, ":", ",", False, False, False
)


def encode_json(content: Any) -> bytes:
    """Compact JSON bytes. ``allow_nan=False``: a NaN would be invalid JSON for strict
    clients, so it fails loudly here instead (``ValueError``)."""
    return "".join(_ENCODE(content, 0)).encode()


def json_response(status: int, content: Any, headers: dict[str, str] | None = None) -> Response:
    """A JSON response without a response model: the serialisation is one ``encode_json``."""
    return Response(
        encode_json(content), status_code=status, media_type="application/json", headers=headers
    )


def request_id(scope: Scope) -> str:
    """The id the request middleware gave this request."""
    rid: str = scope.get("request_id") or ""
    return rid
