"""Prometheus metrics of the service (names: docs/ARCHITECTURE.md, "Contract 2").

What a request updates (HTTP, predictions, input quality, refusals) is kept as plain numbers
in one collector, :class:`RequestMetrics`, under one lock, and turned into metric families
when Prometheus scrapes; a prometheus_client child would take a lock per update, nine times a
request. The drift gauges are read from the serving model's monitor at scrape time too. What
changes rarely (model loads, feedback) uses prometheus_client's own types. Each app owns a
``CollectorRegistry``, so several apps in one process never collide.

The latency buckets start well below a millisecond because a NumPy model answers in tens of
microseconds, and the top bucket covers the body deadline, the longest a request can
legitimately take.
"""

from __future__ import annotations

import math
import threading
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Protocol

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Summary,
    generate_latest,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

LATENCY_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0,
)  # fmt: skip
SIZE_BUCKETS = tuple(float(4**k) for k in range(4, 13))  # 256 B ... 16 MiB
BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)
PRICE_BUCKETS = (*(float(p) for p in range(50_000, 550_001, 50_000)), 750_000.0, 1e6)

#: The methods that get their own label value; any other folds into ``"other"``, so a client
#: cannot multiply the series by inventing methods.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

#: ``(feature, score, drifted, samples)`` rows, as ``DriftMonitor.gauges()`` returns them.
DriftRows = list[tuple[str, float, bool, int]]


class RoleSeries(Protocol):
    """A second model's series in the prediction and drift families (``app/shadow.py``)."""

    @property
    def version(self) -> str: ...
    @property
    def predictions(self) -> int: ...
    @property
    def price(self) -> Histogram: ...
    @property
    def drift(self) -> DriftRows | None: ...


def _add(counts: dict[str, int], new: Mapping[str, int]) -> None:
    for name, n in new.items():
        counts[name] = counts.get(name, 0) + n


def latency_buckets(longest: float) -> tuple[float, ...]:
    """:data:`LATENCY_BUCKETS`, with ``longest`` (seconds) added when it is past the top one."""
    return LATENCY_BUCKETS if longest <= LATENCY_BUCKETS[-1] else (*LATENCY_BUCKETS, longest)


class Histogram:
    """One histogram series: a count per bucket (``value <= bound``, then +Inf) and the sum."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: Iterable[float]) -> None:
        self.bounds = [float(b) for b in bounds]
        self.counts = [0] * (len(self.bounds) + 1)
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1  # le is inclusive: bisect_left
        self.total += value

    def observe_many(self, values: Sequence[float]) -> None:
        """Many values: a few bisected one by one; more sorted once, then one bisect per bound
        rather than one per value."""
        bounds, counts = self.bounds, self.counts
        if len(values) <= len(bounds):
            total = self.total
            for v in values:
                counts[bisect_left(bounds, v)] += 1
                total += v
            self.total = total
            return
        ordered = sorted(values)
        below = 0
        for i, bound in enumerate(bounds):
            upto = bisect_right(ordered, bound)  # values <= bound
            counts[i] += upto - below
            below = upto
        counts[-1] += len(ordered) - below
        self.total += sum(values)

    def buckets(self) -> list[tuple[str, float]]:
        """Cumulative ``(le, count)`` pairs, as ``HistogramMetricFamily`` takes them."""
        les = [*map(floatToGoString, self.bounds), floatToGoString(math.inf)]
        running, out = 0, []
        for le, n in zip(les, self.counts, strict=True):
            running += n
            out.append((le, float(running)))
        return out


class _Route:
    """What one request of a (method, route) updates: its count per status class, its
    latency and the route's body sizes; looked up once per request."""

    __slots__ = ("duration", "request_size", "response_size", "statuses")

    def __init__(self, duration: Histogram, request_size: Histogram, response_size: Histogram):
        self.statuses: dict[int, int] = {}  # by status code, added up per class at scrape
        self.duration = duration
        self.request_size = request_size
        self.response_size = response_size


class _Version:
    """What a served prediction updates for one model version: the count and the prices."""

    __slots__ = ("count", "prices")

    def __init__(self) -> None:
        self.count = 0
        self.prices = Histogram(PRICE_BUCKETS)


class RequestMetrics(Collector):
    """Every metric a request updates, as plain numbers under one lock; exposed at scrape.

    A request's numbers are counted at once, each into its bucket: what a request leaves
    behind is a few integers incremented in place, nothing for the cyclic collector to scan
    and no object kept alive. Input quality, rarely non-zero, is added per feature.
    """

    def __init__(self, body_timeout: float = LATENCY_BUCKETS[-1]) -> None:
        self._lock = threading.Lock()
        self._latency = latency_buckets(body_timeout)
        self.in_flight = 0
        self._routes: dict[tuple[str, str], _Route] = {}
        self._sizes: dict[str, tuple[Histogram, Histogram]] = {}  # request, response by route
        self._versions: dict[str, _Version] = {}
        self._batch_size = Histogram(BATCH_BUCKETS)
        self._errors: dict[str, int] = {}
        self._missing: dict[str, int] = {}
        self._out_of_range: dict[str, int] = {}
        self._unknown: dict[str, int] = {}
        self._drift: Callable[[], tuple[str, DriftRows] | None] = lambda: None
        self._shadow: Callable[[], RoleSeries | None] = lambda: None

    def observe_request(
        self, method: str, route: str, status: int, seconds: float, got: int, sent: int
    ) -> None:
        """One finished HTTP request, counted at once."""
        if method not in METHODS:
            method = "other"
        lock = self._lock
        lock.acquire()  # not ``with``: the statement costs twice the two calls on every request
        try:
            series = self._routes.get((method, route)) or self._add_route(method, route)
            statuses = series.statuses
            statuses[status] = statuses.get(status, 0) + 1
            series.duration.observe(seconds)
            series.request_size.observe(got)
            series.response_size.observe(sent)
        finally:
            lock.release()

    def observe_prediction(
        self,
        version: str,
        prices: list[float],
        missing: Mapping[str, int],
        out_of_range: Mapping[str, int],
        unknown: Mapping[str, int],
    ) -> None:
        """One served prediction request: its prices and what its input quality counted."""
        lock = self._lock
        lock.acquire()
        try:
            served = self._versions.get(version) or self._add_version(version)
            served.count += len(prices)
            served.prices.observe_many(prices)
            self._batch_size.observe(len(prices))
            if missing:
                _add(self._missing, missing)
            if out_of_range:
                _add(self._out_of_range, out_of_range)
            if unknown:
                _add(self._unknown, unknown)
        finally:
            lock.release()

    def _add_version(self, version: str) -> _Version:
        served = self._versions[version] = _Version()
        return served

    def _add_route(self, method: str, route: str) -> _Route:
        sizes = self._sizes.get(route)
        if sizes is None:
            sizes = self._sizes[route] = (Histogram(SIZE_BUCKETS), Histogram(SIZE_BUCKETS))
        series = self._routes[method, route] = _Route(Histogram(self._latency), *sizes)
        return series

    def count_error(self, reason: str) -> None:
        """A prediction request refused or failed (``reason`` is one of a fixed set)."""
        with self._lock:
            self._errors[reason] = self._errors.get(reason, 0) + 1

    def read_drift_from(self, source: Callable[[], tuple[str, DriftRows] | None]) -> None:
        """``source()`` gives the serving model's version and drift rows, or ``None``."""
        self._drift = source

    def read_shadow_from(self, source: Callable[[], RoleSeries | None]) -> None:
        """``source()`` gives the shadow model's series (``role="shadow"``), or ``None``."""
        self._shadow = source

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        shadow = self._shadow()
        with self._lock:
            families = self._families(shadow)
        yield from families
        yield from self._drift_families(shadow)

    def _families(self, shadow: RoleSeries | None = None) -> list[Metric]:
        requests = CounterMetricFamily(
            "houseprice_http_requests",
            "HTTP requests by method, route template and status class",
            labels=["method", "route", "status"],
        )
        duration = HistogramMetricFamily(
            "houseprice_http_request_duration_seconds",
            "HTTP request latency",
            labels=["method", "route"],
        )
        for (method, route), series in self._routes.items():
            by_class: dict[str, int] = {}
            for status, n in series.statuses.items():
                label = f"{status // 100}xx"
                by_class[label] = by_class.get(label, 0) + n
            for label, n in by_class.items():
                requests.add_metric([method, route, label], n)
            h = series.duration
            duration.add_metric([method, route], h.buckets(), h.total)
        in_flight = GaugeMetricFamily(
            "houseprice_http_requests_in_flight", "HTTP requests being served", self.in_flight
        )
        sizes = []
        for i, kind in enumerate(("request", "response")):
            family = HistogramMetricFamily(
                f"houseprice_http_{kind}_size_bytes", f"HTTP {kind} body size", labels=["route"]
            )
            for route, pair in self._sizes.items():
                family.add_metric([route], pair[i].buckets(), pair[i].total)
            sizes.append(family)
        predictions = CounterMetricFamily(
            "houseprice_predictions", "Prices predicted", labels=["model_version", "role"]
        )
        for version, served in self._versions.items():
            predictions.add_metric([version, "champion"], served.count)
        batch = HistogramMetricFamily(
            "houseprice_prediction_batch_size", "Rows per prediction request"
        )
        batch.add_metric([], self._batch_size.buckets(), self._batch_size.total)
        price = HistogramMetricFamily(
            "houseprice_predicted_price_dollars",
            "Predicted prices",
            labels=["model_version", "role"],
        )
        for version, served in self._versions.items():
            price.add_metric([version, "champion"], served.prices.buckets(), served.prices.total)
        if shadow is not None:
            predictions.add_metric([shadow.version, "shadow"], shadow.predictions)
            price.add_metric([shadow.version, "shadow"], shadow.price.buckets(), shadow.price.total)
        counters = [
            _counter(name, text, label, values)
            for name, text, label, values in (
                (
                    "houseprice_prediction_errors",
                    "Prediction requests refused or failed, by reason",
                    "reason",
                    self._errors,
                ),
                (
                    "houseprice_input_missing",
                    "Missing values imputed, by feature",
                    "feature",
                    self._missing,
                ),
                (
                    "houseprice_input_out_of_range",
                    "Values outside the training range, by feature",
                    "feature",
                    self._out_of_range,
                ),
                (
                    "houseprice_input_unknown_category",
                    "Categories never seen in training, by feature",
                    "feature",
                    self._unknown,
                ),
            )
        ]
        return [requests, duration, in_flight, *sizes, predictions, batch, price, *counters]

    def _drift_families(self, shadow: RoleSeries | None = None) -> Iterator[Metric]:
        labels = ["feature", "model_version", "role"]
        score = GaugeMetricFamily(
            "houseprice_drift_score",
            "Drift score (PSI) of a feature or of the prediction over the live window",
            labels=labels,
        )
        detected = GaugeMetricFamily(
            "houseprice_drift_detected",
            "1 when the drift score is over the threshold with enough samples",
            labels=labels,
        )
        samples = GaugeMetricFamily(
            "houseprice_drift_window_samples", "Rows in the live drift window", labels=labels
        )
        got = self._drift()
        sources = [(*got, "champion")] if got is not None else []
        if shadow is not None and shadow.drift is not None:
            sources.append((shadow.version, shadow.drift, "shadow"))
        for version, rows, role in sources:
            for feature, value, drifted, n in rows:
                score.add_metric([feature, version, role], float(value))
                detected.add_metric([feature, version, role], 1.0 if drifted else 0.0)
                samples.add_metric([feature, version, role], float(n))
        yield from (score, detected, samples)


def _counter(name: str, text: str, label: str, values: Mapping[str, int]) -> Metric:
    family = CounterMetricFamily(name, text, labels=[label])
    for value, n in values.items():
        family.add_metric([value], n)
    return family


class Metrics:
    """Every metric of Contract 2, registered in the app's own registry."""

    def __init__(self, body_timeout: float = LATENCY_BUCKETS[-1]) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        self.requests = RequestMetrics(body_timeout)
        r.register(self.requests)
        self.model_info = Gauge(
            "houseprice_model_info",
            "The serving model (always 1)",
            ["model_version", "sha256"],
            registry=r,
        )
        self.model_loads = Counter(
            "houseprice_model_loads", "Model loads and reloads", ["result"], registry=r
        )
        self.model_last_load = Gauge(
            "houseprice_model_last_load_timestamp_seconds",
            "Unix time of the last successful model load",
            registry=r,
        )
        self.model_ready = Gauge(
            "houseprice_model_ready", "1 while a verified model is serving", registry=r
        )
        self.model_test_rmse = Gauge(
            "houseprice_model_test_rmse_dollars",
            "Test RMSE recorded in the artifact by training",
            ["model_version"],
            registry=r,
        )
        self.drift_threshold = Gauge(
            "houseprice_drift_threshold",
            "PSI over which a feature's drift is reported (DRIFT_PSI_THRESHOLD)",
            registry=r,
        )
        self.feedback = Counter(
            "houseprice_feedback", "Observed prices received", ["model_version", "role"], registry=r
        )
        # Summaries, not counters: a Summary exposes exactly ``<name>_sum`` (and ``_count``),
        # the names of the contract, where a Counter would append ``_total``.
        self.feedback_abs_error = Summary(
            "houseprice_feedback_abs_error_dollars",
            "|actual - predicted| over feedback; rate(_sum)/rate(houseprice_feedback_total) = MAE",
            ["model_version", "role"],
            registry=r,
        )
        self.feedback_squared_error = Summary(
            "houseprice_feedback_squared_error_dollars",
            "(actual - predicted)^2 over feedback; sqrt(rate(_sum)/rate(feedback)) = RMSE",
            ["model_version", "role"],
            registry=r,
        )
        for result in ("success", "failure"):
            self.model_loads.labels(result)
        self.model_ready.set(0)

    def set_model(self, version: str, sha256: str, test_rmse: float | None, when: float) -> None:
        """A model was (re)loaded: one ``model_info`` series, the new version's RMSE."""
        self.model_info.clear()
        self.model_info.labels(version, sha256).set(1)
        self.model_test_rmse.clear()
        if test_rmse is not None:
            self.model_test_rmse.labels(version).set(test_rmse)
        self.model_loads.labels("success").inc()
        self.model_last_load.set(when)
        self.model_ready.set(1)

    def observe_feedback(self, version: str, role: str, error: float) -> float:
        """One observed price for a model's prediction, ``error = actual - predicted``."""
        self.feedback.labels(version, role).inc()
        self.feedback_abs_error.labels(version, role).observe(abs(error))
        self.feedback_squared_error.labels(version, role).observe(error * error)
        return error

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
