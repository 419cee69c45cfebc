"""The shadow model (``SHADOW_MODEL_PATH``): a second verified artifact priced on the champion's
validated rows in a worker thread, never on the request path and never able to fail a request.

``/predict`` hands the shadow a reference to the request's validated table
(:meth:`Shadow.submit`, one append to a queue bounded in houses, ``SHADOW_QUEUE``,
``app/batchqueue.py``; when full the houses are dropped and counted). The worker wakes every
``Shadow.PERIOD`` seconds (sooner when ``WAKE`` houses wait), takes everything queued and prices
it as one table — the pipeline's NumPy on many rows costs a fraction of as many small calls, so
the thread holds the interpreter as briefly as it can — then records, under ``role="shadow"``
and the shadow's ``model_version``: the prediction counter and price histogram, its own drift
window (against its own training reference), the prices in the feedback index (so feedback by
request id scores both models) and, with ``PREDICTION_LOG``, its log lines. A failure of the
shadow is counted and logged, and the champion never sees it.

The shadow must validate no feature the champion does not: it prices the champion's rows.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

from prometheus_client import Counter

from app.batchqueue import BatchQueue
from app.metrics import PRICE_BUCKETS, DriftRows, Histogram
from app.predlog import Entry, PredictionLog
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


class Shadow:
    """A loaded shadow model, its queue, its worker thread and its series."""

    #: The worker wakes when this many houses wait, or ``PERIOD`` seconds after the first:
    #: fewer, larger tables (the pipeline's NumPy is cheaper per row on many) and fewer
    #: thread switches against the event loop.
    WAKE = 256
    PERIOD = 0.05
    #: Houses priced in one pipeline call: large enough for NumPy's per-call cost to spread
    #: thin, small enough that the call holds the interpreter only briefly (docs/PERFORMANCE.md).
    GROUP = 64

    def __init__(
        self,
        model: LoadedModel,
        capacity: int,
        dropped: Counter,
        predlog: PredictionLog | None,
        monitoring: bool,
    ) -> None:
        self.model = model
        self.capacity = capacity
        self.dropped = dropped
        self.predlog = predlog
        self.monitoring = monitoring
        self.queue: BatchQueue[_Job] = BatchQueue(capacity, self.WAKE, self.PERIOD)
        self._stats_lock = threading.Lock()
        self._predictions = 0
        self._price = Histogram(PRICE_BUCKETS)
        self._thread = threading.Thread(target=self._run, name="shadow-model", daemon=True)
        self._thread.start()

    @property
    def version(self) -> str:
        return self.model.version

    def submit(self, when: float, rid: str, table: Table, served: Served | None) -> None:
        """Queue a request's validated table (by reference), or drop and count it."""
        n = len(next(iter(table.values())))
        if not self.queue.put(_Job(when, rid, table, served), n):
            self.dropped.labels("queue_full").inc(n)

    def _run(self) -> None:
        while (batch := self.queue.take()) is not None:
            if self.queue.closing:
                return  # what is left is not priced: the shadow is only an experiment
            if not batch:
                continue
            for group, n in groups(batch, self.GROUP):
                try:
                    self._price_jobs(group)
                except Exception:  # the worker must survive anything the model does
                    self.dropped.labels("model_error").inc(n)
                    log.exception("shadow model %s failed", self.version)
                self.queue.done(n)
                time.sleep(0)  # releases the GIL between groups: a waiting request goes first

    def _price_jobs(self, jobs: list[_Job]) -> None:
        names = [s.name for s in self.model.features]
        usable = [j for j in jobs if all(name in j.table for name in names)]
        if len(usable) < len(jobs):  # a champion reloaded since with fewer features
            n_all = sum(len(next(iter(j.table.values()))) for j in jobs)
            n_usable = sum(len(next(iter(j.table.values()))) for j in usable)
            self.dropped.labels("incompatible").inc(n_all - n_usable)
            jobs = usable
            if not jobs:
                return
        table: Table = {name: tuple(v for j in jobs for v in j.table[name]) for name in names}
        prices = self.model.predict(table)
        n = len(prices)
        if not all(map(math.isfinite, prices)):
            self.dropped.labels("non_finite").inc(n)
            log.error("shadow model %s returned a non-finite price", self.version)
            return
        if self.monitoring:
            with self._stats_lock:
                self._predictions += n
                self._price.observe_many(prices)
            if self.model.monitor is not None:
                self.model.monitor.update(table, prices)
        start = 0
        for job in jobs:
            k = len(next(iter(job.table.values())))
            mine: Sequence[float] = prices[start : start + k]
            start += k
            if job.served is not None:
                job.served.shadow_prices = mine
                job.served.shadow_version = self.version
            if self.predlog is not None:
                self.predlog.put(
                    Entry(job.time, job.request_id, self.version, "shadow", job.table, mine, None)
                )

    def series(self) -> ShadowSeries | None:
        """The shadow's prediction count, price histogram and drift rows, for the scrape."""
        if not self.monitoring:
            return None
        with self._stats_lock:
            price = Histogram(PRICE_BUCKETS)
            price.counts = list(self._price.counts)
            price.total = self._price.total
            count = self._predictions
        monitor = self.model.monitor
        return ShadowSeries(self.version, count, price, monitor.gauges() if monitor else None)

    def idle(self) -> bool:
        """Nothing queued or being priced (tests and the benchmark wait for it)."""
        return self.queue.held == 0

    def describe(self) -> dict[str, Any]:
        """The shadow's entry in ``GET /model``."""
        meta = {k: v for k, v in self.model.metadata.items() if k != "reference"}
        meta["artifact"] = {"sha256": self.model.sha256, "loaded_at": self.model.loaded_at}
        return meta

    def close(self, timeout: float = 5.0) -> None:
        """Stop the worker; what is queued is not priced (the shadow is only an experiment)."""
        self.queue.close()
        self._thread.join(timeout)


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
        service.settings.shadow_queue,
        traffic.shadow_dropped,
        traffic.log,
        service.monitoring,
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
