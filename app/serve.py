"""``python -m app`` (and ``houseprice serve``): the service under uvicorn, with the process
policy that belongs to a server and not to the app (embedding the app, or testing it, gets
none of it):

- after start-up, what exists (modules, the app, the model) moves out of the cyclic garbage
  collector's reach (``gc.freeze``) and young collections run less often, so a collection
  scans what requests allocate, not the whole start-up heap;
- SIGTERM turns readiness to 503 at once, then uvicorn drains in-flight requests for up to
  ``SHUTDOWN_TIMEOUT`` seconds and the process exits 0 (a completed drain is a clean exit);
- proxy headers (``X-Forwarded-For``) are trusted only from ``FORWARDED_ALLOW_IPS``.

One worker: the drift window and the metrics live in this process (docs/ARCHITECTURE.md).
"""

from __future__ import annotations

import argparse
import gc
import logging
import signal
import socket
import sys
from collections.abc import Sequence
from types import FrameType

import uvicorn

from app.main import create_app
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
    config = uvicorn.Config(
        app,
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
    Server(config, app.state.service).run()
    return 0
