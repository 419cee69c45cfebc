"""Prometheus metrics of the service (names: docs/ARCHITECTURE.md, "Contract 2").

Each app owns a ``CollectorRegistry`` so that several apps in one test process never collide
on the global default registry. The latency buckets start at 0.1 ms because a NumPy model
answers in tens of microseconds: the client's default buckets (5 ms and up) would put every
request in the first bucket and make p99 unreadable.

Drift gauges are not set on the request path: a custom collector asks the serving model's
drift monitor for its scores when Prometheus scrapes, so ``/predict`` only pays for the
monitor's window update.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Iterable, Iterator

import numpy as np
from numpy.typing import NDArray
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
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
)
SIZE_BUCKETS = tuple(float(4**k) for k in range(4, 13))  # 256 B ... 16 MiB
BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)
PRICE_BUCKETS = (*(float(p) for p in range(50_000, 550_001, 50_000)), 750_000.0, 1e6)

#: Requests whose HTTP and prediction observations wait, as plain tuples, to be binned together
#: by NumPy (also at every scrape): appending a tuple is all a request pays on its own path.
PENDING_MAX = 1024

#: ``(feature, score, drifted, samples)`` rows, as ``DriftMonitor.gauges()`` returns them.
DriftRows = list[tuple[str, float, bool, int]]


class DriftCollector(Collector):
    """Reads the drift gauges from the serving model's monitor at scrape time."""

    def __init__(self, source: Callable[[], tuple[str, DriftRows] | None]) -> None:
        self._source = source

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        score = GaugeMetricFamily(
            "houseprice_drift_score",
            "Drift score (PSI) of a feature or of the prediction over the live window",
            labels=["feature", "model_version"],
        )
        detected = GaugeMetricFamily(
            "houseprice_drift_detected",
            "1 when the drift score is over the threshold with enough samples",
            labels=["feature", "model_version"],
        )
        samples = GaugeMetricFamily(
            "houseprice_drift_window_samples",
            "Rows in the live drift window",
            labels=["feature", "model_version"],
        )
        got = self._source()
        if got is not None:
            version, rows = got
            for feature, value, drifted, n in rows:
                score.add_metric([feature, version], float(value))
                detected.add_metric([feature, version], 1.0 if drifted else 0.0)
                samples.add_metric([feature, version], float(n))
        yield score
        yield detected
        yield samples


class _Buckets:
    """One histogram series as plain numbers: a count per bucket (``value <= le``) and the sum."""

    __slots__ = ("bounds", "counts", "edges", "total")

    def __init__(self, bounds: list[float]) -> None:
        self.bounds = bounds
        self.edges = np.asarray(bounds, dtype=np.float64)  # searchsorted would convert a list
        self.counts = np.zeros(len(bounds) + 1, dtype=np.int64)  # the last one is +Inf
        self.total = 0.0

    def observe(self, value: float) -> None:
        """One value (a batch's size): a bisect, a tenth of the NumPy calls' cost."""
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value

    def observe_many(self, values: NDArray[np.float64]) -> None:
        """Many values in two NumPy calls. Prometheus buckets are ``value <= le``, hence
        ``side="left"``."""
        idx = np.searchsorted(self.edges, values, side="left")
        self.counts += np.bincount(idx, minlength=self.counts.shape[0])
        self.total += float(values.sum())

    def exposition(self) -> list[tuple[str, float]]:
        """Cumulative ``(le, count)`` pairs, as ``HistogramMetricFamily`` takes them."""
        running = np.cumsum(self.counts).tolist()
        les = [*map(floatToGoString, self.bounds), floatToGoString(math.inf)]
        return [(le, float(n)) for le, n in zip(les, running, strict=True)]


class HttpMetrics(Collector):
    """The metrics every HTTP request updates, kept as plain numbers and read at scrape time.

    A prometheus_client ``Counter``, ``Gauge`` or ``Histogram`` child takes a lock on every
    update, and a request made nine of them. Here a request appends one tuple; every
    ``PENDING_MAX`` requests, and at every scrape, the tuples are binned per series with
    NumPy. Every update is made on the event loop's thread (the request middleware; all
    routes are ``async``) and so is every scrape (``GET /metrics``), so no lock is needed and
    a scrape sees whole requests. The exposition is the one the client's own types would
    give, without the ``_created`` series.
    """

    def __init__(self) -> None:
        self.in_flight = 0
        self._pending: list[tuple[str, str, int, float, int, int]] = []
        self._requests: dict[tuple[str, str, str], list[int]] = {}
        self._duration: dict[tuple[str, str], _Buckets] = {}
        self._request_size: dict[str, _Buckets] = {}
        self._response_size: dict[str, _Buckets] = {}

    def observe(
        self,
        method: str,
        route: str,
        status: int,
        seconds: float,
        request_bytes: int,
        response_bytes: int,
    ) -> None:
        pending = self._pending
        pending.append((method, route, status, seconds, request_bytes, response_bytes))
        if len(pending) >= PENDING_MAX:
            self.flush()

    def flush(self) -> None:
        """Bin the pending requests: per (method, route, status), three ``observe_many``."""
        pending, self._pending = self._pending, []
        if not pending:
            return
        methods, routes, statuses, *columns = zip(*pending, strict=True)  # transposed in C
        keys = list(zip(methods, routes, statuses, strict=True))
        index = {key: i for i, key in enumerate(dict.fromkeys(keys))}
        values = np.array(columns, dtype=np.float64)  # seconds, request and response bytes
        codes = np.fromiter(map(index.__getitem__, keys), dtype=np.intp, count=len(keys))
        latency, size = list(LATENCY_BUCKETS), list(SIZE_BUCKETS)
        for (method, route, status), i in index.items():
            seconds, got, sent = values if len(index) == 1 else values[:, codes == i]
            requests = self._requests.setdefault((method, route, f"{status // 100}xx"), [0])
            requests[0] += seconds.shape[0]
            self._duration.setdefault((method, route), _Buckets(latency)).observe_many(seconds)
            self._request_size.setdefault(route, _Buckets(size)).observe_many(got)
            self._response_size.setdefault(route, _Buckets(size)).observe_many(sent)

    def _families(
        self,
    ) -> tuple[
        CounterMetricFamily,
        HistogramMetricFamily,
        GaugeMetricFamily,
        HistogramMetricFamily,
        HistogramMetricFamily,
    ]:
        return (
            CounterMetricFamily(
                "houseprice_http_requests",
                "HTTP requests by method, route template and status class",
                labels=["method", "route", "status"],
            ),
            HistogramMetricFamily(
                "houseprice_http_request_duration_seconds",
                "HTTP request latency",
                labels=["method", "route"],
            ),
            GaugeMetricFamily("houseprice_http_requests_in_flight", "HTTP requests being served"),
            HistogramMetricFamily(
                "houseprice_http_request_size_bytes", "HTTP request body size", labels=["route"]
            ),
            HistogramMetricFamily(
                "houseprice_http_response_size_bytes", "HTTP response body size", labels=["route"]
            ),
        )

    def describe(self) -> Iterable[Metric]:
        return self._families()

    def collect(self) -> Iterator[Metric]:
        self.flush()
        requests, duration, in_flight, request_size, response_size = self._families()
        for labels, count in self._requests.items():
            requests.add_metric(list(labels), count[0])
        for (method, route), h in self._duration.items():
            duration.add_metric([method, route], h.exposition(), h.total)
        in_flight.add_metric([], self.in_flight)
        for family, by_route in (
            (request_size, self._request_size),
            (response_size, self._response_size),
        ):
            for route, h in by_route.items():
                family.add_metric([route], h.exposition(), h.total)
        yield from (requests, duration, in_flight, request_size, response_size)


class PredictionMetrics(Collector):
    """Prices predicted, rows per request and the predicted prices, per model version.

    Plain numbers like :class:`HttpMetrics`, under the same rule (updated by
    ``Service.price`` and read by scrapes, on the event loop's thread only). A batch is binned
    at once; a request of one house appends ``(version, price)``, binned with the others.
    """

    def __init__(self) -> None:
        self._pending: list[tuple[str, float]] = []
        self._count: dict[str, list[float]] = {}
        self._batch_size = _Buckets([float(b) for b in BATCH_BUCKETS])
        self._price: dict[str, _Buckets] = {}

    def observe(self, model_version: str, prices: NDArray[np.float64]) -> None:
        """One served request: its prices, as the model returned them."""
        if prices.shape[0] != 1:
            self._add(model_version, prices)
            return
        pending = self._pending
        pending.append((model_version, float(prices[0])))
        if len(pending) >= PENDING_MAX:
            self.flush()

    def flush(self) -> None:
        """Bin the pending one-house requests, per model version."""
        pending, self._pending = self._pending, []
        by_version: dict[str, list[float]] = {}
        for version, price in pending:
            by_version.setdefault(version, []).append(price)
        for version, prices in by_version.items():
            self._add(version, np.array(prices, dtype=np.float64), singles=True)

    def _add(self, version: str, prices: NDArray[np.float64], singles: bool = False) -> None:
        """``prices`` of one batch request or, with ``singles``, of that many one-house ones."""
        count = self._count.get(version)
        if count is None:
            count = self._count[version] = [0.0]
            self._price[version] = _Buckets(list(PRICE_BUCKETS))
        n = prices.shape[0]
        count[0] += n
        if singles:  # n requests of one row
            self._batch_size.observe_many(np.ones(n))
        else:
            self._batch_size.observe(n)
        self._price[version].observe_many(prices)

    def _families(self) -> tuple[CounterMetricFamily, HistogramMetricFamily, HistogramMetricFamily]:
        return (
            CounterMetricFamily(
                "houseprice_predictions", "Prices predicted", labels=["model_version"]
            ),
            HistogramMetricFamily(
                "houseprice_prediction_batch_size", "Rows per prediction request"
            ),
            HistogramMetricFamily(
                "houseprice_predicted_price_dollars", "Predicted prices", labels=["model_version"]
            ),
        )

    def describe(self) -> Iterable[Metric]:
        return self._families()

    def collect(self) -> Iterator[Metric]:
        self.flush()
        count, batch_size, price = self._families()
        for version, n in self._count.items():
            count.add_metric([version], n[0])
        b = self._batch_size
        batch_size.add_metric([], b.exposition(), b.total)
        for version, h in self._price.items():
            price.add_metric([version], h.exposition(), h.total)
        yield from (count, batch_size, price)


class Metrics:
    """Every metric of Contract 2, registered in the app's own registry."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        self.http = HttpMetrics()
        r.register(self.http)
        self.prediction = PredictionMetrics()
        r.register(self.prediction)
        self.prediction_errors = Counter(
            "houseprice_prediction_errors",
            "Prediction requests refused or failed, by reason",
            ["reason"],
            registry=r,
        )
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
        self.input_missing = Counter(
            "houseprice_input_missing",
            "Missing values imputed, by feature",
            ["feature"],
            registry=r,
        )
        self.input_out_of_range = Counter(
            "houseprice_input_out_of_range",
            "Values outside the training range, by feature",
            ["feature"],
            registry=r,
        )
        self.input_unknown_category = Counter(
            "houseprice_input_unknown_category",
            "Categories never seen in training, by feature",
            ["feature"],
            registry=r,
        )
        self.feedback = Counter(
            "houseprice_feedback", "Observed prices received", ["model_version"], registry=r
        )
        # Summaries, not counters: a Summary exposes exactly ``<name>_sum`` (and ``_count``),
        # the names of the contract, where a Counter would append ``_total``.
        self.feedback_abs_error = Summary(
            "houseprice_feedback_abs_error_dollars",
            "|actual - predicted| over feedback; rate(_sum)/rate(houseprice_feedback_total) = MAE",
            ["model_version"],
            registry=r,
        )
        self.feedback_squared_error = Summary(
            "houseprice_feedback_squared_error_dollars",
            "(actual - predicted)^2 over feedback; sqrt(rate(_sum)/rate(feedback)) = RMSE",
            ["model_version"],
            registry=r,
        )
        for result in ("success", "failure"):
            self.model_loads.labels(result)
        self.model_ready.set(0)

    def add_drift_source(self, source: Callable[[], tuple[str, DriftRows] | None]) -> None:
        self.registry.register(DriftCollector(source))

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

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
