"""The shadow model (``SHADOW_MODEL_PATH``): a second verified artifact priced on the champion's
validated rows in a process of its own, never on the request path and never able to fail a
request.

``/predict`` hands the shadow the request's validated table once the answer is sent
(:meth:`Shadow.submit`: the houses' values appended to one flat list, house after house, each
in the order of the model's names, and a few appends to lists bounded in houses,
``SHADOW_QUEUE``; the names travel once a group, by reference to the model's list of them;
when full the houses are dropped and counted). ``Shadow.PERIOD`` seconds after the first house
queued (at once when ``WAKE`` houses wait), a timer of the event loop sends what is queued in
groups of about ``GROUP`` houses to the worker process (:mod:`app.shadowworker`), one group
per callback of the loop: one ``marshal`` of the group's values (and of their names and house
counts) written to a non-blocking pipe, what the pipe does not take written when it drains.
The worker prices each group as one table (its columns sliced from the flat values) and keeps
the shadow's series: its prediction count and price histogram, its own drift window (against
its own training reference). The loop reads the replies as they come (a reader on the reply
pipe) and records, one reply per callback, under ``role="shadow"`` and the shadow's
``model_version``: the prices in the feedback index (so feedback by request id scores both
models), the latest series for the scrape and, with ``PREDICTION_LOG``, the shadow's log
lines. So no callback of the shadow's holds the loop much longer than answering a request
does, and a request that arrives meanwhile waits for one group, not for all that was queued
(docs/PERFORMANCE.md, "s26-shadow").

So the pricing never holds the lock the event loop needs to answer, and the server has no
thread of its own for the shadow: a thread that wants the interpreter makes the loop give it up
(after the switch interval), and waits for a core to take it, while the requests wait (what
that buys in latency is not yet resolved: docs/PERFORMANCE.md, "s25-shadow"). The server's
share is one copy of each request's values, one encoding per group and one unmarshalling of
the prices per group, all between two requests on the loop.

Houses count against the queue until their reply is read, so a slow or stopped worker fills
the queue and the rest is dropped and counted (``queue_full``). A failure of the model is
counted (``model_error``, ``non_finite``) and logged. A worker that exits is logged in one
line and started again by a task of the loop after a backoff (``Shadow.BACKOFF`` seconds,
doubling at each failed start up to ``BACKOFF_MAX``; the start itself in a thread, as it
waits for the new worker to load), its counters going on from the last series it sent; every
restart is counted (``houseprice_shadow_restarts_total``) and the houses submitted meanwhile
are counted as ``model_error``. The worker runs at the idle scheduling policy and
``SHADOW_NICE`` below the server (:func:`app.shadowworker.lower_priority`), so the served
answers get the cores and the shadow drops rather than delays them. The champion never sees
any of it. The worker ends when its input pipe closes: at :meth:`Shadow.close` (which first
gives it the normal scheduling policy back where the server may, so that a busy machine does
not starve its last steps), or when the server exits or dies. The loop ends the input and goes
on serving: the wait for the worker's exit (a kill after ``CLOSE_TIMEOUT`` seconds) runs in a
thread while the loop records the worker's last replies, and ``/admin/reload`` answers, and the
app's shutdown ends, once the worker is gone.

The shadow must validate no feature the champion does not: it prices the champion's rows.
"""

from __future__ import annotations

import asyncio
import logging
import os
import pickle
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from functools import partial
from itertools import chain
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, NamedTuple

from prometheus_client import Counter

import app
from app.metrics import PRICE_BUCKETS, DriftRows, Histogram
from app.predlog import Entry, PredictionLog
from app.settings import Settings
from app.shadowworker import (
    Reply,
    Start,
    Stats,
    decode_reply,
    encode_group,
    restore_policy,
)
from app.state import LoadedModel, ModelLoadError, ReloadConflictError, Service, Table, load_model
from app.traffic import FeedbackIndex, Traffic

log = logging.getLogger("houseprice")


class ShadowSeries(NamedTuple):
    """What the shadow adds to the prediction and drift families at scrape time."""

    version: str
    predictions: int
    price: Histogram
    drift: DriftRows | None


class _Jobs:
    """Requests queued or in flight, one list per field (no object per request): what a
    request leaves here outlives several young collections, and a float, a string or bytes in
    a list is skipped by the collector where a tuple holding them is traversed."""

    #: the fields holding one item per request (``values`` holds one per house and column)
    PER_REQUEST = ("counts", "entries", "names", "rids", "tables", "times")
    __slots__ = (*PER_REQUEST, "values")

    def __init__(self) -> None:
        # the time, id and table of each request: kept for the prediction log's lines only
        self.times: list[float] = []
        self.rids: list[str] = []
        self.tables: list[Table] = []
        self.entries: list[int | None] = []  # each request's in the feedback index
        self.names: list[Sequence[str]] = []  # each table's columns (the model's one list)
        self.counts: list[int] = []  # houses of each
        # every table's values, one after the other, house after house (plain values: the
        # list is the one object here the collector tracks)
        self.values: list[Any] = []

    def take(self, k: int) -> _Jobs:
        """The first ``k`` requests, removed from these."""
        out = _Jobs()
        for name in _Jobs.PER_REQUEST:
            mine = getattr(self, name)
            setattr(out, name, mine[:k])
            del mine[:k]
        m = sum(c * len(n) for c, n in zip(out.counts, out.names, strict=True))
        out.values = self.values[:m]
        del self.values[:m]
        return out


def cut(counts: list[int], size: int) -> tuple[int, int]:
    """How many of the first ``counts`` make one group of about ``size`` houses (a larger
    request is a group of its own), and their houses."""
    n = 0
    for k, c in enumerate(counts):
        if k and n + c > size:
            return k, n
        n += c
    return len(counts), n


def incompatible(shadow: LoadedModel, champion: LoadedModel) -> str | None:
    """Why ``shadow`` cannot price the rows ``champion`` validates, or None."""
    kinds = {s.name: s.kind for s in champion.features}
    for spec in shadow.features:
        if spec.name not in kinds:
            return f"the shadow needs feature {spec.name!r}, which the champion does not take"
        numeric = {kinds[spec.name], spec.kind} <= {"numeric", "integer"}
        if kinds[spec.name] != spec.kind and not numeric:
            return (
                f"feature {spec.name!r} is {spec.kind} for the shadow but "
                f"{kinds[spec.name]} for the champion"
            )
    return None


def start_worker(
    start: Start, timeout: float
) -> tuple[subprocess.Popen[bytes], Connection, Connection]:
    """Start ``python -m app.shadowworker``, send it ``start`` and wait until it is ready;
    its process and the two ends this side keeps (send, receive). Raises
    :class:`ModelLoadError` (the worker stopped) when it does not get ready within ``timeout``."""
    work_r, work_w = os.pipe()
    reply_r, reply_w = os.pipe()
    env = dict(os.environ)
    root = str(Path(app.__file__).resolve().parent.parent)  # wherever the server found `app`
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "app.shadowworker", str(work_r), str(reply_w)],
            pass_fds=(work_r, reply_w),
            stdin=subprocess.DEVNULL,
            env=env,
        )
    finally:
        os.close(work_r)
        os.close(reply_w)
    send = Connection(work_w, readable=False)
    receive = Connection(reply_r, writable=False)
    try:
        send.send_bytes(pickle.dumps(start, pickle.HIGHEST_PROTOCOL))
        if not receive.poll(timeout):
            raise ModelLoadError(f"{start.path}: the shadow's process not ready in {timeout:g} s")
        status, detail = pickle.loads(receive.recv_bytes())
        if status != "ready":
            raise ModelLoadError(f"{start.path}: the shadow's process could not build it: {detail}")
        log.info(
            "shadow model %s: its process %d prices at %s",
            start.metadata.get("model_version"),
            proc.pid,
            detail,
        )
    except (EOFError, OSError) as e:
        code = proc.poll()
        stop_worker(proc, send, receive)
        raise ModelLoadError(
            f"{start.path}: the shadow's process exited while loading (code {code})"
        ) from e
    except BaseException:
        stop_worker(proc, send, receive)
        raise
    return proc, send, receive


def stop_worker(proc: subprocess.Popen[bytes], send: Connection, receive: Connection) -> None:
    """Stop a worker that no thread talks to yet (a failed start)."""
    send.close()
    receive.close()
    proc.kill()
    proc.wait()


class Shadow:
    """A loaded shadow model, its worker process and the hand-off to it, all on the event loop
    ``loop`` (the server's): no thread of the server's takes part (see the module docstring)."""

    #: Houses are sent when this many wait, or ``PERIOD`` seconds after the first: fewer,
    #: larger messages (each costs the loop more than a house does: docs/PERFORMANCE.md).
    WAKE = 512
    PERIOD = 0.2
    #: Houses in one message: framing it, and recording its reply, each hold the loop for one
    #: callback, kept about as short as answering a request (docs/PERFORMANCE.md, s26-shadow).
    GROUP = 128
    #: Seconds before the first restart of a worker that exited, doubling at each failed
    #: start up to ``BACKOFF_MAX``.
    BACKOFF = 1.0
    BACKOFF_MAX = 60.0
    #: Seconds a stopped worker has to finish what it holds and exit before it is killed.
    CLOSE_TIMEOUT = 5.0

    def __init__(
        self,
        model: LoadedModel,
        settings: Settings,
        dropped: Counter,
        predlog: PredictionLog | None,
        monitoring: bool,
        restarts: Counter,
        loop: asyncio.AbstractEventLoop,
        index: FeedbackIndex | None = None,
    ) -> None:
        self.model = model
        self.index = index
        self.capacity = settings.shadow_queue
        self.wake = max(1, min(self.WAKE, self.capacity // 2))
        self.dropped = dropped
        self.predlog = predlog
        self.monitoring = monitoring
        self.restarts = restarts
        self._loop = loop
        self._start = Start(
            model.pipeline, model.metadata, model.sha256, model.path, settings, monitoring
        )
        self._timeout = settings.reload_timeout
        self._proc, send, receive = start_worker(self._start, self._timeout)
        self._started_at = time.monotonic()
        # everything below is the event loop's (``idle()`` reads two of them from any thread)
        self._queued = _Jobs()  # not yet sent
        self._waiting = 0  # houses in ``_queued``
        self._held = 0  # houses queued or being priced: they count against ``capacity``
        self._flush_at: asyncio.Handle | None = None
        self._in_flight: deque[tuple[_Jobs, int]] = deque()
        self._pipe: _Pipe | None = None  # the worker's two pipes, once attached on the loop
        self._lost = False
        self._closing = False
        self._restarting: asyncio.Task[None] | None = None
        self._stop: asyncio.Task[None] | None = None  # the stop, once started (:meth:`close`)
        self._starting: asyncio.Future[Any] | None = None  # a restart's start under way
        self._backoff: float | None = None  # the next restart's, while crashes repeat
        self._stats: Stats | None = None
        self._drift_stale = False  # the worker has rows not yet in the drift rows it sent
        self._drift: DriftRows | None = None
        loop.call_soon_threadsafe(self._attach, self._proc, send, receive)

    @property
    def version(self) -> str:
        return self.model.version

    @property
    def pid(self) -> int:
        """The worker process's id."""
        return self._proc.pid

    def submit(
        self,
        when: float,
        rid: str,
        model: LoadedModel,
        table: Table,
        rows: Sequence[tuple[Any, ...]],
        entry: int | None,
    ) -> None:
        """Queue a request's validated houses, priced by ``model``, or drop and count them.
        ``rows`` are its houses as the route built them (:meth:`LoadedModel.tabulate`: each
        house's values in the order of ``model.names``); their values are appended to one
        flat list, house after house, which the worker reads back under those names. They are
        encoded once a group (:meth:`_flush`), not once a request: a ``marshal`` per request
        cost the loop about as much as the request's other shadow work put together, its code
        cold each time (docs/PERFORMANCE.md, "s28-shadow"). The table is kept by reference
        for the log alone, and the request's time and id too. On the loop."""
        n = len(rows)
        if self._closing or self._held + n > self.capacity:
            self.dropped.labels("queue_full").inc(n)
            return
        q = self._queued
        if self.predlog is not None:  # what the log's lines alone need
            q.times.append(when)
            q.rids.append(rid)
            q.tables.append(table)
        q.entries.append(entry)
        q.values += chain.from_iterable(rows)
        q.names.append(model.names)  # the model's one list: marshal writes it once a group
        q.counts.append(n)
        self._held += n
        self._waiting += n
        if self._waiting >= self.wake:
            if self._flush_at is not None:
                self._flush_at.cancel()
            self._flush_at = self._loop.call_soon(self._flush)
        elif self._flush_at is None:
            self._flush_at = self._loop.call_later(self.PERIOD, self._flush)

    def _flush(self) -> None:
        """Send the first group queued to the worker (or count it lost: no worker), and the
        next one in a callback of its own: each holds the loop for one group only."""
        self._flush_at = None
        k, n = cut(self._queued.counts, self.GROUP)
        if not k:
            return
        group = self._queued.take(k)
        self._waiting -= n
        if self._waiting:
            self._flush_at = self._loop.call_soon(self._flush)
        pipe = self._pipe
        if pipe is None or self._lost:
            self._forget(n, "model_error")
            return
        self._in_flight.append((group, n))
        pipe.send(encode_group(group.names, group.counts, group.values))

    def _attach(self, proc: subprocess.Popen[bytes], send: Connection, receive: Connection) -> None:
        """Start talking to a (new) worker from the loop."""
        if self._closing:
            stop_worker(proc, send, receive)
            return
        self._proc = proc
        self._pipe = _Pipe(self._loop, send, receive, self._on_message, self._on_end)
        self._lost = False
        self._started_at = time.monotonic()

    def _on_message(self, message: bytes) -> None:
        try:
            reply = decode_reply(message)
        except Exception:  # a reply this side cannot read: the worker is of no more use
            log.exception("shadow model %s: unreadable reply", self.version)
            self._proc.kill()  # its output ends: _on_end
            return
        if isinstance(reply, Stats):  # the drift rows, read once the traffic paused
            self._take(reply)
            return
        group, n = self._in_flight.popleft()
        try:
            self._record(group, reply)
        except Exception:  # a bug here must not stop the replies from being read
            log.exception("recording the shadow's prices failed")
        self._held -= n

    def _on_end(self) -> None:
        """The worker's output ended (it exited or was killed): count what was in flight as
        dropped and, unless closing, restart it."""
        if self._pipe is not None:
            self._pipe.close()
            self._pipe = None
        self._lost = True
        self._drift_stale = False  # no more rows will be read
        lost = sum(n for _, n in self._in_flight)
        self._in_flight.clear()
        if lost:
            self._forget(lost, "model_error")
        if not self._closing:
            self._restarting = self._loop.create_task(self._restart(self._proc))

    async def _restart(self, proc: subprocess.Popen[bytes]) -> None:
        """Restart the worker after a backoff that doubles from ``BACKOFF`` up to
        ``BACKOFF_MAX`` seconds and starts over once a worker has lived ``BACKOFF_MAX``
        seconds. Houses submitted meanwhile are dropped and counted (``model_error``);
        requests never wait for it."""
        code = await asyncio.to_thread(exit_code, proc)
        lived = time.monotonic() - self._started_at
        if self._backoff is None or lived >= self.BACKOFF_MAX:
            self._backoff = self.BACKOFF  # a first exit, or it had been working: no crash loop
        backoff = self._backoff
        log.error(
            "shadow model %s: its process exited (code %s); restarting it in %g s, "
            "houses are dropped until then",
            self.version,
            code,
            backoff,
        )
        while True:
            await asyncio.sleep(backoff)
            backoff = self._backoff = min(2 * backoff, self.BACKOFF_MAX)
            start = self._start._replace(stats=self._stats)  # its counters go on from these
            started = self._loop.run_in_executor(None, start_worker, start, self._timeout)
            # closed meanwhile (cancelled): the stop waits for the start and stops its worker
            self._starting = started
            try:
                proc, send, receive = await asyncio.shield(started)
            except Exception as e:
                self._starting = None
                log.error(
                    "shadow model %s: restarting its process failed (%s: %s); next try in %g s",
                    self.version,
                    type(e).__name__,
                    e,
                    backoff,
                )
                continue
            self._starting = None
            self._attach(proc, send, receive)
            self.restarts.inc()
            return

    def _forget(self, n: int, reason: str) -> None:
        self.dropped.labels(reason).inc(n)
        self._held -= n

    def _record(self, group: _Jobs, reply: Reply) -> None:
        for reason, k in reply.dropped.items():
            self.dropped.labels(reason).inc(k)
        if reply.error is not None:
            log.error("shadow model %s failed: %s", self.version, reply.error)
        if reply.stats is not None:
            self._take(reply.stats)
        version = self.version
        if self.index is not None:
            self.index.add_shadow_many(group.entries, version, reply.prices)
        if self.predlog is None:
            return
        lines = zip(group.times, group.rids, group.tables, reply.prices, strict=True)
        for when, rid, table, mine in lines:
            if mine is not None:
                self.predlog.put(Entry(when, rid, version, "shadow", table, mine, None))

    def _take(self, stats: Stats) -> None:
        if stats.drift is not None:
            self._drift = stats.drift
        self._drift_stale = stats.drift_stale
        self._stats = stats

    def series(self) -> ShadowSeries | None:
        """The shadow's prediction count, price histogram and drift rows, for the scrape."""
        if not self.monitoring:
            return None
        price = Histogram(PRICE_BUCKETS)
        stats = self._stats
        if stats is None:
            return ShadowSeries(self.version, 0, price, self._drift)
        price.counts = list(stats.counts)
        price.total = stats.total
        return ShadowSeries(self.version, stats.predictions, price, self._drift)

    def idle(self) -> bool:
        """Nothing queued or being priced, and the series current (tests and the benchmark
        wait for it)."""
        return self._held == 0 and not self._drift_stale

    def describe(self) -> dict[str, Any]:
        """The shadow's entry in ``GET /model``."""
        meta = {k: v for k, v in self.model.metadata.items() if k != "reference"}
        meta["artifact"] = {"sha256": self.model.sha256, "loaded_at": self.model.loaded_at}
        return meta

    def close(self, timeout: float | None = None) -> None:
        """Stop the worker process; what is queued is not priced (the shadow is only an
        experiment), the replies it sends before it exits are recorded. A worker still busy
        after ``timeout`` seconds (``CLOSE_TIMEOUT``) is killed. Called from another thread,
        it waits until the worker is gone; on the loop, it starts the stop and returns
        (``await`` :meth:`aclose` to wait for it): the loop never waits for the worker's exit."""
        timeout = self.CLOSE_TIMEOUT if timeout is None else timeout
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            self._stopping(timeout)
        elif self._loop.is_running():
            asyncio.run_coroutine_threadsafe(self.aclose(timeout), self._loop).result()
        else:  # no loop to hold: stopped here, at once
            self._end_input()
            wait_or_kill(self._proc, timeout)
            self._drain()

    async def aclose(self, timeout: float | None = None) -> None:
        """:meth:`close` on the loop, returning once the worker is gone; a cancelled caller
        leaves the stop going on. Each close after the first waits for the first's stop."""
        await asyncio.shield(self._stopping(self.CLOSE_TIMEOUT if timeout is None else timeout))

    def _stopping(self, timeout: float) -> asyncio.Task[None]:
        """The stop, started at the first call: the worker's input ends here, on the loop, and
        the wait for its exit runs in a thread while the loop reads its last replies."""
        if self._stop is None:
            self._end_input()
            self._stop = self._loop.create_task(self._stop_worker(timeout))
        return self._stop

    async def _stop_worker(self, timeout: float) -> None:
        await asyncio.to_thread(wait_or_kill, self._proc, timeout)
        self._drain()
        starting = self._starting  # a restart's start, under way when the close cancelled it
        if starting is not None:
            await asyncio.wait([starting])
            if not starting.cancelled() and starting.exception() is None:
                proc, send, receive = starting.result()
                restore_policy(proc.pid)  # as for any worker stopped: its last steps not starved
                send.close()  # its input ends: it exits
                receive.close()
                await asyncio.to_thread(wait_or_kill, proc, timeout)

    def _end_input(self) -> None:
        self._closing = True
        if self._flush_at is not None:
            self._flush_at.cancel()
            self._flush_at = None
        if self._restarting is not None:
            self._restarting.cancel()  # a backoff ends at once
        if self._pipe is not None:
            restore_policy(self._proc.pid)
            self._pipe.end_input()  # the worker's end of input: it finishes what it has and exits

    def _drain(self) -> None:
        """Once the worker has exited: the replies it wrote that the loop has not read yet."""
        pipe = self._pipe
        if pipe is not None:  # still attached: its output's end not yet read
            pipe.drain()
            if self._pipe is not None:
                self._on_end()


def wait_or_kill(proc: subprocess.Popen[bytes], timeout: float) -> None:
    """Wait for ``proc`` to exit, killing it after ``timeout`` seconds (in a thread: it blocks)."""
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def exit_code(proc: subprocess.Popen[bytes]) -> int | None:
    """The exit code of a worker whose output ended (None: still running after 5 s)."""
    try:
        return proc.wait(5)
    except subprocess.TimeoutExpired:
        return None


class _Pipe:
    """The server's ends of a worker's pipes, driven by the event loop: messages framed as
    :meth:`Connection.send_bytes` frames them (a 4-byte big-endian length, -1 and 8 bytes
    past 2 GiB, then the bytes), written without blocking (what the pipe does not take waits
    for it to drain), replies read as they come (``on_message`` for each, ``on_end`` once the
    worker's output ends)."""

    #: Bytes read at most at once: a reply is a few kB a group; a read of 1 MiB allocated (and
    #: freed) 1 MiB each time, a dozen times the CPU (docs/PERFORMANCE.md, "s28-shadow").
    READ = 1 << 16

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        send: Connection,
        receive: Connection,
        on_message: Callable[[bytes], None],
        on_end: Callable[[], None],
    ) -> None:
        self._loop = loop
        self._send, self._receive = send, receive
        self._out = send.fileno()
        self._in = receive.fileno()
        os.set_blocking(self._out, False)
        os.set_blocking(self._in, False)
        self._pending = bytearray()  # what the pipe did not take yet
        self._read = bytearray()  # replies read and not yet handed on
        self._later: asyncio.Handle | None = None  # handing on the next one
        self._on_message, self._on_end = on_message, on_end
        loop.add_reader(self._in, self._readable)

    def send(self, message: bytes) -> None:
        n = len(message)
        head = n.to_bytes(4, "big") if n < 1 << 31 else b"\xff\xff\xff\xff" + n.to_bytes(8, "big")
        frame = head + message
        if self._pending:
            self._pending += frame
            return
        try:
            n = os.write(self._out, frame)
        except BlockingIOError:
            n = 0
        except OSError:  # the worker is gone: its output ends too, on_end counts the group
            return
        if n < len(frame):
            self._pending += memoryview(frame)[n:]
            self._loop.add_writer(self._out, self._writable)

    def _writable(self) -> None:
        try:
            n = os.write(self._out, self._pending)
        except BlockingIOError:
            return
        except OSError:
            n = len(self._pending)
        del self._pending[:n]
        if not self._pending:
            self._loop.remove_writer(self._out)

    def _readable(self) -> None:
        try:
            data = os.read(self._in, self.READ)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            while self._next():  # the replies it wrote before its output ended
                pass
            self._on_end()
            return
        self._read += data
        if not self._later:
            self._one()

    def _next(self) -> bool:
        """Hand on the first whole reply read, if any; whether one was."""
        buf = self._read
        if len(buf) < 4:
            return False
        size = int.from_bytes(buf[:4], "big")
        if len(buf) - 4 < size:
            return False
        message = bytes(buf[4 : 4 + size])
        del buf[: 4 + size]
        self._on_message(message)
        return True

    def _one(self) -> None:
        """One reply per callback, the next one in a callback of its own: recording a reply
        holds the loop, and requests that came meanwhile are served between two."""
        self._later = None
        if self._next() and self._has_whole():
            self._later = self._loop.call_soon(self._one)

    def _has_whole(self) -> bool:
        buf = self._read
        return len(buf) >= 4 and len(buf) - 4 >= int.from_bytes(buf[:4], "big")

    def end_input(self) -> None:
        """No more messages: the worker's input ends (at once; what did not fit is dropped)."""
        self._loop.remove_writer(self._out)
        self._pending.clear()
        self._send.close()

    def drain(self) -> None:
        """Read the replies already in the pipe (the worker has exited), then end."""
        while True:
            try:
                data = os.read(self._in, self.READ)
            except (BlockingIOError, OSError):
                break
            if not data:
                break
            self._read += data
        while self._next():
            pass

    def close(self) -> None:
        if self._later is not None:
            self._later.cancel()
            self._later = None
        self._loop.remove_reader(self._in)
        self._loop.remove_writer(self._out)
        self._send.close()
        self._receive.close()


def load_shadow(service: Service, path: str, loop: asyncio.AbstractEventLoop) -> Shadow:
    """Load, verify and warm ``path`` as a shadow of the serving champion (not installed),
    handing off on ``loop`` (the server's).

    Raises what :func:`app.state.load_model` raises, and :class:`ModelLoadError` for an
    artifact that cannot price the champion's rows.
    """
    model = load_model(path, service.settings)
    champion = service.holder.current
    if champion is not None:
        why = incompatible(model, champion)
        if why is not None:
            raise ModelLoadError(f"{path}: {why}")
    traffic = service.traffic
    return Shadow(
        model,
        service.settings,
        traffic.shadow_dropped,
        traffic.log,
        service.monitoring,
        traffic.shadow_restarts,
        loop,
        traffic.index,
    )


def install(service: Service, shadow: Shadow | None) -> Shadow | None:
    """Make ``shadow`` (or none) the service's shadow; start stopping the previous one (on
    the loop: :meth:`Traffic.retire`) and return it."""
    traffic = service.traffic
    old, traffic.shadow = traffic.shadow, shadow
    traffic.shadow_info.clear()
    if shadow is not None:
        traffic.shadow_info.labels(shadow.version, shadow.model.sha256).set(1)
        log.info(
            "shadow model loaded",
            extra={
                "model_version": shadow.version,
                "sha256": shadow.model.sha256,
                "path": shadow.model.path,
            },
        )
    if old is not None:
        traffic.retire(old)
        log.info("shadow model dropped", extra={"model_version": old.version})
    return old


def load_initial(service: Service) -> None:
    """Start-up: the shadow of ``SHADOW_MODEL_PATH``, if set. A shadow that cannot load is
    logged and left out; the champion serves regardless."""
    path = service.settings.shadow_model_path
    if path is None:
        return
    try:
        install(service, load_shadow(service, path, asyncio.get_running_loop()))
    except Exception as e:
        log.error("shadow model not loaded, serving without it: %s", e)


async def reload(service: Service, path: str | None) -> tuple[Shadow | None, Shadow | None]:
    """Load ``path`` as the shadow (or drop the shadow for ``None``), beside the serving
    models, under the reload lock; returns the new and the previous shadow once the previous
    one's worker is gone (the loop serving meanwhile). A failure raises and leaves the
    previous shadow in place."""
    async with service.holder.lock:
        new = None
        if path is not None:
            timeout = service.settings.reload_timeout
            loop = asyncio.get_running_loop()
            loading = asyncio.ensure_future(asyncio.to_thread(load_shadow, service, path, loop))
            try:
                new = await asyncio.wait_for(asyncio.shield(loading), timeout=timeout)
            except (TimeoutError, asyncio.CancelledError) as e:
                # the load goes on in its thread: a shadow it ends with is stopped, not leaked
                loading.add_done_callback(partial(_close_late, service.traffic))
                if isinstance(e, TimeoutError):
                    raise ReloadConflictError(
                        f"{path}: not loaded within RELOAD_TIMEOUT ({timeout:g} s)"
                    ) from None
                raise
        old = install(service, new)
    if old is not None:
        await old.aclose()  # shielded: a reload cancelled here leaves the stop going on
    return new, old


def _close_late(traffic: Traffic, loading: asyncio.Future[Shadow]) -> None:
    """Stop the worker of a shadow whose load ended after its reload gave up on it."""
    if not loading.cancelled() and loading.exception() is None:
        shadow = loading.result()
        traffic.retire(shadow)
        log.info("shadow model %s: loaded too late, dropped", shadow.version)
