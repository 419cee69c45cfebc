"""Liveness and readiness, as Kubernetes probes use them.

Live: the process answers (restart it if not). Ready: a verified model is serving and the
process is not shutting down (send it traffic only then). After SIGTERM readiness turns 503
at once so load balancers stop routing here while in-flight requests finish.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.routes.common import get_service, json_response
from app.schemas import HealthResponse
from app.state import NotReadyError

router = APIRouter(prefix="/health", tags=["health"])


@router.get(
    "/live", response_model=HealthResponse, summary="The process is up", operation_id="getLiveness"
)
async def live() -> Response:
    return json_response(200, {"status": "alive"})


@router.get(
    "/ready",
    response_model=HealthResponse,
    summary="A verified model is serving",
    operation_id="getReadiness",
    responses={503: {"model": HealthResponse, "description": "Not ready (reason given)"}},
)
async def ready(request: Request) -> Response:
    try:
        model = get_service(request).ready_model()
    except NotReadyError as e:
        return json_response(503, {"status": "not ready", "reason": str(e)})
    return json_response(200, {"status": "ready", "model_version": model.version})
