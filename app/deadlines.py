"""The slow-loris guard: a request body must arrive in full before its deadline, else 408.

uvicorn has no timeout on reading a request body, so a client that sends the headers and then
trickles (or stops sending) the body would hold a connection and a task forever. The textbook
guard, ``asyncio.timeout_at`` around each ``receive``, arms and cancels a timer handle per
request, and cancelled handles stay in the loop's timer heap until they expire: measurably
dear on a request this short (docs/PERFORMANCE.md).

Here a request waiting for its body registers its task and deadline in a dict, and one timer,
armed only while some request waits, sweeps them every ``period`` seconds and cancels the
overdue ones. A request pays two dict operations; a stalled body gets its 408 within
``period`` of its deadline.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Message = MutableMapping[str, Any]


class BodyDeadlines:
    """The tasks waiting for a body, by deadline (``time.perf_counter()``), and the sweeper."""

    def __init__(self, period: float) -> None:
        if not period > 0:
            raise ValueError(f"period must be positive, got {period}")
        self.period = period
        self._waiting: dict[asyncio.Task[Any], float] = {}
        self._expired: set[asyncio.Task[Any]] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def receive(self, receive: Callable[[], Awaitable[Message]], deadline: float) -> Message:
        """``await receive()``; :class:`TimeoutError` if it is still waiting at ``deadline``."""
        loop = asyncio.get_running_loop()
        task = asyncio.current_task(loop)  # given the loop: one lookup of it, not two
        if task is None:  # not in a task: nothing to cancel, so no guard
            return await receive()
        self._waiting[task] = deadline
        if self._loop is not loop:  # a new loop (a new test client): the old one's tasks are gone
            self._waiting = {task: deadline}
            self._expired.clear()
            self._loop, self._timer = loop, None
        if self._timer is None:
            self._timer = loop.call_later(self.period, self._sweep)
        try:
            return await receive()
        except asyncio.CancelledError:
            if task not in self._expired:
                raise  # someone else's cancellation (shutdown): let it through
            self._expired.discard(task)
            task.uncancel()
            raise TimeoutError from None
        finally:
            self._waiting.pop(task, None)

    def _sweep(self) -> None:
        now = time.perf_counter()
        for task, deadline in list(self._waiting.items()):
            if deadline <= now:
                del self._waiting[task]
                self._expired.add(task)
                task.cancel()
        loop = self._loop
        self._timer = loop.call_later(self.period, self._sweep) if self._waiting and loop else None
