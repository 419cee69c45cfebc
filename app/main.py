"""The FastAPI application: ``app.main:app``, built by ``create_app(settings)``.

Start-up (the lifespan) loads and verifies the artifact named by ``MODEL_PATH`` and warms it;
if that fails the app still starts — liveness answers, readiness and ``/predict`` say 503 with
the reason — so an orchestrator shows *why* instead of a crash loop, and ``/admin/reload`` can
bring it up once a good artifact is in place.

One pure-ASGI middleware does the per-request work every route shares: request id, body size
limit, metrics and the JSON access line. Pure ASGI (no ``BaseHTTPMiddleware``) because the
latter runs the route in a separate task with memory streams, which costs more than a NumPy
prediction does.
"""

from __future__ import annotations

import copy
import gc
import logging
import random
import re
import signal
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from pathlib import Path
from types import FrameType
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from fastapi.telemetry import TelemetryConfig
from pydantic.json_schema import models_json_schema
from starlette.requests import ClientDisconnect

from app.deadlines import BodyDeadlines
from app.logging import configure_logging, log_request
from app.routes import admin, docs, health, model, monitoring, predict, v2
from app.routes.common import json_response
from app.schemas import (
    REF_TEMPLATE,
    BatchPredictResponse,
    ErrorMessage,
    PredictResponse,
    ValidationErrorResponse,
)
from app.settings import Settings
from app.state import Service

log = logging.getLogger("houseprice")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

STATIC_DIR = Path(__file__).parent / "static"
YOUNG_GC_THRESHOLD = 10_000  # CPython's default is 700
_SANE_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:\-]{1,128}")
_CLOSE = {"Connection": "close"}  # h11 then closes the connection after the response


class RequestMiddleware:
    """Request id, body limit, HTTP metrics and the access log line, in one cheap wrapper.

    The body limit is enforced on the stream: a declared ``Content-Length`` over the limit is
    refused before a byte is read, and a chunked body is refused as soon as the bytes received
    pass the limit — never after buffering the whole thing. Both answers carry
    ``Connection: close``: without it uvicorn would read and discard the rest of the body and
    then keep the connection open with no keep-alive timer.

    The body must arrive within ``BODY_TIMEOUT`` seconds of the request's start, else 408 and
    the connection is closed (the slow-loris guard, ``app/deadlines.py``).
    """

    def __init__(self, app: ASGIApp, service: Service) -> None:
        self.app = app
        self.service = service
        self.deadlines = BodyDeadlines(period=min(1.0, service.settings.body_timeout / 4))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        svc = self.service
        deadlines = self.deadlines
        limit = svc.settings.max_body_bytes
        rid = ""
        declared = -1
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                if _SANE_REQUEST_ID.fullmatch(value):
                    rid = value.decode("ascii")
            elif name == b"content-length":
                declared = int(value) if value.isdigit() else -1
        if not rid:
            # 128 random bits, as uuid4 without the object; an id needs uniqueness, not
            # secrecy, so the process's PRNG (reseeded in forked children), not a syscall
            rid = f"{random.getrandbits(128):032x}"
        scope["request_id"] = rid
        received = 0
        status = 500
        sent = 0
        body_done = False
        body_deadline = started + svc.settings.body_timeout  # perf_counter is monotonic

        async def limited_receive() -> Message:
            nonlocal received, body_done
            if declared > limit:
                raise HTTPException(413, f"request body is over the limit of {limit} bytes", _CLOSE)
            if body_done:  # only http.disconnect can follow: no deadline on waiting for it
                return await receive()
            try:
                message = await deadlines.receive(receive, body_deadline)
            except TimeoutError:
                raise HTTPException(
                    408, f"request body not received within {svc.settings.body_timeout:g} s", _CLOSE
                ) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise HTTPException(
                        413, f"request body is over the limit of {limit} bytes", _CLOSE
                    )
                body_done = not message.get("more_body", False)
            return message

        async def send_with_id(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), (b"x-request-id", rid.encode())]
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        http = svc.metrics.http if svc.monitoring else None
        if http is not None:
            http.in_flight += 1
        try:
            await self.app(scope, limited_receive, send_with_id)
        finally:
            if http is not None:
                http.in_flight -= 1
                route = getattr(scope.get("route"), "path", None) or "unmatched"
                seconds = time.perf_counter() - started
                http.observe(scope["method"], route, status, seconds, received, sent)
            client = scope.get("client")
            log_request(
                scope["method"], scope["path"], status, started, rid, client[0] if client else None
            )


def _install_sigterm_hook(service: Service) -> None:
    """Flip readiness to 503 the moment SIGTERM arrives, then let uvicorn drain.

    uvicorn installs its own handler (stop accepting, finish in-flight requests, run the
    lifespan shutdown); ours runs first and chains to it. uvicorn >= 0.29 then re-raises the
    signal once drained, so the process would die *by* SIGTERM (exit 143); a completed drain
    is a clean exit, so the signal is dropped from its list and the process exits 0.
    """
    if threading.current_thread() is not threading.main_thread():
        return  # TestClient runs the lifespan in a worker thread: no signals there
    previous = signal.getsignal(signal.SIGTERM)

    def on_sigterm(sig: int, frame: FrameType | None) -> None:
        service.holder.shutting_down = True
        service.metrics.model_ready.set(0)
        log.info("SIGTERM: readiness is now 503; draining in-flight requests")
        if callable(previous):
            previous(sig, frame)
            captured = getattr(getattr(previous, "__self__", None), "_captured_signals", None)
            if isinstance(captured, list) and sig in captured:
                captured.remove(sig)
        elif previous == signal.SIG_DFL:
            raise SystemExit(0)

    signal.signal(signal.SIGTERM, on_sigterm)


#: FastAPI's native OpenTelemetry bridge, off unless ``OTEL_ENABLED``. This service exports
#: Prometheus metrics and JSON logs; left on, the bridge asks on every request whether an
#: OpenTelemetry SDK has been configured since (three global provider lookups, each reading
#: the environment): about 10 µs of the ~85 µs a one-house request costs in process.
_NO_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; ``settings`` defaults to ``Settings.from_env()``."""
    settings = settings if settings is not None else Settings.from_env()
    configure_logging(settings.log_level)
    service = Service(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service.holder.shutting_down = False  # a test client may run start-up again
        service.load_initial()
        _install_sigterm_hook(service)
        # What exists now (modules, the app, the model) lives as long as the process: move it
        # out of the cyclic collector's reach, so a full collection scans only what requests
        # allocate. Without it a 1,000-house batch now and then paid a ~120 ms full collection
        # of the start-up heap (docs/PERFORMANCE.md). Refcounting still frees frozen objects.
        gc.collect()
        gc.freeze()
        # A young collection every 700 new container objects means five or so during one
        # 1,000-house request, each scanning the request's live models (~0.5-1.5 ms in all);
        # requests free what they allocate, so at 10,000 a batch rarely triggers one.
        gc.set_threshold(YOUNG_GC_THRESHOLD, *gc.get_threshold()[1:])
        yield
        service.holder.shutting_down = True
        service.metrics.model_ready.set(0)

    app = FastAPI(
        title="houseprice",
        version="0.1.0",
        description="House-price prediction service: a NumPy model trained by `houseprice "
        "train`, with Prometheus metrics and live drift checks.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        telemetry=None if settings.otel_enabled else _NO_TELEMETRY,
    )
    app.state.service = service
    app.router.routes.insert(0, predict.route(service))  # matched first: it carries the traffic
    for module in (health, model, admin, monitoring, v2, docs):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_middleware(RequestMiddleware, service=service)

    @app.exception_handler(ClientDisconnect)
    async def client_gone(request: Request, exc: ClientDisconnect) -> Response:
        # The client hung up mid-body: nobody reads this answer, but it must not be a 500
        # with a traceback in the logs. 499 is nginx's "client closed request".
        return Response(status_code=499)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        detail = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        return json_response(422, {"detail": detail})

    app.openapi = _openapi_builder(app, service)  # type: ignore[method-assign]
    return app


def _openapi_builder(app: FastAPI, service: Service) -> Callable[[], dict[str, Any]]:
    """``app.openapi`` that documents ``/predict`` with the *serving* model's schema.

    The document is cached per loaded model and rebuilt after a reload, so ``/docs`` shows
    the fields of the model that will actually validate the request.
    """
    _, static_defs = models_json_schema(
        [
            (PredictResponse, "serialization"),
            (BatchPredictResponse, "serialization"),
            (ErrorMessage, "serialization"),
            (ValidationErrorResponse, "serialization"),
        ],
        ref_template=REF_TEMPLATE,
    )
    cache: dict[str, Any] = {}

    def ref(name: str) -> dict[str, str]:
        return {"$ref": REF_TEMPLATE.format(model=name)}

    def build() -> dict[str, Any]:
        current = service.holder.current
        if current is not None and cache.get("model") is current:
            return cache["doc"]
        doc = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        schemas = doc.setdefault("components", {}).setdefault("schemas", {})
        schemas.update(static_defs.get("$defs", {}))
        op = copy.deepcopy(predict.OPERATION)  # a plain ASGI route: FastAPI cannot see it
        doc["paths"] = {predict.PATH: {"post": op}, **doc.get("paths", {})}
        if current is not None:
            schemas.update(current.schema.components)
            body_schema: dict[str, Any] = {"oneOf": [ref("House"), ref("HouseBatch")]}
            op["description"] += f" Serving model version: `{current.version}`."
            media: dict[str, Any] = {"schema": body_schema, "example": current.schema.example}
        else:
            media = {"schema": {"type": "object"}}
        op["requestBody"] = {"required": True, "content": {"application/json": media}}
        responses = op["responses"]
        responses["200"]["content"] = {
            "application/json": {
                "schema": {"oneOf": [ref("PredictResponse"), ref("BatchPredictResponse")]}
            }
        }
        for code in ("400", "422"):
            responses[code]["content"] = {
                "application/json": {"schema": ref("ValidationErrorResponse")}
            }
        for code in ("413", "415", "503"):
            responses[code]["content"] = {"application/json": {"schema": ref("ErrorMessage")}}
        cache["model"] = current
        cache["doc"] = doc
        return doc

    return build


app = create_app()
