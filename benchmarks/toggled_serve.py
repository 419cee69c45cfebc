"""``houseprice serve`` whose monitoring signals turn off and on, for ``bench_monitoring.py``.

``SIGUSR1`` turns monitoring off (``MONITORING_ENABLED=false``'s request path), ``SIGUSR2`` on
again: the requests read ``Service.monitoring`` each time, so one process serves both ways and
its two costs can be compared without the speed difference two processes of the same code
carry over a whole run. With ``TOGGLE=shadow`` the signals switch the shadow model instead
(``SHADOW_MODEL_PATH``, for ``bench_traffic.py --toggled``): off, no served answer is handed
to it, and its worker waits idle. With ``REQUEST_COUNT_FILE`` set, the number of HTTP requests
answered so far is kept in that file's first 8 bytes (a native-endian signed integer, through
``mmap``), so that a benchmark can read the requests of any stretch of time, in both ways
alike, without asking the server. A benchmark's launcher, not a feature: the app has no such
switch.

Run: ``.venv/bin/python benchmarks/toggled_serve.py --port 8000`` (``houseprice serve``'s
arguments and environment).
"""

from __future__ import annotations

import mmap
import os
import signal
import struct
import sys
from pathlib import Path
from types import FrameType

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import serve
from app.main import App
from app.settings import Settings
from app.shadow import Shadow
from app.state import Service

_create_app = serve.create_app
COUNT = struct.Struct("q")


class RequestCount:
    """The shared count of ``REQUEST_COUNT_FILE``: written by the server, read by a benchmark."""

    def __init__(self, path: str | Path, writable: bool = False) -> None:
        fd = os.open(path, os.O_RDWR | os.O_CREAT if writable else os.O_RDONLY, 0o600)
        try:
            if writable:
                os.ftruncate(fd, COUNT.size)
            prot = mmap.PROT_READ | (mmap.PROT_WRITE if writable else 0)
            self._map = mmap.mmap(fd, COUNT.size, prot=prot)
        finally:
            os.close(fd)

    def read(self) -> int:
        return int(COUNT.unpack_from(self._map)[0])

    def write(self, n: int) -> None:
        COUNT.pack_into(self._map, 0, n)


def counted(app: ASGIApp, count: RequestCount) -> ASGIApp:
    """``app``, with each HTTP request it answers added to ``count`` as its answer starts, so
    a client that has the answer finds it counted."""
    n = 0

    async def call(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return

        async def counting(message: Message) -> None:
            nonlocal n
            if message["type"] == "http.response.start":
                n += 1
                count.write(n)
            await send(message)

        await app(scope, receive, counting)

    return call


def create_app(settings: Settings | None = None) -> App:
    app = _create_app(settings)
    service: Service = app.state.service
    traffic, what = service.traffic, os.environ.get("TOGGLE", "monitoring")
    held: list[Shadow | None] = [None]

    def switch(sig: int, frame: FrameType | None) -> None:
        on = sig == signal.SIGUSR2
        if what == "monitoring":
            service.monitoring = on
        elif on:  # the shadow: handed the served rows again
            traffic.shadow = traffic.shadow or held[0]
        else:  # its worker stays, idle
            held[0], traffic.shadow = traffic.shadow or held[0], None

    signal.signal(signal.SIGUSR1, switch)
    signal.signal(signal.SIGUSR2, switch)
    path = os.environ.get("REQUEST_COUNT_FILE")
    if path:
        count = RequestCount(path, writable=True)
        build = app.build_middleware_stack
        app.build_middleware_stack = lambda: counted(build(), count)  # type: ignore[method-assign]
    return app


def main() -> int:
    serve.create_app = create_app
    return serve.main()


if __name__ == "__main__":
    raise SystemExit(main())
