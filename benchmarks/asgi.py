"""One ASGI request as uvicorn hands it to the app, for the in-process benchmarks.

The benchmarks that call the app without a socket (``bench_answers``, ``bench_asgi``,
``bench_monitoring``, ``bench_steps``) build their scope and messages here, so they all
measure the same request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

Scope = dict[str, Any]


def http_scope(method: str, path: str, body: bytes = b"") -> Scope:
    """The scope of one HTTP/1.1 request from 127.0.0.1; ``path`` may carry a query string.

    A request with a body declares it as JSON with its ``Content-Length``. The app writes into
    the scope (request id, route, sizes), so pass each call a copy (``dict(scope)``).
    """
    raw_path, _, query = path.partition("?")
    headers = [(b"host", b"127.0.0.1:8000"), (b"user-agent", b"bench")]
    if body:
        headers.append((b"content-type", b"application/json"))
        headers.append((b"content-length", b"%d" % len(body)))
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 50000),
        "scheme": "http",
        "method": method,
        "root_path": "",
        "path": raw_path,
        "raw_path": raw_path.encode(),
        "query_string": query.encode(),
        "headers": headers,
        "state": {},
    }


def caller(
    app: Callable[..., Awaitable[None]], method: str, path: str, body: bytes = b""
) -> Callable[[], Awaitable[int]]:
    """A coroutine function that makes the request once and returns the answer's status.

    Its ``receive`` gives the whole body in one message and then waits, as a client that
    keeps the connection open (never a disconnect).
    """
    scope = http_scope(method, path, body)
    message = {"type": "http.request", "body": body, "more_body": False}

    async def call() -> int:
        status = 0
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return message
            await asyncio.Event().wait()  # the client never disconnects
            raise AssertionError("unreachable")

        async def send(m: dict[str, Any]) -> None:
            nonlocal status
            if m["type"] == "http.response.start":
                status = m["status"]

        await app(dict(scope), receive, send)
        return status

    return call
