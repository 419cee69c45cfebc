"""The prediction log (``PREDICTION_LOG``): one JSON line per served house, off the request path.

The request path appends one :class:`Entry` — references to the request's validated table and
prices, no copy, no encoding — to a queue bounded in houses (``PREDICTION_LOG_QUEUE``,
``app/batchqueue.py``); a writer thread turns entries into lines, in batches, within
``PredictionLog.PERIOD`` seconds. When the queue is full (the disk or the pipe is slower
than the traffic), the request's houses are dropped and counted in
``houseprice_prediction_log_dropped_total{reason="queue_full"}`` rather than held in memory or
waited for; a failed write counts its houses under ``reason="write_error"``. Houses count
against the bound until they are written, so memory stays within it.

A file rotates by size: a line that would take it past ``PREDICTION_LOG_MAX_BYTES`` first
renames ``log`` to ``log.1`` (``log.1`` to ``log.2``, ..., the oldest past
``PREDICTION_LOG_BACKUPS`` removed; with 0 backups the file starts over). The line format is
Contract 3 of docs/ARCHITECTURE.md; ``model/workflow/report.py`` reads it without this code.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from prometheus_client import CollectorRegistry, Counter

from app.batchqueue import BatchQueue

log = logging.getLogger("houseprice")

#: The ``event`` of a prediction line: a stream shared with other JSON lines stays sortable.
EVENT = "prediction"
#: ``json.dumps`` with arguments builds an encoder per call; this one is built once.
_ENCODE = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode


class Entry(NamedTuple):
    """One request's houses as served: what the writer needs, by reference."""

    time: float  # Unix seconds, when priced
    request_id: str
    model_version: str
    role: str  # "champion" or "shadow"
    table: Mapping[str, Sequence[Any]]  # validated inputs, API names, None = missing
    prices: Sequence[float]
    intervals: Sequence[Any] | None  # one per house, as the answer gave them, or None


def lines(entry: Entry) -> Iterator[str]:
    """The JSON lines of an entry, one per house, each ending in a newline."""
    when = datetime.fromtimestamp(entry.time, UTC).isoformat(timespec="microseconds")
    names = list(entry.table)
    columns = [entry.table[n] for n in names]
    for i, price in enumerate(entry.prices):
        line: dict[str, Any] = {
            "event": EVENT,
            "time": when,
            "request_id": entry.request_id,
            "index": i,
            "model_version": entry.model_version,
            "role": entry.role,
            "inputs": {n: c[i] for n, c in zip(names, columns, strict=True)},
            "price": price,
        }
        if entry.intervals is not None:
            line["interval"] = entry.intervals[i]
        yield _ENCODE(line) + "\n"


#: Lines encoded between two hand-overs of the interpreter to the event loop.
YIELD_EVERY = 8


def encode_yielding(batch: Sequence[tuple[Entry, int]]) -> Iterator[str]:
    """The lines of ``batch``, giving the interpreter lock away every :data:`YIELD_EVERY` lines:
    a thread that holds it for a whole batch makes a request that arrives meanwhile wait for
    the interpreter's switch interval, which shows in the served p99."""
    done = 0
    for entry, _ in batch:
        for line in lines(entry):
            yield line
            done += 1
            if done % YIELD_EVERY == 0:
                time.sleep(0)  # releases the GIL: a waiting event loop takes it


class Sink(Protocol):
    def write(self, text: str) -> None: ...
    def close(self) -> None: ...


class StdoutSink:
    """Lines to whatever ``sys.stdout`` is when written (the service logs go to stderr)."""

    def write(self, text: str) -> None:
        sys.stdout.write(text)
        sys.stdout.flush()

    def close(self) -> None:
        sys.stdout.flush()


class RotatingFile:
    """An append-only UTF-8 file rotated by size; see the module docstring."""

    def __init__(self, path: str | Path, max_bytes: int, backups: int) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.backups = backups
        self._file = self.path.open("ab")
        self._size = self._file.tell()

    def write(self, text: str) -> None:
        """Append whole lines, rotating before a line that would take the file past
        ``max_bytes`` (a single longer line gets a file of its own)."""
        data = text.encode()
        if self._size + len(data) <= self.max_bytes:
            self._append(data)
            return
        part: list[bytes] = []
        size = self._size
        for line in data.splitlines(keepends=True):
            if size and size + len(line) > self.max_bytes:
                if part:
                    self._append(b"".join(part))
                    part = []
                self._rotate()
                size = 0
            part.append(line)
            size += len(line)
        if part:
            self._append(b"".join(part))

    def _append(self, data: bytes) -> None:
        self._file.write(data)
        self._file.flush()
        self._size += len(data)

    def _rotate(self) -> None:
        self._file.close()
        if self.backups == 0:
            self.path.unlink(missing_ok=True)
        else:
            for k in range(self.backups - 1, 0, -1):
                older = self.path.with_name(f"{self.path.name}.{k}")
                if older.exists():
                    os.replace(older, self.path.with_name(f"{self.path.name}.{k + 1}"))
            os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))
        self._file = self.path.open("ab")
        self._size = 0

    def close(self) -> None:
        self._file.close()


def open_sink(target: str, max_bytes: int, backups: int) -> Sink:
    """``"stdout"`` or a file path (a :class:`RotatingFile`)."""
    return StdoutSink() if target == "stdout" else RotatingFile(target, max_bytes, backups)


class LogCounters:
    """The log's series, registered once per service (the log itself is reopened by each
    start-up of the app)."""

    def __init__(self, registry: CollectorRegistry | None) -> None:
        self.dropped = Counter(
            "houseprice_prediction_log_dropped",
            "Houses left out of the prediction log: queue full (slow sink) or write error",
            ["reason"],
            registry=registry,
        )
        self.written = Counter(
            "houseprice_prediction_log_lines",
            "Lines written to the prediction log",
            registry=registry,
        )
        for reason in ("queue_full", "write_error"):
            self.dropped.labels(reason)


class PredictionLog:
    """A :class:`~app.batchqueue.BatchQueue` of entries and the thread that writes them."""

    #: The writer wakes when this many houses wait, or every ``PERIOD`` seconds.
    WAKE = 256
    PERIOD = 0.05

    def __init__(self, sink: Sink, capacity: int, counters: LogCounters) -> None:
        self.sink = sink
        self.dropped = counters.dropped
        self.written = counters.written
        self.queue: BatchQueue[Entry] = BatchQueue(capacity, self.WAKE, self.PERIOD)
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()

    def put(self, entry: Entry) -> None:
        """Queue an entry, or drop and count its houses when the queue is full."""
        n = len(entry.prices)
        if not self.queue.put(entry, n):
            self.dropped.labels("queue_full").inc(n)

    def _run(self) -> None:
        while (batch := self.queue.take()) is not None:
            if not batch:
                continue
            n = sum(k for _, k in batch)
            try:
                self.sink.write("".join(encode_yielding(batch)))
            except Exception as e:  # the log must never take the service down
                self.dropped.labels("write_error").inc(n)
                log.error("prediction log: write failed, %d houses dropped: %s", n, e)
            else:
                self.written.inc(n)
            self.queue.done(n)

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued (for up to ``timeout`` seconds), then close the sink."""
        self.queue.close()
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("prediction log: %d houses not written at shutdown", self.queue.held)
            return
        self.sink.close()
