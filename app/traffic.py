"""What happens to a served answer after it is priced: the prediction log, the feedback index
and the shadow model. ``/predict`` and V2 ``infer`` hand each 200 answer to the one hook,
:meth:`Traffic.served`; each part costs the request path one queue append or dict insert, and
nothing when off.

The feedback index remembers the prices of the most recent houses (``FEEDBACK_INDEX_SIZE``
houses, oldest requests evicted first; 0 turns it off) by request id, so ``POST /feedback``
can take ``{"request_id", "actual_price"}`` alone. A batch answer is one request id for all
its houses: feedback names the house by its position in ``instances`` with ``index`` (0 for a
single house). A request id sent again by a client (``X-Request-Id``) replaces the older entry.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge

from app.predlog import Entry, LogCounters, PredictionLog, open_sink
from app.settings import Settings

log = logging.getLogger("houseprice")

if TYPE_CHECKING:
    from app.shadow import Shadow
    from app.state import LoadedModel, Priced


class Served:
    """A request's answer as the feedback index keeps it; the shadow fills in its prices."""

    __slots__ = ("model_version", "prices", "shadow_prices", "shadow_version")

    def __init__(self, model_version: str, prices: Sequence[float]) -> None:
        self.model_version = model_version
        self.prices = prices
        self.shadow_version: str | None = None
        self.shadow_prices: Sequence[float] | None = None


class FeedbackIndex:
    """Request id -> :class:`Served`, bounded in houses; used from the event loop only."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[str, Served] = OrderedDict()
        self._houses = 0

    def __len__(self) -> int:
        return self._houses

    def add(self, rid: str, served: Served) -> bool:
        """Remember ``served``; False (and nothing kept) for a request larger than the index."""
        n = len(served.prices)
        if n > self.capacity:
            return False
        old = self._entries.pop(rid, None)
        if old is not None:
            self._houses -= len(old.prices)
        self._entries[rid] = served
        self._houses += n
        while self._houses > self.capacity:
            _, evicted = self._entries.popitem(last=False)
            self._houses -= len(evicted.prices)
        return True

    def get(self, rid: str) -> Served | None:
        return self._entries.get(rid)


class Traffic:
    """The prediction log, the feedback index and the shadow of one service."""

    def __init__(self, settings: Settings, registry: CollectorRegistry | None) -> None:
        self.settings = settings
        self.log: PredictionLog | None = None
        self.log_counters = LogCounters(registry) if settings.prediction_log else None
        size = settings.feedback_index_size
        self.index: FeedbackIndex | None = FeedbackIndex(size) if size else None
        self.shadow: Shadow | None = None
        self.shadow_dropped = Counter(
            "houseprice_shadow_dropped",
            "Houses the shadow model did not price: queue full, model error, non-finite price, "
            "or a champion without a feature the shadow needs",
            ["reason"],
            registry=registry,
        )
        for reason in ("queue_full", "model_error", "non_finite", "incompatible"):
            self.shadow_dropped.labels(reason)
        self.shadow_restarts = Counter(
            "houseprice_shadow_restarts",
            "Times the shadow model's worker process exited and was started again",
            registry=registry,
        )
        self.shadow_info = Gauge(
            "houseprice_shadow_model_info",
            "The shadow model, while one is loaded (always 1)",
            ["model_version", "sha256"],
            registry=registry,
        )

    def start(self) -> None:
        """Open the prediction log (at each start-up of the app)."""
        s = self.settings
        if s.prediction_log is not None and self.log_counters is not None and self.log is None:
            sink = open_sink(s.prediction_log, s.prediction_log_max_bytes, s.prediction_log_backups)
            self.log = PredictionLog(sink, s.prediction_log_queue, self.log_counters)

    def served(self, model: LoadedModel, priced: Priced, rid: str) -> None:
        """Record a 200 answer of ``/predict`` or V2 ``infer``: index it, queue its log lines
        (with the serving model's intervals), hand its rows to the shadow. Called once the
        answer is sent; a failure here is logged, never the client's."""
        try:
            self._served(model, priced, rid)
        except Exception:
            log.exception("recording a served answer failed", extra={"request_id": rid})

    def _served(self, model: LoadedModel, priced: Priced, rid: str) -> None:
        served = None
        if self.index is not None:
            served = Served(model.version, priced.prices)
            if not self.index.add(rid, served):
                served = None
        log, shadow = self.log, self.shadow
        if log is None and shadow is None:
            return
        now = time.time()
        if log is not None:
            rule = model.interval
            bounds = rule.around(priced.prices) if rule is not None else None
            log.put(Entry(now, rid, model.version, "champion", priced.table, priced.prices, bounds))
        if shadow is not None:
            shadow.submit(now, rid, priced.table, served)

    def close(self) -> None:
        """Stop the shadow's worker, then write what the log holds and close it."""
        shadow, self.shadow = self.shadow, None
        self.shadow_info.clear()
        if shadow is not None:
            shadow.close()
        log, self.log = self.log, None
        if log is not None:
            log.close()
