"""What the routes share: the service, cheap JSON answers, the request id."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from starlette.types import Scope

from app.state import Service


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


def request_id(scope: Scope) -> str:
    """The id the request middleware gave this request."""
    rid: str = scope.get("request_id") or ""
    return rid
