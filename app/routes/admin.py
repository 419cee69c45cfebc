"""``POST /admin/reload``: load, verify and warm a new artifact, then swap it in.

Authorisation is a bearer token from ``ADMIN_TOKEN`` compared in constant time
(``hmac.compare_digest``), so response timing does not leak how many characters matched.
Without the variable the admin routes are disabled (403). A requested path must resolve
inside the configured model directory: the endpoint must not become a way to unpickle an
arbitrary file (the checksum beside an attacker's file would match).

The same route loads or drops the shadow model (``shadow_path``, ``drop_shadow``;
``app/shadow.py``), under the same lock and rules, leaving the champion untouched.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app import shadow
from app.body import KeyGuard, read_optional_json
from app.routes.common import get_service, json_response
from app.schemas import (
    RELOAD_FIELDS,
    AnyReloadRequest,
    DropShadowRequest,
    ErrorMessage,
    LoadShadowRequest,
    ReloadRequest,
    ReloadResponse,
    ShadowReloadResponse,
    ValidationErrorResponse,
)
from app.state import ModelLoadError, ReloadConflictError, ReloadRefusedError, Service
from model.workflow.artifact import ArtifactError

router = APIRouter(prefix="/admin", tags=["admin"])
_GUARD = KeyGuard(RELOAD_FIELDS)

_BODY = {
    "security": [{"adminToken": []}],
    "requestBody": {
        "required": False,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        m.model_json_schema()
                        for m in (ReloadRequest, LoadShadowRequest, DropShadowRequest)
                    ]
                }
            }
        },
    },
}


@router.post(
    "/reload",
    summary="Hot-reload the model",
    operation_id="reloadModel",
    response_model=ReloadResponse | ShadowReloadResponse,
    openapi_extra=_BODY,
    responses={
        401: {"model": ErrorMessage, "description": "No or malformed bearer token"},
        403: {
            "model": ErrorMessage,
            "description": "Wrong token, admin disabled, or path outside the model directory",
        },
        409: {
            "model": ErrorMessage,
            "description": "Artifact refused (not a regular file, over MAX_ARTIFACT_BYTES, bad "
            "checksum or signature, older than the serving one without allow_downgrade, not "
            "loaded within RELOAD_TIMEOUT); the old model serves",
        },
        400: {"model": ValidationErrorResponse, "description": "Malformed JSON"},
        415: {"model": ErrorMessage, "description": "Body is not JSON"},
        422: {"model": ValidationErrorResponse, "description": "Body is not a reload request"},
    },
)
async def reload(request: Request) -> Response:
    svc = get_service(request)
    denied = svc.check_admin(request.headers.get("authorization"))
    if denied == 401:
        return json_response(
            401,
            {"detail": "missing or malformed bearer token"},
            headers={"WWW-Authenticate": "Bearer"},
        )
    if denied == 403:
        why = (
            "admin disabled (ADMIN_TOKEN unset)"
            if svc.settings.admin_token is None
            else ("wrong token")
        )
        return json_response(403, {"detail": why})

    body = await read_optional_json(
        request.scope,
        request.receive,
        AnyReloadRequest.validate_json,
        svc.settings.max_errors,
        _GUARD,
    )
    shadow_request = isinstance(body, LoadShadowRequest | DropShadowRequest)
    try:
        if isinstance(body, LoadShadowRequest):
            return await _reload_shadow(svc, body.shadow_path)
        if isinstance(body, DropShadowRequest):
            return await _reload_shadow(svc, None)
        return await _reload_champion(svc, body)
    except ReloadRefusedError as e:  # a path outside the model directory
        return json_response(403, {"detail": str(e)})
    except (ArtifactError, ModelLoadError, ReloadConflictError) as e:
        what = (
            "shadow reload refused, the previous shadow stays"
            if shadow_request
            else "reload refused, the previous model keeps serving"
        )
        return json_response(409, {"detail": f"{what}: {e}"})


async def _reload_champion(svc: Service, body: ReloadRequest | None) -> Response:
    """Load the requested artifact (the configured one without a path) as the champion."""
    requested = body.path if body is not None else None
    allow_downgrade = body.allow_downgrade if body is not None else False
    model, previous = await svc.reload(svc.resolve_reload_path(requested), allow_downgrade)
    return json_response(
        200,
        {
            "model_version": model.version,
            "previous_version": previous.version if previous else None,
            "sha256": model.sha256,
            "path": model.path,
        },
    )


async def _reload_shadow(svc: Service, requested: str | None) -> Response:
    """Load ``requested`` as the shadow model, or drop the shadow for ``None``."""
    path = svc.resolve_reload_path(requested) if requested is not None else None
    new, old = await shadow.reload(svc, path)
    return json_response(
        200,
        {
            "shadow": None
            if new is None
            else {"model_version": new.version, "sha256": new.model.sha256, "path": new.model.path},
            "previous_shadow_version": old.version if old is not None else None,
        },
    )
