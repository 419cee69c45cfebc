"""What happens to a served answer after it is priced: the prediction log, the feedback index
and the shadow model. ``/predict`` and V2 ``infer`` hand each 200 answer to the one hook,
:meth:`Traffic.served`; each part costs the request path one queue append or dict insert, and
nothing when off.

The feedback index remembers the prices of the most recent houses (``FEEDBACK_INDEX_SIZE``
houses, oldest requests evicted first; 0 turns it off) by request id, so ``POST /feedback``
can take ``{"request_id", "actual_price"}`` alone. A batch answer is one request id for all
its houses: feedback names the house by its position in ``instances`` with ``index`` (0 for a
single house). A request id sent again by a client (``X-Request-Id``) replaces the older entry
(whose houses still count against the size until the oldest-first eviction reaches them).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from itertools import chain
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge

from app import rings
from app.predlog import Entry, LogCounters, PredictionLog, open_sink
from app.settings import Settings

log = logging.getLogger("houseprice")

if TYPE_CHECKING:
    from app.shadow import Shadow
    from app.state import LoadedModel, Priced


class Served:
    """A request's answer as :meth:`FeedbackIndex.get` reads it back."""

    __slots__ = ("model_version", "prices", "shadow_prices", "shadow_version")

    def __init__(
        self,
        model_version: str,
        prices: Sequence[float],
        shadow_version: str | None = None,
        shadow_prices: Sequence[float] | None = None,
    ) -> None:
        self.model_version = model_version
        self.prices = prices
        self.shadow_version = shadow_version
        self.shadow_prices = shadow_prices


class FeedbackIndex:
    """Request id -> the prices served (and the shadow's), bounded in houses; used from the
    event loop only.

    Held in lists made once (a ring of ``capacity`` prices, one of the shadow's, and one of
    ``capacity`` entries per field) and a dict of request id -> entry number: what a request
    leaves here is strings, ints and floats, nothing the cyclic collector's young collections
    scan. An entry number is valid until the entry is evicted (:meth:`add_shadow` checks it).
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._by_rid: dict[str, int] = {}
        # per entry, at its number modulo ``capacity``
        self._number = [-1] * capacity
        self._rid: list[str | None] = [None] * capacity  # None once replaced by a newer entry
        self._start = [0] * capacity  # its first house's slot in the price rings
        self._size = [0] * capacity
        self._version = [""] * capacity
        self._shadow_version: list[str | None] = [None] * capacity
        # per house, a ring: the houses of the live entries, oldest first, end at ``_head``
        self._prices = [0.0] * capacity
        self._shadow_prices = [0.0] * capacity
        self._next = 0  # the next entry's number
        self._oldest = 0  # the oldest entry's number still in the rings
        self._head = 0
        self._held = 0  # houses in the rings, replaced entries' included until evicted
        self._houses = 0  # houses of the entries a request id finds

    def __len__(self) -> int:
        return self._houses

    def add(self, rid: str, version: str, prices: Sequence[float]) -> int | None:
        """Remember ``prices`` served by ``version`` for ``rid``: the entry's number, or None
        (and nothing kept) for a request larger than the index."""
        n = len(prices)
        cap = self.capacity
        if n > cap:
            return None
        old = self._by_rid.pop(rid, None)
        if old is not None:
            self._rid[old % cap] = None
            self._houses -= self._size[old % cap]
        while self._held + n > cap or self._next - self._oldest >= cap:
            self._evict()
        number, slot, start = self._next, self._next % cap, self._head
        self._next += 1
        self._number[slot], self._rid[slot], self._start[slot], self._size[slot] = (
            number, rid, start, n,
        )  # fmt: skip
        self._version[slot], self._shadow_version[slot] = version, None
        rings.write(self._prices, start, prices)
        self._head = (start + n) % cap
        self._held += n
        self._houses += n
        self._by_rid[rid] = number
        return number

    def _evict(self) -> None:
        slot = self._oldest % self.capacity
        self._oldest += 1
        rid = self._rid[slot]
        if rid is not None:
            del self._by_rid[rid]
            self._rid[slot] = None
            self._houses -= self._size[slot]
        self._held -= self._size[slot]

    def add_shadow(self, number: int, version: str, prices: Sequence[float]) -> None:
        """The shadow's prices for entry ``number``, unless it was evicted meanwhile."""
        slot = number % self.capacity
        if self._number[slot] != number or number < self._oldest or self._rid[slot] is None:
            return
        rings.write(self._shadow_prices, self._start[slot], prices)
        self._shadow_version[slot] = version

    def add_shadow_many(
        self,
        numbers: Sequence[int | None],
        version: str,
        prices: Sequence[Sequence[float] | None],
    ) -> None:
        """The shadow's prices for a group of entries (``prices[i]`` for entry ``numbers[i]``,
        in the order they were added; None: not indexed, or not priced), as :meth:`add_shadow`
        for each. Consecutive entries all priced (the usual group) hold consecutive houses:
        one write into each ring, from the first entry not evicted meanwhile."""
        k = len(numbers)
        first, last = (numbers[0], numbers[-1]) if k else (None, None)
        cap = self.capacity
        if (
            first is None
            or last is None
            or last - first != k - 1
            or None in numbers
            or None in prices
            or self._number[last % cap] != last
        ):
            for number, mine in zip(numbers, prices, strict=True):
                if number is not None and mine is not None:
                    self.add_shadow(number, version, mine)
            return
        skip = max(0, self._oldest - first)  # evicted: the oldest ones go first
        if skip >= k:
            return
        slot = (first + skip) % cap
        live = chain.from_iterable(prices[skip:] if skip else prices)  # type: ignore[arg-type]
        rings.write(self._shadow_prices, self._start[slot], list(live))
        rings.write(self._shadow_version, slot, [version] * (k - skip))

    def get(self, rid: str) -> Served | None:
        number = self._by_rid.get(rid)
        if number is None:
            return None
        slot = number % self.capacity
        start, n = self._start[slot], self._size[slot]
        shadow_version = self._shadow_version[slot]
        return Served(
            self._version[slot],
            rings.read(self._prices, start, n),
            shadow_version,
            None if shadow_version is None else rings.read(self._shadow_prices, start, n),
        )


class Traffic:
    """The prediction log, the feedback index and the shadow of one service."""

    def __init__(self, settings: Settings, registry: CollectorRegistry | None) -> None:
        self.settings = settings
        self.log: PredictionLog | None = None
        self.log_counters = LogCounters(registry) if settings.prediction_log else None
        size = settings.feedback_index_size
        self.index: FeedbackIndex | None = FeedbackIndex(size) if size else None
        self.shadow: Shadow | None = None
        self._retired: set[Shadow] = set()  # shadows dropped whose worker is still stopping
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
        entry = None
        if self.index is not None:
            entry = self.index.add(rid, model.version, priced.prices)
        log, shadow = self.log, self.shadow
        if log is None and shadow is None:
            return
        now = time.time()
        if log is not None:
            rule = model.interval
            bounds = rule.around(priced.prices) if rule is not None else None
            log.put(Entry(now, rid, model.version, "champion", priced.table, priced.prices, bounds))
        if shadow is not None:
            shadow.submit(now, rid, model, priced.table, priced.rows, entry)

    def retire(self, shadow: Shadow) -> None:
        """Start stopping a shadow no longer served (on the loop, which does not wait for its
        worker's exit); :meth:`aclose` and :meth:`close` wait for what is still stopping."""
        self._retired.add(shadow)
        shadow.close()  # on the loop: ends its input and returns
        stopped = asyncio.ensure_future(shadow.aclose())
        stopped.add_done_callback(lambda _: self._retired.discard(shadow))

    async def aclose(self) -> None:
        """Stop the shadow's worker, and any still stopping, then write what the log holds
        and close it. On the loop, which serves meanwhile."""
        shadow, self.shadow = self.shadow, None
        self.shadow_info.clear()
        if shadow is not None:
            self.retire(shadow)
        for old in list(self._retired):
            await old.aclose()
        log, self.log = self.log, None
        if log is not None:  # its writer's last batch is waited for in a thread, not the loop
            await asyncio.to_thread(log.close)

    def close(self) -> None:
        """:meth:`aclose` from a thread other than the loop's (or with no loop running)."""
        shadow, self.shadow = self.shadow, None
        self.shadow_info.clear()
        for old in [*self._retired, *([shadow] if shadow is not None else [])]:
            old.close()
        log, self.log = self.log, None
        if log is not None:
            log.close()
