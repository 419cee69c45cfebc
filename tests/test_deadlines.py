"""The slow-loris guard's sweeper: overdue bodies time out, everything else passes through."""

from __future__ import annotations

import asyncio
import time

import pytest

from app.deadlines import BodyDeadlines


def never() -> asyncio.Future[dict[str, object]]:
    return asyncio.get_running_loop().create_future()


def test_a_body_that_arrives_in_time_is_returned() -> None:
    async def main() -> dict[str, object]:
        d = BodyDeadlines(period=0.01)

        async def receive() -> dict[str, object]:
            await asyncio.sleep(0.03)  # several sweeps while waiting, deadline far away
            return {"type": "http.request", "body": b"x"}

        got = await d.receive(receive, time.perf_counter() + 5)
        assert not d._waiting and not d._expired
        return got

    assert asyncio.run(main())["body"] == b"x"


def test_a_stalled_body_times_out_within_a_period_of_its_deadline() -> None:
    async def main() -> float:
        d = BodyDeadlines(period=0.02)
        start = time.perf_counter()
        with pytest.raises(TimeoutError):
            await d.receive(never, start + 0.1)
        elapsed = time.perf_counter() - start
        task = asyncio.current_task()
        assert task is not None and task.cancelling() == 0  # the cancel was absorbed
        assert not d._waiting and not d._expired
        await asyncio.sleep(0)  # the task is still usable afterwards
        return elapsed

    elapsed = asyncio.run(main())
    assert 0.1 <= elapsed < 0.1 + 0.02 + 0.2  # a period late at most (+ scheduling slack)


def test_only_the_overdue_request_of_several_times_out() -> None:
    async def main() -> list[str]:
        d = BodyDeadlines(period=0.01)
        now = time.perf_counter()

        async def slow_but_in_time() -> dict[str, object]:
            await asyncio.sleep(0.15)
            return {"body": b"ok"}

        async def one(fn: object, deadline: float) -> str:
            try:
                await d.receive(fn, deadline)  # type: ignore[arg-type]
                return "ok"
            except TimeoutError:
                return "timeout"

        return list(await asyncio.gather(one(never, now + 0.05), one(slow_but_in_time, now + 2.0)))

    assert asyncio.run(main()) == ["timeout", "ok"]


def test_a_cancellation_from_elsewhere_is_not_turned_into_a_timeout() -> None:
    async def main() -> None:
        d = BodyDeadlines(period=0.01)
        task = asyncio.create_task(d.receive(never, time.perf_counter() + 60))
        await asyncio.sleep(0.03)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not d._waiting

    asyncio.run(main())


def test_the_guard_works_again_on_a_new_event_loop() -> None:
    d = BodyDeadlines(period=0.01)
    for _ in range(2):  # a test client opens a new loop per session

        async def main() -> None:
            with pytest.raises(TimeoutError):
                await d.receive(never, time.perf_counter() + 0.03)

        asyncio.run(main())


def test_the_period_must_be_positive() -> None:
    with pytest.raises(ValueError, match="period"):
        BodyDeadlines(period=0)
