"""The FastAPI application: ``app.main:app``, built by ``create_app(settings)``.

Start-up (the lifespan) loads and verifies the artifact named by ``MODEL_PATH`` and warms it;
if that fails the app still starts (liveness answers, readiness and ``/predict`` say 503 with
the reason) so an orchestrator shows *why* instead of a crash loop, and ``/admin/reload`` can
bring it up once a good artifact is in place. Process policy (signals, the garbage collector)
is the server's business: ``app/serve.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from fastapi.telemetry import TelemetryConfig
from pydantic.json_schema import models_json_schema
from starlette.requests import ClientDisconnect
from starlette.routing import Route
from starlette.types import ASGIApp

from app import shadow
from app.body import BodyError
from app.logging import configure_logging
from app.middleware import Guard, LabelledMount, Observe, TrafficRoutes
from app.routes import admin, docs, health, model, monitoring, predict, v2
from app.routes.common import json_response
from app.schemas import (
    REF_TEMPLATE,
    BatchPredictResponse,
    ErrorMessage,
    PredictResponse,
    V2Error,
    V2InferenceResponse,
    ValidationErrorResponse,
)
from app.settings import Settings
from app.state import NotReadyError, Service

STATIC_DIR = Path(__file__).parent / "static"

#: FastAPI's native OpenTelemetry bridge, off unless ``OTEL_ENABLED``: this service exports
#: Prometheus metrics, and the bridge looks up three global providers on every request.
_NO_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}

#: The bearer token of ``/admin/*`` (``ADMIN_TOKEN``), so Swagger's Authorize button works.
BEARER = {"adminToken": {"type": "http", "scheme": "bearer"}}


class App(FastAPI):
    """FastAPI inside the service's own layers (``app/middleware.py``): the request id, the
    body guard, the metrics and the access line around every request, and the traffic routes
    answered without FastAPI's middleware stack."""

    def __init__(self, service: Service, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.state.service = service
        self.traffic_routes: list[Route] = []

    def build_middleware_stack(self) -> ASGIApp:
        service = self.state.service
        stack = TrafficRoutes(super().build_middleware_stack(), self.traffic_routes)
        return Observe(Guard(stack, service), service)


def create_app(settings: Settings | None = None) -> App:
    """Build the app; ``settings`` defaults to ``Settings.from_env()``."""
    settings = settings if settings is not None else Settings.from_env()
    configure_logging(settings.log_level)
    service = Service(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service.holder.shutting_down = False  # a test client may run start-up again
        service.load_initial()
        service.traffic.start()
        shadow.load_initial(service)
        yield
        service.begin_shutdown()
        await service.traffic.aclose()

    app = App(
        service,
        title="houseprice",
        version="0.1.0",
        description="House-price prediction service: a NumPy model trained by `houseprice "
        "train`, with Prometheus metrics and live drift checks.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        telemetry=None if settings.otel_enabled else _NO_TELEMETRY,
    )
    app.traffic_routes = [predict.route(service), *v2.routes(service)]
    app.router.routes[0:0] = app.traffic_routes  # the router answers their other methods (405)
    for module in (health, model, admin, monitoring, v2, docs):
        app.include_router(module.router)
    app.router.routes.append(
        LabelledMount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    )

    @app.exception_handler(BodyError)
    async def body_error(request: Request, exc: BodyError) -> Response:
        return json_response(exc.status, exc.content())

    @app.exception_handler(NotReadyError)
    async def not_ready(request: Request, exc: NotReadyError) -> Response:
        return json_response(503, {"detail": str(exc)}, {"Retry-After": "1"})

    @app.exception_handler(ClientDisconnect)
    async def client_gone(request: Request, exc: ClientDisconnect) -> Response:
        # The client hung up mid-body: nobody reads this answer, but it must not be a 500
        # with a traceback in the logs. 499 is nginx's "client closed request".
        return Response(status_code=499)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        errors = exc.errors()
        detail = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in errors[: settings.max_errors]
        ]
        return json_response(422, {"detail": detail, "error_count": len(errors)})

    app.openapi = _openapi_builder(app, service)  # type: ignore[method-assign]
    return app


def _openapi_builder(app: FastAPI, service: Service) -> Callable[[], dict[str, Any]]:
    """``app.openapi``: FastAPI's document plus ``/predict`` for the *serving* model.

    The document is cached per loaded model and rebuilt after a reload, so ``/docs`` shows
    the fields of the model that will actually validate the request.
    """
    _, static_defs = models_json_schema(
        [
            (PredictResponse, "serialization"),
            (BatchPredictResponse, "serialization"),
            (ErrorMessage, "serialization"),
            (ValidationErrorResponse, "serialization"),
            (V2InferenceResponse, "serialization"),
            (V2Error, "serialization"),
        ],
        ref_template=REF_TEMPLATE,
    )
    cache: dict[str, Any] = {}

    def build() -> dict[str, Any]:
        current = service.holder.current
        if "doc" in cache and cache.get("model") is current:
            return cache["doc"]
        doc = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        components = doc.setdefault("components", {})
        schemas = components.setdefault("schemas", {})
        schemas.update(static_defs.get("$defs", {}))
        components.setdefault("securitySchemes", {}).update(BEARER)
        if current is not None:
            schemas.update(current.schema.components)
        doc["paths"] = {
            predict.PATH: {"post": predict.operation(current, REF_TEMPLATE)},
            **doc.get("paths", {}),
            **{path: {"post": v2.operation(path)} for path in v2.INFER_PATHS},
        }
        cache["model"], cache["doc"] = current, doc
        return doc

    return build


_app: FastAPI | None = None


def __getattr__(name: str) -> Any:
    """``app.main:app``, uvicorn's import string: built from the environment on first use,
    so importing ``create_app`` builds nothing."""
    global _app
    if name != "app":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if _app is None:
        _app = create_app()
    return _app
