"""The pure-ASGI layers every request goes through, outside FastAPI's own stack.

``Observe`` (outermost) times the request, counts it in the HTTP metrics and writes its access
line, whatever happens inside, an exception included. ``Guard`` gives the request its id and
guards the body: a sane ``Content-Length``, the size limit, the deadline, and a closed
connection when the answer leaves part of a declared body unread. ``TrafficRoutes`` answers the
routes that carry the traffic (``POST /predict``, V2 infer) itself and hands every other
request to FastAPI's stack.

Pure ASGI, not ``BaseHTTPMiddleware``: the latter runs the route in another task with memory
streams, which costs more than a prediction.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Sequence
from typing import Any

from fastapi import HTTPException
from starlette._utils import get_route_path
from starlette.requests import ClientDisconnect
from starlette.routing import Match, Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.deadlines import BodyDeadlines
from app.logging import log_request
from app.routes.common import MADE_UP_ID, SANE_REQUEST_ID, encode_json
from app.state import Service

log = logging.getLogger("houseprice")

_CLOSE = {"Connection": "close"}  # the server closes the connection after this answer
_MAX_LENGTH_DIGITS = 19  # a Content-Length past 2**63 is no body anyone sends
_MATCHED_MAX = 256  # paths remembered by TrafficRoutes: a client inventing paths cannot grow it
#: What ``Guard`` records of a request for ``Observe``: body bytes let through, the answer's
#: status and body bytes.
RECEIVED, STATUS, SENT = "houseprice.received", "houseprice.status", "houseprice.sent"


class Observe:
    """HTTP metrics and the access line of every request, errors included, from what ``Guard``
    recorded in the scope (sizes and status)."""

    def __init__(self, app: ASGIApp, service: Service) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        metrics = self.service.metrics.requests if self.service.monitoring else None
        if metrics is not None:
            metrics.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            seconds = time.perf_counter() - started
            status = scope.get(STATUS, 500)  # 500: the app raised before answering
            if metrics is not None:
                metrics.in_flight -= 1
                route = getattr(scope.get("route"), "path", None) or "unmatched"
                got, sent = scope.get(RECEIVED, 0), scope.get(SENT, 0)
                metrics.observe_request(scope["method"], route, status, seconds, got, sent)
            client = scope.get("client")
            rid = scope.get("request_id", "")
            log_request(
                scope["method"], scope["path"], status, started, rid, client[0] if client else None
            )


class Guard:
    """Request id, and the body guard: ``Content-Length``, size limit, deadline, close.

    A declared ``Content-Length`` that is not a plain non-negative integer is answered 400;
    one over the limit is refused (413) before a byte is read, and a chunked body as soon as
    the bytes received pass the limit. The body must arrive within ``BODY_TIMEOUT`` of the
    request's start (408, ``app/deadlines.py``). Each of these answers closes the connection,
    and so does any answer sent before a declared body has arrived in full: the server
    would otherwise keep reading a body that nobody waits for, for as long as it trickles.
    """

    def __init__(self, app: ASGIApp, service: Service) -> None:
        self.app = app
        self.limit = service.settings.max_body_bytes
        self.timeout = service.settings.body_timeout
        self.deadlines = BodyDeadlines(period=min(1.0, self.timeout / 4))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        rid = ""
        declared = 0
        chunked = False
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                if SANE_REQUEST_ID.fullmatch(value):
                    rid = value.decode("ascii")
            elif name == b"content-length":
                if not value.isdigit() or len(value) > _MAX_LENGTH_DIGITS:
                    declared = -1
                    break
                declared = int(value)
            elif name == b"transfer-encoding":
                chunked = True
        if not rid:
            # 128 random bits, as uuid4 without the object: an id needs uniqueness, not secrecy;
            # bytes to hex costs half of formatting a 128-bit integer
            rid = random.randbytes(16).hex()
            scope[MADE_UP_ID] = True  # a route may adopt the id the body names instead
        scope["request_id"] = rid
        pending = declared > 0 or chunked  # a body is on its way

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                scope[STATUS] = message["status"]
                rid_header = (b"x-request-id", scope["request_id"].encode())
                headers = [*message.get("headers", ()), rid_header]
                if pending:
                    headers.append((b"connection", b"close"))
                message["headers"] = headers
            elif message["type"] == "http.response.body":
                scope[SENT] = scope.get(SENT, 0) + len(message.get("body", b""))
            await send(message)

        if declared < 0:
            pending = False  # the answer says close itself
            await _answer(send_with_id, 400, "Content-Length must be a non-negative integer")
            return
        limit, timeout, deadlines = self.limit, self.timeout, self.deadlines
        deadline = started + timeout
        received = 0

        async def guarded_receive() -> Message:
            nonlocal received, pending
            if declared > limit:
                raise HTTPException(413, f"request body is over the limit of {limit} bytes", _CLOSE)
            if not pending:  # only http.disconnect can follow: no deadline on waiting for it
                return await receive()
            try:
                message = await deadlines.receive(receive, deadline)
            except TimeoutError:
                raise HTTPException(
                    408, f"request body not received within {timeout:g} s", _CLOSE
                ) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                scope[RECEIVED] = received
                if received > limit:
                    raise HTTPException(
                        413, f"request body is over the limit of {limit} bytes", _CLOSE
                    )
                pending = message.get("more_body", False)
            else:
                pending = False
            return message

        await self.app(scope, guarded_receive, send_with_id)


class TrafficRoutes:
    """The routes that carry the traffic, answered before FastAPI's middleware stack.

    That stack (the server-error, telemetry, body-limit, exception and exit-stack layers, then
    the router's walk) costs a one-house request more than pricing it, and these endpoints
    need none of it: they answer their own errors. What they leave to a layer is answered
    here as the app's handlers would: the body guard's 413 and 408, and a client gone
    mid-body (499). An unexpected exception propagates, and the server answers 500. A
    request these routes match only by path (another method) goes on to the router, which
    holds the same routes and answers 405.
    """

    def __init__(self, app: ASGIApp, routes: Sequence[Route]) -> None:
        self.app = app
        # a route without parameters is found by its path (a regex match costs ten times
        # more), the others by matching
        self.fixed = {r.path: r for r in routes if not r.param_convertors}
        self.templated = [r for r in routes if r.param_convertors]
        # the paths a templated route matched, and its parameters: clients send the same few
        self.matched: dict[str, tuple[Route, dict[str, Any]]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            route = self.route(scope)
            if route is not None:
                try:
                    await route.app(scope, receive, send)
                except HTTPException as e:  # the body guard's
                    await _answer(send, e.status_code, e.detail)
                except ClientDisconnect:  # nobody reads it; "client closed request"
                    await send({"type": "http.response.start", "status": 499, "headers": []})
                    await send({"type": "http.response.body", "body": b""})
                return
        await self.app(scope, receive, send)

    def route(self, scope: Scope) -> Route | None:
        """The traffic route that takes this request (its scope updated as the router
        would), or ``None``."""
        path = get_route_path(scope)
        route = self.fixed.get(path)
        if route is not None:
            if route.methods and scope["method"] not in route.methods:
                return None
            scope.update(endpoint=route.endpoint, path_params={}, route=route)
            return route
        found = self.matched.get(path)
        if found is not None:
            route, params = found
            if scope["method"] not in route.methods:  # type: ignore[operator]
                return None
            scope.update(endpoint=route.endpoint, path_params=dict(params), route=route)
            return route
        for route in self.templated:
            match, child = route.matches(scope)
            if match is Match.FULL:
                scope.update(child)
                if len(self.matched) < _MATCHED_MAX:
                    self.matched[path] = route, dict(child["path_params"])
                return route
        return None


async def _answer(send: Send, status: int, detail: str) -> None:
    """A JSON ``{"detail"}`` answer that closes the connection, sent by the middleware."""
    body = encode_json({"detail": detail})
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", b"%d" % len(body)),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class LabelledMount(Mount):
    """A mount that records a route label (``<path>/*``) for the metrics when it matches."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child = super().matches(scope)
        if match is not Match.NONE:
            child["route"] = _Label(f"{self.path}/*")
        return match, child


class _Label:
    """Something with a ``path``, as ``Observe`` reads ``scope["route"]``."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __repr__(self) -> str:
        return f"_Label({self.path!r})"
