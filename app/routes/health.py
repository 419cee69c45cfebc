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

router = APIRouter(prefix="/health", tags=["health"])


@router.get("/live", response_model=HealthResponse, summary="The process is up")
async def live() -> Response:
    return json_response(200, {"status": "alive"})


@router.get(
    "/ready",
    response_model=HealthResponse,
    summary="A verified model is serving",
    responses={503: {"model": HealthResponse, "description": "Not ready (reason given)"}},
)
async def ready(request: Request) -> Response:
    svc = get_service(request)
    model = svc.holder.current
    if model is None or svc.holder.shutting_down:
        return json_response(503, {"status": "not ready", "reason": svc.holder.not_ready_reason()})
    return json_response(200, {"status": "ready", "model_version": model.version})
