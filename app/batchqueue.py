"""The hand-off between the event loop and one worker thread (the prediction log's writer): a
queue bounded in houses, taken in batches.

The request path pays an append and two integer updates under an uncontended lock: no thread
woken, unless ``wake`` houses wait. The worker wakes by itself every
``period`` seconds and takes everything queued at once. A thread woken at every request
would contend for the interpreter with the event loop at every request; batches also let the
worker do its work for many houses in one go. Houses count against ``capacity`` until the
worker says it is done with them (:meth:`done`), so memory stays bounded by it whatever the
worker's speed: :meth:`put` refuses what does not fit and the caller counts the drop.

``_added`` is written under a lock by the producers, ``_taken`` and ``_done`` by the worker
only, so each side reads the other's counters without a lock.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class BatchQueue(Generic[T]):
    """Items with a house count, bounded in houses; see the module docstring."""

    def __init__(self, capacity: int, wake: int, period: float) -> None:
        self.capacity = capacity
        self.wake = max(1, min(wake, capacity // 2))
        self.period = period
        self._items: deque[tuple[T, int]] = deque()
        self._added = 0  # houses ever put (producer)
        self._taken = 0  # houses ever taken (worker)
        self._done = 0  # houses ever finished (worker)
        self._cond = threading.Condition()
        self._signalled = False  # a wake-up is on its way (a lost race costs one period)
        self._put_lock = threading.Lock()
        self.closing = False

    @property
    def held(self) -> int:
        """Houses queued or being worked on."""
        return self._added - self._done

    @property
    def free(self) -> int:
        """Houses that fit now (fewer by the time a put comes, if another producer puts)."""
        return 0 if self.closing else self.capacity - (self._added - self._done)

    def put(self, item: T, n: int) -> bool:
        """Queue ``item`` of ``n`` houses; False (nothing queued) when it does not fit."""
        with self._put_lock:
            if self.closing or self._added - self._done + n > self.capacity:
                return False
            self._items.append((item, n))
            self._added += n
        if self._added - self._taken >= self.wake and not self._signalled:
            self._signalled = True
            with self._cond:
                self._cond.notify()
        return True

    def take(self) -> list[tuple[T, int]] | None:
        """Everything queued, once ``wake`` houses wait or ``period`` has passed; ``[]`` after
        a period with nothing queued; None once closed and empty."""
        if not self.closing and self._added - self._taken < self.wake:
            with self._cond:
                self._cond.wait(self.period)
        self._signalled = False
        out = []
        while self._items:
            item = self._items.popleft()
            out.append(item)
            self._taken += item[1]
        if not out and self.closing:
            return None
        return out

    def done(self, n: int) -> None:
        """The worker finished ``n`` houses: they no longer count against the capacity."""
        self._done += n

    def close(self) -> None:
        """No more puts; wake the worker, which takes what is left and then gets None."""
        self.closing = True
        with self._cond:
            self._cond.notify()
