"""The shadow model's own process (``python -m app.shadowworker IN_FD OUT_FD``): it prices the
groups of rows the server sends and answers each with the prices, what it dropped and its
series; the server side is :mod:`app.shadow`.

Why a process: in one CPython process the shadow's pricing (the pipeline's NumPy, the price
histogram, the drift window) holds the interpreter lock the event loop needs to answer, which
showed as a longer p99 of the served answer (docs/PERFORMANCE.md). Here it holds its own.

The protocol, one message per ``Connection.send_bytes`` frame, in order on two pipes:

- server -> worker: first :class:`Start`, pickled (the verified pipeline, already unpickled
  and checked by the server, so the worker never reads the artifact file); the worker answers
  ``("ready", sha256)`` or ``("error", why)``, pickled. Then one message per group of
  requests (:func:`encode_group`): each request's column names and house count, and all the
  group's values in one flat list (``marshal``, about half the CPU of ``pickle`` for these
  plain values, paid on the server's side; ``pickle`` for values marshal does not know).
  The values are rows of the champion's names, house after house, so the worker takes each
  column the shadow needs as one slice of them (:meth:`Pricer.price_group`), with no table
  built a request: the worker's CPU a house is what the shadow takes from the server's
  cores (docs/PERFORMANCE.md, "Stop 32").
- worker -> server: one :class:`Reply` per group, in the order the groups came, and between
  them a :class:`Stats` alone when the drift rows are re-read while no group waits; both as
  plain tuples in ``marshal`` (:func:`encode_reply`).

Reading the drift rows buckets the whole window (a millisecond or so), so it happens at most
once per :attr:`Pricer.DRIFT_EVERY` seconds: in a reply under steady traffic, or on its own
once the traffic pauses. A reply says whether rows are waiting to be read into the drift
gauges (``Stats.drift_stale``), so the server knows its series are not yet current.

The worker ends at the end of its input: when the server closes the pipe, exits or dies, so it
never outlives it. It ignores SIGINT (a Ctrl-C in a terminal reaches the whole process group;
the server's shutdown closes the pipe).
"""

from __future__ import annotations

import contextlib
import marshal
import math
import operator
import os
import pickle
import signal
import sys
import time
import traceback
from collections.abc import Iterator, Sequence
from multiprocessing.connection import Connection
from typing import Any, NamedTuple

from app.metrics import PRICE_BUCKETS, DriftRows, Histogram
from app.settings import Settings
from app.state import LoadedModel, Table, build_model


class Stats(NamedTuple):
    """The shadow's series so far: priced houses, price histogram (counts, sum), drift rows
    (``None``: not re-read this time, the previous rows stand) and whether priced rows are
    not in the drift rows yet (a :class:`Stats` message follows once the traffic pauses)."""

    predictions: int
    counts: list[int]
    total: float
    drift: DriftRows | None
    drift_stale: bool = False


class Start(NamedTuple):
    """What the worker needs to build the shadow model as the server built it."""

    pipeline: Any
    metadata: dict[str, Any]
    sha256: str
    path: str
    settings: Settings
    monitoring: bool
    #: the series of the worker this one replaces (a restart), which its counters go on from
    stats: Stats | None = None


class Reply(NamedTuple):
    """The answer to one group: each request's prices (``None`` when not priced), the houses
    dropped by reason, the error to log, and the series (``None`` with monitoring off)."""

    prices: list[Sequence[float] | None]
    dropped: dict[str, int]
    error: str | None
    stats: Stats | None


def encode_group(names: list[Sequence[str]], counts: list[int], values: list[Any]) -> bytes:
    """A group of requests' tables as one message: each one's column names (``names[i]``; the
    same list each time is written once: ``marshal`` refers back to it) and houses
    (``counts[i]``), then all their values (each table's houses one after the other, each
    house's values in its names' order: ``Shadow.submit`` queues them so) at ``marshal``
    version 2 when the values allow (no reference table, which costs a look-up per value),
    else ``pickle``."""
    head = marshal.dumps((names, counts))
    try:
        body = b"m" + marshal.dumps(values, 2)
    except ValueError:  # a value marshal does not know
        body = b"p" + pickle.dumps(values, pickle.HIGHEST_PROTOCOL)
    return len(head).to_bytes(4, "big") + head + body


class Group(NamedTuple):
    """A message's requests as :func:`encode_group` wrote them: each one's column names and
    house count, and all their values, house after house, each house's in its names' order."""

    names: list[Sequence[str]]
    counts: list[int]
    values: list[Any]

    def runs(self) -> Iterator[tuple[Sequence[str], range, int, int]]:
        """The requests in a row that share one list of names (the whole group, unless the
        champion was reloaded meanwhile): the names, the requests' indices, and the first and
        end of their values."""
        names, counts = self.names, self.counts
        first = start = 0
        for i in range(1, len(names) + 1):
            # the champion's one list (marshal keeps it one), or another champion's
            if i == len(names) or (names[i] is not names[first] and names[i] != names[first]):
                end = start + len(names[first]) * sum(counts[first:i])
                yield names[first], range(first, i), start, end
                first, start = i, end


def decode_group(message: bytes) -> Group:
    """The group of a message :func:`encode_group` made, its length checked."""
    view = memoryview(message)
    size = int.from_bytes(view[:4], "big")
    names, counts = marshal.loads(view[4 : 4 + size])
    body = view[5 + size :]
    values = marshal.loads(body) if view[4 + size] == ord("m") else pickle.loads(body)
    if len(names) != len(counts):
        raise ValueError(f"a group of {len(names)} lists of names for {len(counts)} requests")
    expected = sum(map(operator.mul, map(len, names), counts))
    if expected != len(values):
        raise ValueError(f"a group of {len(values)} values for tables of {expected}")
    return Group(names, counts, values)


def encode_reply(reply: Reply | Stats) -> bytes:
    """A reply or the series alone as one ``marshal`` message of plain tuples (a third of the
    CPU ``pickle.loads`` takes for the named tuples, paid on the server's side)."""
    if isinstance(reply, Stats):
        return marshal.dumps((False, tuple(reply)))
    stats = None if reply.stats is None else tuple(reply.stats)
    return marshal.dumps((True, (reply.prices, reply.dropped, reply.error, stats)))


def decode_reply(message: bytes) -> Reply | Stats:
    is_reply, fields = marshal.loads(message)
    if not is_reply:
        return Stats(*fields)
    prices, dropped, error, stats = fields
    return Reply(prices, dropped, error, None if stats is None else Stats(*stats))


class Pricer:
    """Prices groups of requests' tables with one model and keeps the shadow's series."""

    #: Seconds between two readings of the drift rows (see the module docstring).
    DRIFT_EVERY = 1.0

    def __init__(self, model: LoadedModel, monitoring: bool, since: Stats | None = None) -> None:
        self.model = model
        self.monitoring = monitoring
        self.names = [s.name for s in model.features]
        self._needed = frozenset(self.names)
        self.predictions = 0
        self.price = Histogram(PRICE_BUCKETS)
        if since is not None:  # a restarted worker: the counters go on
            self.predictions = since.predictions
            self.price.counts = list(since.counts)
            self.price.total = since.total
        self._drift_at = -math.inf
        self._unread = False  # rows priced and not yet read into the drift rows

    def price_group(self, group: Group) -> Reply:
        """The prices of ``group``'s requests, the houses of each run of requests that share
        one list of names (:meth:`Group.runs`) priced as one table. The group's values are
        rows of those names, so each column the shadow needs is one slice of them."""
        out: list[Sequence[float] | None] = [None] * len(group.counts)
        dropped: dict[str, int] = {}
        error = None
        for names, requests, start, end in group.runs():
            n = sum(group.counts[requests.start : requests.stop])
            if not self._needed <= set(names):  # a champion reloaded with fewer features
                dropped["incompatible"] = dropped.get("incompatible", 0) + n
                continue
            k, at = len(names), {name: j for j, name in enumerate(names)}
            table: Table = {name: group.values[start + at[name] : end : k] for name in self.names}
            try:
                prices = self.model.predict(table)
            except Exception:  # the worker must survive anything the model does
                dropped["model_error"] = dropped.get("model_error", 0) + n
                error = traceback.format_exc()
                continue
            if not all(map(math.isfinite, prices)):
                dropped["non_finite"] = dropped.get("non_finite", 0) + n
                error = "it returned a non-finite price"
                continue
            if self.monitoring:
                self.predictions += n
                self.price.observe_many(prices)
                if self.model.monitor is not None:
                    self.model.monitor.update(table, prices)
                    self._unread = True
            first = 0
            for i in requests:
                last = first + group.counts[i]
                # a tuple of floats: the server keeps it in the feedback index for minutes, and
                # the collector stops tracking such a tuple at its first young collection, where
                # a list (or an array) it would move to the middle generation and scan there again
                out[i] = tuple(prices[first:last])
                first = last
        return Reply(out, dropped, error, self.stats())

    def stats(self, drift: bool = False) -> Stats | None:
        """The series; the drift rows re-read when ``drift`` or when they are due."""
        if not self.monitoring:
            return None
        rows = None
        if self.drift_stale and (drift or self.drift_due_in() == 0.0):
            rows = self.model.monitor.gauges() if self.model.monitor is not None else None
            self._drift_at = time.monotonic()
            self._unread = False
        counts = list(self.price.counts)
        return Stats(self.predictions, counts, self.price.total, rows, self.drift_stale)

    @property
    def drift_stale(self) -> bool:
        """Rows were priced since the drift rows were last read."""
        return self._unread and self.model.monitor is not None

    def drift_due_in(self) -> float:
        """Seconds until the drift rows may be read again."""
        return max(0.0, self._drift_at + self.DRIFT_EVERY - time.monotonic())


def lower_priority(nice: int) -> str:
    """Run below the server: ``nice`` added to the niceness, and the idle scheduling policy
    (``SCHED_IDLE``: this process runs only on a core nothing else wants, and waking up it
    never takes a core from a running task), or, where the policy cannot be set, the nice
    value alone. What was set, in words, for the server's log line."""
    os.nice(nice)
    idle = getattr(os, "SCHED_IDLE", None)
    if idle is None:  # not Linux
        return f"nice +{nice} (no SCHED_IDLE on this platform)"
    try:
        os.sched_setscheduler(0, idle, os.sched_param(0))
    except OSError as e:  # a seccomp profile or a kernel that refuses it
        return f"nice +{nice} (SCHED_IDLE refused: {e})"
    return "SCHED_IDLE"


def restore_policy(pid: int) -> None:
    """Give worker ``pid`` the normal scheduling policy again (at its nice value), so that,
    asked to stop, it finishes at once even on a busy machine, where the idle policy leaves it
    only a sliver of a core; unprivileged servers may not, and then it stops at the idle policy."""
    normal = getattr(os, "SCHED_OTHER", None)
    if normal is None:
        return
    with contextlib.suppress(OSError):  # not permitted, or the worker has already gone
        os.sched_setscheduler(pid, normal, os.sched_param(0))


def serve(inbox: Connection, outbox: Connection) -> int:
    """Build the model from the first message, then price every group until end of input."""
    try:
        start: Start = pickle.loads(inbox.recv_bytes())
        model = build_model(
            start.pipeline, start.metadata, start.sha256, start.path, start.settings
        )
    except EOFError:
        return 0
    except Exception as e:
        outbox.send_bytes(pickle.dumps(("error", f"{type(e).__name__}: {e}")))
        return 1
    # loaded at the server's priority (a reload waits for it), priced below it: the cores go
    # to the serving process first
    outbox.send_bytes(pickle.dumps(("ready", lower_priority(start.settings.shadow_nice))))
    pricer = Pricer(model, start.monitoring, start.stats)
    while True:
        try:
            if pricer.drift_stale and not inbox.poll(pricer.drift_due_in()):
                stats = pricer.stats(drift=True)  # never None: drift_stale needs monitoring
                if stats is not None:
                    outbox.send_bytes(encode_reply(stats))
                continue  # the traffic paused: the drift rows are now current
            reply = pricer.price_group(decode_group(inbox.recv_bytes()))
            outbox.send_bytes(encode_reply(reply))
        except (EOFError, BrokenPipeError):  # the server closed its end, exited or died
            return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    inbox = Connection(int(args[0]), writable=False)
    outbox = Connection(int(args[1]), readable=False)
    return serve(inbox, outbox)


if __name__ == "__main__":
    # run the module's own copy, so replies pickle as app.shadowworker's classes, not __main__'s
    from app import shadowworker

    code = shadowworker.main()
    # no interpreter teardown: at the idle policy it could take seconds of a busy machine
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
