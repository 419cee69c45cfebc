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
from json.encoder import encode_basestring_ascii
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

    The line is formatted in the formatter's layout: building a LogRecord and running it
    through the logging machinery costs several times the JSON encoding, on every request.
    Level and handlers are still those of the access logger. Inside an event loop the line is
    kept as its values and formatted, then written, with the others of the same loop turn
    (:class:`_TurnBuffer`).
    """
    if not _access.isEnabledFor(logging.INFO):
        return
    _turn.add((time.perf_counter(), method, path, status, started, request_id, client))


#: What :func:`log_request` keeps of a request: its end (``perf_counter``), method, path,
#: status, start, request id and client.
_Entry = tuple[float, str, str, int, float, str, str | None]


def _wall() -> float:
    """What to add to a ``perf_counter`` reading to get the wall clock (one read a turn)."""
    return time.time() - time.perf_counter()


def _lines(entries: list[_Entry], wall: float) -> str:
    """The access lines of ``entries``, each ending in a newline."""
    # An f-string template: the request id is a sanitised token and method a HTTP token, so
    # only the path and the client address go through the JSON string encoder.
    return "".join(
        f'{{"ts":{wall + end:.6f},"level":"info","logger":"{ACCESS_LOGGER}","msg":"request",'
        f'"method":"{method}","path":{_string(path)},"status":{status},'
        f'"latency_ms":{(end - started) * 1000.0:.3f},"request_id":"{rid}",'
        f'"client":{"null" if client is None else _string(client)}}}\n'
        for end, method, path, status, started, rid, client in entries
    )


class _TurnBuffer:
    """Access lines of one event-loop turn, formatted and written (and flushed) together when
    it ends.

    A line per ``write`` + ``flush`` would be one system call per request, which bare FastAPI
    does not make (docs/PERFORMANCE.md). Requests that finish in the same turn of the loop
    share one call; the first line of a turn schedules the write with ``call_soon``, so a line
    waits for the rest of its turn only, and process exit writes what is left. The lines that
    follow it in the same turn only join the list: looking the running loop up again is a
    system call on Python 3.11 (``getpid``). Outside an event loop (a script, a test) a line
    is written at once.
    """

    def __init__(self) -> None:
        self.entries: list[_Entry] = []
        self.loop: asyncio.AbstractEventLoop | None = None  # where the write is scheduled

    def add(self, entry: _Entry) -> None:
        self.entries.append(entry)
        pending = self.loop
        if pending is not None and pending.is_running():  # its write will take this line
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no running loop: write now
            self.write()
            return
        self.loop = loop
        loop.call_soon(self.write)

    def write(self) -> None:
        entries, self.entries, self.loop = self.entries, [], None
        if not entries:
            return
        wall = _wall()
        text = _lines(entries, wall)
        for handler in _access.handlers:
            stream = getattr(handler, "stream", None)
            if stream is None:  # not a stream handler: a record for this handler alone
                if handler.level <= logging.INFO:
                    for record in _records(entries, wall):
                        handler.handle(record)
                continue
            handler.acquire()  # the handler's lock: no interleaving with other threads' lines
            try:
                stream.write(text)
                stream.flush()
            finally:
                handler.release()


def _records(entries: list[_Entry], wall: float) -> list[logging.LogRecord]:
    """``entries`` as the access logger's records, with the fields the line has as attributes."""
    records = []
    for end, method, path, status, started, rid, client in entries:
        latency_ms = float(f"{(end - started) * 1000.0:.3f}")  # as the line has it
        fields = (method, path, status, latency_ms, rid, client)
        record = _access.makeRecord(
            ACCESS_LOGGER,
            logging.INFO,
            "",
            0,
            "request",
            (),
            None,
            extra=dict(zip(_FIELDS, fields, strict=True)),
        )
        record.created = wall + end
        record.msecs = (record.created % 1) * 1000.0
        records.append(record)
    return records


_turn = _TurnBuffer()
atexit.register(_turn.write)


_string = encode_basestring_ascii  # what json.dumps writes for a str
_FIELDS = ("method", "path", "status", "latency_ms", "request_id", "client")
