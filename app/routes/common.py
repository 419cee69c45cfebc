"""Helpers shared by the routes: the service dependency and cheap JSON responses."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request
from fastapi.responses import Response

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


def is_json(content_type: str | None) -> bool:
    """``application/json`` or a ``+json`` type, with any parameters (charset)."""
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def request_id(request: Request) -> str:
    rid: str = request.scope.get("request_id") or ""
    return rid
