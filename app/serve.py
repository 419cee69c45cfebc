"""``python -m app`` (and ``houseprice serve``): the service under uvicorn, with the process
policy that belongs to a server and not to the app (embedding the app, or testing it, gets
none of it):

- after start-up, what exists (modules, the app, the model) moves out of the cyclic garbage
  collector's reach (``gc.freeze``) and young collections run less often, so a collection
  scans what requests allocate, not the whole start-up heap;
- SIGTERM turns readiness to 503 at once, then uvicorn drains in-flight requests for up to
  ``SHUTDOWN_TIMEOUT`` seconds and the process exits 0 (a completed drain is a clean exit);
- proxy headers (``X-Forwarded-For``) are trusted only from ``FORWARDED_ALLOW_IPS``;
- a request head (request line and header fields) is bounded: over ``MAX_HEADER_BYTES`` bytes
  or ``MAX_HEADERS`` fields, the answer is 431 and the connection is closed (httptools, the
  fast parser, has no limit of its own and would buffer an endless header line).

One worker: the drift window and the metrics live in this process (docs/ARCHITECTURE.md).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import signal
import socket
import sys
from collections.abc import Callable, Sequence
from types import FrameType

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.main import create_app
from app.routes.common import encode_json
from app.settings import Settings, SettingsError
from app.state import Service

log = logging.getLogger("houseprice")

#: CPython's default young-generation threshold is 700 container objects: several young
#: collections per large batch request, each scanning the request's live objects.
YOUNG_GC_THRESHOLD = 10_000


def freeze_heap() -> None:
    """Move every object alive now out of the cyclic collector's reach; collect young less."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_GC_THRESHOLD, *gc.get_threshold()[1:])


class Server(uvicorn.Server):
    """uvicorn's server with the service's start-up and SIGTERM policy."""

    def __init__(self, config: uvicorn.Config, service: Service) -> None:
        super().__init__(config)
        self.service = service

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        freeze_heap()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if sig != signal.SIGTERM:
            super().handle_exit(sig, frame)
            return
        # Not recorded as a captured signal: uvicorn would raise it again once drained,
        # and the process would die by SIGTERM (143) after a clean drain.
        self.service.begin_shutdown()
        log.info("SIGTERM: readiness is now 503; draining in-flight requests")
        self.should_exit = True


class _RefusedError(Exception):
    """Raised from a parser callback to stop parsing a refused request."""


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a bounded request head; see the module docstring.

    The head is fed to the parser only within its byte budget, so an endless header line is
    refused once the budget is spent, never buffered. The fields are counted once the head is
    parsed: the byte budget already bounds how many the parser can hold. A request costs three
    parser callbacks more than uvicorn's own, not one per header field.
    ``max_head_bytes``, ``max_headers`` and ``on_refused`` are set by :func:`bounded_protocol`.
    """

    max_head_bytes = 16 * 1024
    max_headers = 100
    on_refused: Callable[[int, str], None] = staticmethod(lambda status, reason: None)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._in_head, self._head_bytes, self._refused = True, 0, False
        super().connection_made(transport)  # type: ignore[arg-type]

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            budget = self.max_head_bytes - self._head_bytes
            if len(data) > budget:
                self._feed_over_budget(data, budget)
                return
            self._head_bytes += len(data)
        HttpToolsProtocol.data_received(self, data)

    def _feed_over_budget(self, data: bytes, budget: int) -> None:
        """Feed what the budget allows; refuse if the same head has not ended within it."""
        self._head_bytes += budget
        HttpToolsProtocol.data_received(self, data[:budget])
        if self._refused or self.transport.is_closing():
            return
        # a request that ended within those bytes reset the count: a pipelined next head
        if self._in_head and self._head_bytes >= self.max_head_bytes:
            self._refuse(f"request head over {self.max_head_bytes} bytes")
            return
        self.data_received(data[budget:])

    def on_headers_complete(self) -> None:
        self._in_head = False
        if len(self.headers) > self.max_headers:
            self._refuse(f"more than {self.max_headers} header fields")
            raise _RefusedError
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._in_head, self._head_bytes = True, 0  # what follows is the next request's head
        super().on_message_complete()

    def send_400_response(self, msg: str) -> None:
        if not self._refused:  # the parser's error after a refusal is not a second answer
            super().send_400_response(msg)

    def _refuse(self, reason: str) -> None:
        self._refused = True
        body = encode_json({"detail": f"Request Header Fields Too Large: {reason}"})
        self.transport.write(
            b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
            b"content-type: application/json\r\n"
            b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(body), body)
        )
        self.transport.close()
        client = self.client[0] if self.client else None
        log.warning("request refused: 431 %s", reason, extra={"client": client})
        self.on_refused(431, reason)


def bounded_protocol(
    max_head_bytes: int, max_headers: int, on_refused: Callable[[int, str], None]
) -> type[BoundedHttpToolsProtocol]:
    """The protocol class with these limits, for ``uvicorn.Config(http=...)``."""
    return type(
        "BoundedHttpToolsProtocol",
        (BoundedHttpToolsProtocol,),
        {
            "max_head_bytes": max_head_bytes,
            "max_headers": max_headers,
            "on_refused": staticmethod(on_refused),
        },
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="houseprice serve", description="Serve the API with uvicorn (one worker)."
    )
    parser.add_argument("--host", help="bind address (default: HOST or 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default: PORT or 8000)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.port is not None and args.port < 0:
        print("houseprice serve: --port must be >= 0", file=sys.stderr)
        return 2
    try:
        settings = Settings.from_env()
    except SettingsError as e:
        print(f"houseprice serve: {e}", file=sys.stderr)
        return 2
    app = create_app(settings)
    service: Service = app.state.service
    metrics = service.metrics.requests

    def refused(status: int, reason: str) -> None:
        if service.monitoring:
            metrics.observe_request("other", "unmatched", status, 0.0, 0, 0)

    config = uvicorn.Config(
        app,
        http=bounded_protocol(settings.max_header_bytes, settings.max_headers, refused),
        host=args.host or settings.host,
        port=args.port if args.port is not None else settings.port,
        log_level=settings.log_level,
        log_config=None,  # the app's JSON logging stays in place
        access_log=False,  # the app writes its own access line
        timeout_graceful_shutdown=int(settings.shutdown_timeout),
        timeout_keep_alive=settings.keep_alive_timeout,
        proxy_headers=settings.forwarded_allow_ips is not None,
        forwarded_allow_ips=settings.forwarded_allow_ips,
    )
    Server(config, service).run()
    return 0
