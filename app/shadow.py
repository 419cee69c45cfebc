"""The shadow model (``SHADOW_MODEL_PATH``): a second verified artifact priced on the champion's
validated rows in a process of its own, never on the request path and never able to fail a
request.

``/predict`` hands the shadow the request's validated table once the answer is sent
(:meth:`Shadow.submit`: one ``marshal`` of the table while it is still in the CPU's cache, then
one append to a queue bounded in houses, ``SHADOW_QUEUE``, ``app/batchqueue.py``; when full
the houses are dropped and counted). A feeder thread wakes every ``Shadow.PERIOD`` seconds
(sooner when ``WAKE`` houses wait), takes everything queued and sends it in groups to the
worker process (:mod:`app.shadowworker`): one ``marshal`` of the group's encoded tables (a
list of bytes), then a pipe write that releases the interpreter. The worker prices each group
as one table and keeps the shadow's series: its prediction count and price histogram, its own
drift window (against its own training reference). A receiver thread reads the replies (a pipe
read, again without the interpreter) and records, under ``role="shadow"`` and the shadow's
``model_version``: the prices in the feedback index's :class:`Served` (so feedback by request id
scores both models), the latest series for the scrape and, with ``PREDICTION_LOG``, the
shadow's log lines. So the pricing never holds the lock the event loop needs to answer; the
server's share is one encoding of each request's rows and one unmarshalling of the prices per
group (docs/PERFORMANCE.md).

Houses count against the queue until their reply is read, so a slow or stopped worker fills
the queue and the rest is dropped and counted (``queue_full``). A failure of the model is
counted (``model_error``, ``non_finite``) and logged. A worker that exits is logged in one
line and started again by the receiver thread after a backoff (``Shadow.BACKOFF`` seconds,
doubling at each failed start up to ``BACKOFF_MAX``), its counters going on from the last
series it sent; every restart is counted (``houseprice_shadow_restarts_total``) and the houses
submitted meanwhile are counted as ``model_error``. The worker runs ``SHADOW_NICE`` below the
server, so under load the served answers get the cores and the shadow drops rather than
delays them. The champion never sees any of it. The worker ends when its input pipe closes: at
:meth:`Shadow.close`, or when the server exits or dies.

The shadow must validate no feature the champion does not: it prices the champion's rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pickle
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, NamedTuple

from prometheus_client import Counter

import app
from app.batchqueue import BatchQueue
from app.metrics import PRICE_BUCKETS, DriftRows, Histogram
from app.predlog import Entry, PredictionLog
from app.settings import Settings
from app.shadowworker import Reply, Start, Stats, decode_reply, encode, encode_group
from app.state import LoadedModel, ModelLoadError, ReloadConflictError, Service, Table, load_model
from app.traffic import Served

log = logging.getLogger("houseprice")


class ShadowSeries(NamedTuple):
    """What the shadow adds to the prediction and drift families at scrape time."""

    version: str
    predictions: int
    price: Histogram
    drift: DriftRows | None


class _Job(NamedTuple):
    time: float
    request_id: str
    table: Table
    served: Served | None
    blob: bytes  # the table as the worker reads it (app.shadowworker.encode)


def groups(batch: list[tuple[_Job, int]], size: int) -> Iterator[tuple[list[_Job], int]]:
    """The jobs of ``batch`` in consecutive groups of about ``size`` houses (a larger request
    is a group of its own), each with its house count."""
    group: list[_Job] = []
    n = 0
    for job, k in batch:
        if group and n + k > size:
            yield group, n
            group, n = [], 0
        group.append(job)
        n += k
    if group:
        yield group, n


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
    """A loaded shadow model, its queue, its worker process and the two threads that talk to it."""

    #: The feeder wakes when this many houses wait, or ``PERIOD`` seconds after the first:
    #: fewer, larger messages, and fewer thread switches against the event loop (each wake
    #: and message costs the server's threads more than a house does: docs/PERFORMANCE.md).
    WAKE = 512
    PERIOD = 0.2
    #: Houses in one message: framing it holds the interpreter lock, so it is kept short
    #: enough that a waiting request is not held back long by it.
    GROUP = 256
    #: Seconds before the first restart of a worker that exited, doubling at each failed
    #: start up to ``BACKOFF_MAX``.
    BACKOFF = 1.0
    BACKOFF_MAX = 60.0

    def __init__(
        self,
        model: LoadedModel,
        settings: Settings,
        dropped: Counter,
        predlog: PredictionLog | None,
        monitoring: bool,
        restarts: Counter,
    ) -> None:
        self.model = model
        self.capacity = settings.shadow_queue
        self.dropped = dropped
        self.predlog = predlog
        self.monitoring = monitoring
        start = Start(
            model.pipeline, model.metadata, model.sha256, model.path, settings, monitoring
        )
        self.restarts = restarts
        self._start = start
        self._timeout = settings.reload_timeout
        self._proc, self._send, self._receive = start_worker(start, self._timeout)
        self._started_at = time.monotonic()
        self.queue: BatchQueue[_Job] = BatchQueue(self.capacity, self.WAKE, self.PERIOD)
        # the in-flight groups, whether the worker is lost, the worker's process and pipes
        self._lock = threading.Lock()
        self._in_flight: deque[tuple[list[_Job], int]] = deque()
        self._lost = False
        self._closing = False
        self._stop = threading.Event()  # set by close(): no more restarts, end a backoff
        self._stats: Stats | None = None
        self._drift_stale = False  # the worker has rows not yet in the drift rows it sent
        self._drift: DriftRows | None = None
        self._feeder = threading.Thread(target=self._feed, name="shadow-feeder", daemon=True)
        self._receiver = threading.Thread(
            target=self._receive_replies, name="shadow-receiver", daemon=True
        )
        self._feeder.start()
        self._receiver.start()

    @property
    def version(self) -> str:
        return self.model.version

    @property
    def pid(self) -> int:
        """The worker process's id."""
        return self._proc.pid

    def submit(self, when: float, rid: str, table: Table, served: Served | None) -> None:
        """Queue a request's validated table (encoded, and by reference for the log), or drop
        and count it (not encoded for nothing when the queue is full)."""
        n = len(next(iter(table.values())))
        job = None if self.queue.free < n else _Job(when, rid, table, served, encode(table))
        if job is None or not self.queue.put(job, n):
            self.dropped.labels("queue_full").inc(n)

    def _feed(self) -> None:
        current: Connection | None = None  # the pipe last written to, closed once replaced
        try:
            while (batch := self.queue.take()) is not None:
                if self.queue.closing:
                    return  # what is left is not priced: the shadow is only an experiment
                for group, n in groups(batch, self.GROUP):
                    message = encode_group([j.blob for j in group])
                    with self._lock:
                        lost, send = self._lost, self._send
                        if not lost:
                            self._in_flight.append((group, n))
                    if lost:
                        self._forget(n, "model_error")
                        continue
                    if send is not current:  # a restarted worker: the old pipe is done with
                        if current is not None:
                            current.close()
                        current = send
                    # a worker gone (OSError): the receiver counts what was in flight
                    with contextlib.suppress(OSError):
                        send.send_bytes(message)
        finally:
            with self._lock:  # closing is set: no restart replaces the pipe from now on
                self._send.close()  # the worker's end of input: it exits
            if current is not None:
                current.close()

    def _receive_replies(self) -> None:
        """Read the worker's replies; when its output ends (it exited or was killed), restart
        it after a backoff that doubles from ``BACKOFF`` up to ``BACKOFF_MAX`` seconds and
        starts over once a worker has lived ``BACKOFF_MAX`` seconds. Houses submitted
        meanwhile are dropped and counted (``model_error``); requests never wait for it."""
        backoff: float | None = None
        while True:
            code = self._read_replies()
            if self._stop.is_set():
                return
            if backoff is None or time.monotonic() - self._started_at >= self.BACKOFF_MAX:
                backoff = self.BACKOFF  # a first exit, or it had been working: not a crash loop
            log.error(
                "shadow model %s: its process exited (code %s); restarting it in %g s, "
                "houses are dropped until then",
                self.version,
                code,
                backoff,
            )
            while True:
                if self._stop.wait(backoff):
                    return
                backoff = min(2 * backoff, self.BACKOFF_MAX)
                why = self._restart()
                if why is None:
                    break
                log.error(
                    "shadow model %s: restarting its process failed (%s); next try in %g s",
                    self.version,
                    why,
                    backoff,
                )
            if self._stop.is_set():
                return

    def _restart(self) -> str | None:
        """Start a new worker with the series so far and put it in place of the lost one;
        why it could not start, or None."""
        start = self._start._replace(stats=self._stats)  # its counters go on from these
        try:
            proc, send, receive = start_worker(start, self._timeout)
        except Exception as e:
            return f"{type(e).__name__}: {e}"
        with self._lock:
            closing = self._closing
            if not closing:
                old = self._receive
                self._proc, self._send, self._receive = proc, send, receive
                self._lost = False
                self._started_at = time.monotonic()
        if closing:
            stop_worker(proc, send, receive)
            return None
        old.close()
        self.restarts.inc()
        return None

    def _read_replies(self) -> int | None:
        """Record the current worker's replies until its output ends; count what was in flight
        as dropped; the worker's exit code (None: still running after 5 s)."""
        receive, proc = self._receive, self._proc
        while True:
            try:
                reply = decode_reply(receive.recv_bytes())
            except (EOFError, OSError):
                break
            except Exception:  # a reply this side cannot read: the worker is of no more use
                log.exception("shadow model %s: unreadable reply", self.version)
                proc.kill()
                break
            if isinstance(reply, Stats):  # the drift rows, read once the traffic paused
                self._take(reply)
                continue
            with self._lock:
                group, n = self._in_flight.popleft()
            try:
                self._record(group, reply)
            except Exception:  # a bug here must not stop the replies from being read
                log.exception("recording the shadow's prices failed")
            self.queue.done(n)
        with self._lock:
            self._lost = True
            lost = sum(n for _, n in self._in_flight)
            self._in_flight.clear()
        self._drift_stale = False  # no more rows will be read
        if lost:
            self._forget(lost, "model_error")
        try:  # its output ended: it is exiting
            return proc.wait(5)
        except subprocess.TimeoutExpired:
            return None

    def _forget(self, n: int, reason: str) -> None:
        self.dropped.labels(reason).inc(n)
        self.queue.done(n)

    def _record(self, group: list[_Job], reply: Reply) -> None:
        for reason, k in reply.dropped.items():
            self.dropped.labels(reason).inc(k)
        if reply.error is not None:
            log.error("shadow model %s failed: %s", self.version, reply.error)
        if reply.stats is not None:
            self._take(reply.stats)
        for job, mine in zip(group, reply.prices, strict=True):
            if mine is None:
                continue
            if job.served is not None:
                job.served.shadow_prices = mine
                job.served.shadow_version = self.version
            if self.predlog is not None:
                self.predlog.put(
                    Entry(job.time, job.request_id, self.version, "shadow", job.table, mine, None)
                )

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
        return self.queue.held == 0 and not self._drift_stale

    def describe(self) -> dict[str, Any]:
        """The shadow's entry in ``GET /model``."""
        meta = {k: v for k, v in self.model.metadata.items() if k != "reference"}
        meta["artifact"] = {"sha256": self.model.sha256, "loaded_at": self.model.loaded_at}
        return meta

    def close(self, timeout: float = 5.0) -> None:
        """Stop the feeder and the worker process; what is queued is not priced (the shadow
        is only an experiment). A worker still busy after ``timeout`` seconds is killed."""
        with self._lock:
            self._closing = True
        self._stop.set()
        self.queue.close()
        self._feeder.join(timeout)
        if self._feeder.is_alive():  # stuck writing to a worker that no longer reads
            self._proc.kill()
            self._feeder.join()
        try:
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._receiver.join()  # the worker is gone: its replies end (a restart is undone)
        self._receive.close()


def load_shadow(service: Service, path: str) -> Shadow:
    """Load, verify and warm ``path`` as a shadow of the serving champion (not installed).

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
    )


def install(service: Service, shadow: Shadow | None) -> Shadow | None:
    """Make ``shadow`` (or none) the service's shadow; stop and return the previous one."""
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
        old.close()
        log.info("shadow model dropped", extra={"model_version": old.version})
    return old


def load_initial(service: Service) -> None:
    """Start-up: the shadow of ``SHADOW_MODEL_PATH``, if set. A shadow that cannot load is
    logged and left out; the champion serves regardless."""
    path = service.settings.shadow_model_path
    if path is None:
        return
    try:
        install(service, load_shadow(service, path))
    except Exception as e:
        log.error("shadow model not loaded, serving without it: %s", e)


async def reload(service: Service, path: str | None) -> tuple[Shadow | None, Shadow | None]:
    """Load ``path`` as the shadow (or drop the shadow for ``None``), beside the serving
    models, under the reload lock; returns the new and the previous shadow. A failure raises
    and leaves the previous shadow in place."""
    async with service.holder.lock:
        new = None
        if path is not None:
            timeout = service.settings.reload_timeout
            try:
                new = await asyncio.wait_for(
                    asyncio.to_thread(load_shadow, service, path), timeout=timeout
                )
            except TimeoutError:
                raise ReloadConflictError(
                    f"{path}: not loaded within RELOAD_TIMEOUT ({timeout:g} s)"
                ) from None
        return new, install(service, new)
