"""Structured logs: one JSON object per line on stderr.

Log collectors (Loki, CloudWatch, `kubectl logs | jq`) parse one JSON object per line without
a custom grammar. Request lines carry method, path, status, latency and request id — never the
body (it may be large or personal) and never a header value (``Authorization`` is a secret).
"""

from __future__ import annotations

import asyncio
import atexit
import json
import logging
import sys
import time
from typing import Any

#: Attributes every LogRecord has; anything else was passed with ``extra=`` and is emitted.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "color_message",  # uvicorn's ANSI-coloured copy of msg
}

ACCESS_LOGGER = "houseprice.access"
APP_LOGGER = "houseprice"


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "msg", ...extra}`` as one line of JSON."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": round(record.created, 6),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, separators=(",", ":"))


class StderrHandler(logging.StreamHandler):
    """A stream handler that writes to whatever ``sys.stderr`` is *now*.

    ``StreamHandler(sys.stderr)`` binds the object current at configuration time; when that
    object is replaced later (a test's output capture, a server that redirects stderr), the
    handler would keep writing to the old, possibly closed, stream.
    """

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def configure_logging(level: str) -> None:
    """Send the service's and uvicorn's loggers through one JSON handler on stderr.

    uvicorn's own access log is switched off: the request middleware writes a richer line
    (latency, request id), and two lines per request would double the cost and the noise.
    """
    handler = StderrHandler()
    handler.setFormatter(JsonFormatter())
    numeric = logging.getLevelName(level.upper())
    for name in (APP_LOGGER, ACCESS_LOGGER, "uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(numeric)
        logger.propagate = False
    access = logging.getLogger("uvicorn.access")
    access.handlers[:] = []
    access.propagate = False
    access.disabled = True


_access = logging.getLogger(ACCESS_LOGGER)


def log_request(
    method: str, path: str, status: int, started: float, request_id: str, client: str | None
) -> None:
    """One access line; ``started`` is a ``time.perf_counter()`` reading.

    The line is formatted here in the formatter's layout: building a LogRecord and running it
    through the logging machinery costs several times the JSON encoding, on every request.
    Level and handlers are still those of the access logger. Inside an event loop the line is
    written with the others of the same loop turn (:class:`_TurnBuffer`).
    """
    if not _access.isEnabledFor(logging.INFO):
        return
    latency_ms = (time.perf_counter() - started) * 1000.0
    # An f-string template: the request id is a sanitised token and method a HTTP token, so
    # only the path and the client address go through the JSON encoder.
    line = (
        f'{{"ts":{time.time():.6f},"level":"info","logger":"{ACCESS_LOGGER}","msg":"request",'
        f'"method":"{method}","path":{_dumps(path)},"status":{status},'
        f'"latency_ms":{latency_ms:.3f},"request_id":"{request_id}","client":{_dumps(client)}}}\n'
    )
    _turn.add(line)


class _TurnBuffer:
    """Access lines of one event-loop turn, written (and flushed) together when it ends.

    A line per ``write`` + ``flush`` would be one system call per request, which bare FastAPI
    does not make (docs/PERFORMANCE.md). Requests that finish in the same turn of the loop
    share one call; the first line of a turn schedules the write with ``call_soon``, so a line
    waits for the rest of its turn only, and process exit writes what is left. Outside an
    event loop (a script, a test) a line is written at once.
    """

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.loop: asyncio.AbstractEventLoop | None = None  # where the write is scheduled

    def add(self, line: str) -> None:
        self.lines.append(line)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no running loop: write now
            self.write()
            return
        if self.loop is not loop:  # the first line of this turn (or of a new loop)
            self.loop = loop
            loop.call_soon(self.write)

    def write(self) -> None:
        lines, self.lines, self.loop = self.lines, [], None
        if not lines:
            return
        text = "".join(lines)
        for handler in _access.handlers:
            stream = getattr(handler, "stream", None)
            if stream is None:  # not a stream handler: take the ordinary path, line by line
                for line in lines:
                    record = json.loads(line)
                    _access.info("request", extra={k: record[k] for k in _FIELDS})
                continue
            handler.acquire()  # the handler's lock: no interleaving with other threads' lines
            try:
                stream.write(text)
                stream.flush()
            finally:
                handler.release()


_turn = _TurnBuffer()
atexit.register(_turn.write)


_dumps = json.JSONEncoder(separators=(",", ":"), default=str).encode
_FIELDS = ("method", "path", "status", "latency_ms", "request_id", "client")
