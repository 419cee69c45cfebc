"""The prediction log, feedback by request id and the shadow model, in process.

The log's writer is exercised with real files (rotation) and a deliberately slow sink (drops
counted, the request path never waits); the service parts through FastAPI's TestClient
against small real artifacts. The same parts over real HTTP: tests/e2e/test_traffic.py.
"""

from __future__ import annotations

import gc
import itertools
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from exposition import metric  # tests/exposition.py
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from test_app_api import HOUSE, TOKEN, build_artifact, make_client

from app.predlog import Entry, LogCounters, PredictionLog, RotatingFile, lines
from app.settings import Settings, SettingsError
from app.traffic import FeedbackIndex

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def wait_for(check: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll ``check`` until true (the log and the shadow work in their own threads)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


def entry(n: int = 1, rid: str = "r1", version: str = "v1") -> Entry:
    table = {"a": tuple(float(i) for i in range(n)), "b": tuple(["x"] * (n - 1) + [None])}
    return Entry(1764633600.5, rid, version, "champion", table, [100.0 + i for i in range(n)], None)


# --- settings ----------------------------------------------------------------------------------


def test_settings_read_and_name_the_bad_variable(tmp_path: Path) -> None:
    s = Settings.from_env({})
    assert s.prediction_log is None and s.shadow_model_path is None
    assert s.feedback_index_size == 20_000 and s.prediction_log_queue == 10_000
    assert s.shadow_nice == 10 and Settings.from_env({"SHADOW_NICE": "0"}).shadow_nice == 0
    assert Settings.from_env({"PREDICTION_LOG": "off"}).prediction_log is None
    assert Settings.from_env({"PREDICTION_LOG": "stdout"}).prediction_log == "stdout"
    target = str(tmp_path / "p.jsonl")
    assert Settings.from_env({"PREDICTION_LOG": target}).prediction_log == target
    for env, name in [
        ({"PREDICTION_LOG": str(tmp_path / "nope" / "p.jsonl")}, "PREDICTION_LOG"),
        ({"PREDICTION_LOG": str(tmp_path)}, "PREDICTION_LOG"),
        ({"PREDICTION_LOG_MAX_BYTES": "10"}, "PREDICTION_LOG_MAX_BYTES"),
        ({"PREDICTION_LOG_MAX_BYTES": "1MB"}, "PREDICTION_LOG_MAX_BYTES"),
        ({"PREDICTION_LOG_BACKUPS": "-1"}, "PREDICTION_LOG_BACKUPS"),
        ({"PREDICTION_LOG_QUEUE": "0"}, "PREDICTION_LOG_QUEUE"),
        ({"FEEDBACK_INDEX_SIZE": "lots"}, "FEEDBACK_INDEX_SIZE"),
        ({"SHADOW_QUEUE": "0"}, "SHADOW_QUEUE"),
        ({"SHADOW_NICE": "-5"}, "SHADOW_NICE"),
    ]:
        with pytest.raises(SettingsError, match=f"^{name}:"):
            Settings.from_env(env)


# --- the log -----------------------------------------------------------------------------------


def test_lines_are_one_json_object_per_house_with_the_answer_interval() -> None:
    e = entry(2)._replace(intervals=[{"level": 0.9, "low": 1, "high": 2}, None])
    got = [json.loads(line) for line in lines(e)]
    assert [g["index"] for g in got] == [0, 1]
    assert got[0] == {
        "event": "prediction",
        "time": "2025-12-02T00:00:00.500000+00:00",
        "request_id": "r1",
        "index": 0,
        "model_version": "v1",
        "role": "champion",
        "inputs": {"a": 0.0, "b": "x"},
        "price": 100.0,
        "interval": {"level": 0.9, "low": 1, "high": 2},
    }
    assert got[1]["inputs"] == {"a": 1.0, "b": None}
    assert "interval" not in json.loads(next(lines(entry(1))))


def test_the_file_rotates_by_size_and_keeps_the_backups(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    f = RotatingFile(path, max_bytes=1024, backups=2)
    line = "x" * 99 + "\n"  # 100 bytes
    for _ in range(45):
        f.write(line)
    f.close()
    sizes = {p.name: p.stat().st_size for p in tmp_path.iterdir()}
    assert sorted(sizes) == ["p.jsonl", "p.jsonl.1", "p.jsonl.2"]
    assert all(size <= 1024 for size in sizes.values())
    assert sizes["p.jsonl.1"] == sizes["p.jsonl.2"] == 1000
    assert sizes["p.jsonl"] == 500  # 45 lines: 10 + 10 + 10 rotated out of reach, + 10, 10, 5


def test_a_write_of_many_lines_is_split_across_rotations(tmp_path: Path) -> None:
    """The writer hands the file a batch of lines in one write: each file still stays within
    the limit, cut at line ends."""
    path = tmp_path / "p.jsonl"
    f = RotatingFile(path, max_bytes=1024, backups=10)
    f.write("".join(f"{k:099d}\n" for k in range(35)))  # 3,500 bytes in one call
    f.write("w" * 2000 + "\n")  # one line over the limit: a file of its own
    f.close()

    def age(p: Path) -> int:  # p.jsonl.N is older for a larger N; p.jsonl is the newest
        return int(p.name.removeprefix("p.jsonl").removeprefix(".") or 0)

    files = sorted(tmp_path.iterdir(), key=age, reverse=True)  # oldest first
    assert [p.stat().st_size for p in files] == [1000, 1000, 1000, 500, 2001]
    text = "".join(p.read_text() for p in files)
    assert text.splitlines()[:35] == [f"{k:099d}" for k in range(35)]


def test_with_no_backups_the_file_starts_over(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    f = RotatingFile(path, max_bytes=1024, backups=0)
    for _ in range(15):
        f.write("y" * 99 + "\n")
    f.close()
    assert [p.name for p in tmp_path.iterdir()] == ["p.jsonl"]
    assert path.stat().st_size == 500


def test_a_reopened_file_appends_and_counts_its_size(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text("z" * 1000 + "\n")
    f = RotatingFile(path, max_bytes=1024, backups=1)
    f.write("a" * 99 + "\n")
    f.close()
    assert (tmp_path / "p.jsonl.1").stat().st_size == 1001


class SlowSink:
    """A sink that takes ``delay`` seconds per write, like a stalled disk."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.lines: list[str] = []
        self.closed = False

    def write(self, text: str) -> None:
        time.sleep(self.delay)
        self.lines += text.splitlines()

    def close(self) -> None:
        self.closed = True


def test_a_slow_sink_drops_and_counts_instead_of_blocking_or_growing() -> None:
    registry = CollectorRegistry()
    sink = SlowSink(0.2)
    log = PredictionLog(sink, capacity=10, counters=LogCounters(registry))
    started = time.perf_counter()
    for k in range(100):  # 100 requests of 3 houses while the sink takes 0.2 s a write
        log.put(entry(3, rid=f"r{k}"))
    put_seconds = time.perf_counter() - started
    assert put_seconds < 0.1, f"put blocked: {put_seconds:.3f} s"  # never waits for the sink
    dropped = registry.get_sample_value(
        "houseprice_prediction_log_dropped_total", {"reason": "queue_full"}
    )
    assert dropped is not None and dropped >= 300 - 2 * 10  # at most two queues' worth kept
    log.close()
    assert sink.closed
    written = registry.get_sample_value("houseprice_prediction_log_lines_total")
    assert written == len(sink.lines) == 300 - dropped
    assert all(json.loads(line)["event"] == "prediction" for line in sink.lines)


def test_closing_the_log_at_shutdown_leaves_the_loop_free_and_writes_every_entry() -> None:
    """The app's shutdown (``Traffic.aclose``) waits for the writer's last, slow, batch in a
    thread: the loop goes on meanwhile (a shadow's last replies are read on it)."""
    import asyncio

    from app.traffic import Traffic

    traffic = Traffic(Settings.from_env({}), CollectorRegistry())
    sink = SlowSink(0.3)
    traffic.log = PredictionLog(sink, capacity=100, counters=LogCounters(CollectorRegistry()))
    for k in range(5):
        traffic.log.put(entry(2, rid=f"r{k}"))

    async def shutdown() -> int:
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        ticker = asyncio.ensure_future(tick())
        await asyncio.sleep(0)  # the ticker runs once before the close
        await traffic.aclose()
        ticker.cancel()
        return ticks

    ticks = asyncio.run(shutdown())
    assert ticks >= 10, f"the loop ran {ticks} times while the 0.3-s write was waited for"
    assert sink.closed and len(sink.lines) == 10 and traffic.log is None


def test_a_failing_sink_counts_write_errors_and_keeps_going() -> None:
    class Broken:
        calls = 0

        def write(self, text: str) -> None:
            Broken.calls += 1
            if Broken.calls == 1:
                raise OSError(28, "No space left on device")

        def close(self) -> None:
            pass

    registry = CollectorRegistry()
    log = PredictionLog(Broken(), capacity=100, counters=LogCounters(registry))
    log.put(entry(2, rid="a"))
    wait_for(lambda: Broken.calls >= 1)
    log.put(entry(1, rid="b"))
    log.close()
    sample = registry.get_sample_value
    assert sample("houseprice_prediction_log_dropped_total", {"reason": "write_error"}) == 2
    assert sample("houseprice_prediction_log_lines_total") == 1


# --- the feedback index ------------------------------------------------------------------------


def test_the_index_is_bounded_in_houses_and_evicts_the_oldest() -> None:
    index = FeedbackIndex(5)
    a = index.add("a", "v", [1.0, 2.0])
    index.add("b", "v", [3.0, 4.0])
    assert len(index) == 4
    index.add("c", "v", [5.0, 6.0])  # 6 > 5: "a" goes
    assert index.get("a") is None and index.get("b") is not None and len(index) == 4
    assert a is not None
    index.add_shadow(a, "s", [9.0, 9.0])  # evicted meanwhile: nothing written
    assert index.get("c").shadow_prices is None  # type: ignore[union-attr]
    assert index.add("big", "v", [1.0] * 6) is None  # larger than the index: not kept
    assert index.get("big") is None and index.get("c") is not None
    index.add("b", "w", [7.0])  # a repeated id replaces its entry
    got = index.get("b")
    assert got is not None and got.model_version == "w" and got.prices == [7.0]
    assert len(index) == 3
    c = index.get("c")
    assert c is not None and c.model_version == "v" and c.prices == [5.0, 6.0]


def test_the_index_wraps_round_its_rings_and_keeps_each_entrys_prices() -> None:
    """Batches that straddle the end of the rings, replaced ids and shadow prices, checked
    against a plain list of entries, oldest first (a replaced entry's houses stay counted
    against the capacity until the oldest-first eviction reaches them)."""
    rng = random.Random(3)
    index = FeedbackIndex(7)
    entries: list[list[Any]] = []  # [rid, prices, shadow prices, still the rid's], newest last
    numbers: dict[str, int] = {}
    sizes: dict[str, int] = {}
    for k in range(300):
        rid = str(rng.randrange(12))
        prices = [float(k * 10 + i) for i in range(rng.randint(1, 4))]
        number = index.add(rid, f"v{k}", prices)
        assert number is not None
        numbers[rid], sizes[rid] = number, len(prices)
        for e in entries:
            e[3] = e[3] and e[0] != rid
        entries.append([rid, prices, None, True])
        while sum(len(e[1]) for e in entries) > 7:
            entries.pop(0)
        if rng.random() < 0.5:  # the shadow's reply for a random live or evicted entry
            late = rng.choice(list(numbers))
            mine = [-float(k)] * sizes[late]
            index.add_shadow(numbers[late], "s", mine)
            for e in entries:
                if e[3] and e[0] == late:
                    e[2] = mine
        live = [e for e in entries if e[3]]
        assert len(index) == sum(len(e[1]) for e in live)
        for r, p, shadow, _ in live:
            got = index.get(r)
            assert got is not None and got.prices == p and got.shadow_prices == shadow
            assert got.shadow_version == ("s" if shadow is not None else None)
        names = {e[0] for e in live}
        assert all(index.get(r) is None for r in map(str, range(12)) if r not in names)


def test_a_group_of_shadow_prices_lands_as_one_add_shadow_each_would() -> None:
    """Groups of the latest entries (some evicted meanwhile, some not indexed or not priced,
    some with a gap), written at once into one index and entry by entry into its twin."""
    rng = random.Random(5)
    one, each = FeedbackIndex(9), FeedbackIndex(9)
    rids = [str(k) for k in range(15)]
    numbers: list[int | None] = []
    for k in range(400):
        rid = rng.choice(rids)
        prices = [float(k * 10 + i) for i in range(rng.choice([1, 1, 2, 4, 10]))]
        number = one.add(rid, "v", prices)
        assert each.add(rid, "v", prices) == number
        numbers.append(number)
        if rng.random() < 0.3:
            size = rng.randint(1, 6)
            group = numbers[-size - rng.randint(0, 4) :][:size]  # some evicted by now
            if rng.random() < 0.2 and len(group) > 2:
                del group[1]  # a gap: a request the shadow dropped
            mine = [
                None if n is None or rng.random() < 0.1 else [-float(k)] * one._size[n % 9]
                for n in group
            ]
            one.add_shadow_many(group, f"s{k}", mine)
            for n, m in zip(group, mine, strict=True):
                if n is not None and m is not None:
                    each.add_shadow(n, f"s{k}", m)
        for rid in rids:
            a, b = one.get(rid), each.get(rid)
            assert (a is None) == (b is None)
            if a is not None and b is not None:
                assert (a.prices, a.shadow_version, a.shadow_prices) == (
                    b.prices, b.shadow_version, b.shadow_prices,
                )  # fmt: skip
    one.add_shadow_many([], "s", [])  # an empty group: nothing


def test_a_request_leaves_no_tracked_object_in_the_index() -> None:
    index = FeedbackIndex(100)
    before = len(gc.get_objects())
    for k in range(1000):
        number = index.add(f"r{k}", "v", [float(k)])
        assert number is not None
        index.add_shadow(number, "s", (float(k),))
    assert len(gc.get_objects()) - before < 10  # nothing per request


# --- the service -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A champion (four features), a shadow on three of them, one the champion cannot feed."""
    d = tmp_path_factory.mktemp("traffic-models")
    build_artifact(d, "champ-1")
    build_artifact(
        d, "shadow-1", names=("living_area", "lot_area", "neighborhood"), filename="shadow.joblib"
    )
    build_artifact(
        d,
        "odd-1",
        names=("living_area", "bedrooms"),
        filename="odd.joblib",
    )
    return d


def shadowed(models: Path, **overrides: Any) -> TestClient:
    """A client of the app serving ``models``' champion with its shadow."""
    return make_client(
        str(models / "model.joblib"), shadow_model_path=str(models / "shadow.joblib"), **overrides
    )


@pytest.fixture
def app_client(models: Path, tmp_path: Path) -> Iterator[TestClient]:
    with shadowed(models, prediction_log=str(tmp_path / "predictions.jsonl")) as c:
        yield c


def shadow_idle(client: TestClient) -> bool:
    shadow = client.app.state.service.traffic.shadow  # type: ignore[attr-defined]
    return shadow is None or shadow.idle()


def test_feedback_by_request_id_scores_the_champion_and_the_shadow(app_client: TestClient) -> None:
    r = app_client.post("/predict", json=HOUSE, headers={"X-Request-Id": "sale-1"})
    assert r.status_code == 200
    price = r.json()["price"]
    wait_for(lambda: shadow_idle(app_client))
    fb = app_client.post("/feedback", json={"request_id": "sale-1", "actual_price": 200_000.0})
    assert fb.status_code == 200, fb.text
    body = fb.json()
    assert body["model_version"] == "champ-1" and body["predicted_price"] == price
    assert body["abs_error"] == pytest.approx(abs(200_000.0 - price))
    assert body["shadow"]["model_version"] == "shadow-1"
    s_price = body["shadow"]["predicted_price"]
    assert body["shadow"]["squared_error"] == pytest.approx((200_000.0 - s_price) ** 2)
    text = app_client.get("/metrics").text
    assert metric(text, "houseprice_feedback_total", model_version="champ-1", role="champion") == 1
    assert metric(text, "houseprice_feedback_total", model_version="shadow-1", role="shadow") == 1
    assert metric(
        text, "houseprice_feedback_abs_error_dollars_sum", model_version="shadow-1", role="shadow"
    ) == pytest.approx(abs(200_000.0 - s_price))


def test_the_shadow_reads_v2_inputs_in_any_order_as_predict_s(app_client: TestClient) -> None:
    # the shadow gets a table's values without their names, named by the model's feature
    # order: a V2 request giving its inputs in another order must still be priced alike
    p = app_client.post("/predict", json=HOUSE, headers={"X-Request-Id": "as-predict"})
    assert p.status_code == 200
    inputs = [
        {
            "name": k,
            "shape": [1],
            "datatype": "BYTES" if isinstance(v, str) else "FP64",
            "data": [v],
        }
        for k, v in reversed(HOUSE.items())
    ]
    v2 = app_client.post(
        "/v2/models/houseprice/infer",
        json={"inputs": inputs},
        headers={"X-Request-Id": "as-v2"},
    )
    assert v2.status_code == 200, v2.text
    wait_for(lambda: shadow_idle(app_client))
    got = [
        app_client.post("/feedback", json={"request_id": rid, "actual_price": 1.0}).json()
        for rid in ("as-predict", "as-v2")
    ]
    assert got[0]["predicted_price"] == pytest.approx(got[1]["predicted_price"])
    assert got[0]["shadow"]["predicted_price"] == got[1]["shadow"]["predicted_price"]
    assert got[0]["shadow"]["predicted_price"] != got[0]["predicted_price"]  # two models


def test_feedback_addresses_a_house_of_a_batch_by_index(app_client: TestClient) -> None:
    houses = [HOUSE, {**HOUSE, "living_area": 2500}, {**HOUSE, "neighborhood": "OldTown"}]
    r = app_client.post("/predict", json={"instances": houses}, headers={"X-Request-Id": "b-1"})
    prices = r.json()["prices"]
    for i in range(3):
        fb = app_client.post(
            "/feedback", json={"request_id": "b-1", "index": i, "actual_price": 150_000.0}
        )
        assert fb.status_code == 200 and fb.json()["predicted_price"] == prices[i]
    no_index = app_client.post("/feedback", json={"request_id": "b-1", "actual_price": 1.0})
    assert no_index.status_code == 422
    assert "priced 3 houses: give the house's position" in no_index.json()["detail"][0]["msg"]
    past = app_client.post("/feedback", json={"request_id": "b-1", "index": 3, "actual_price": 1.0})
    assert past.status_code == 422 and "index 3 is out of range" in past.text


def test_feedback_for_an_unknown_or_expired_id_is_404(models: Path) -> None:
    with make_client(str(models / "model.joblib"), feedback_index_size=2) as c:
        for rid in ("old", "mid", "new"):
            c.post("/predict", json=HOUSE, headers={"X-Request-Id": rid})
        gone = c.post("/feedback", json={"request_id": "old", "actual_price": 1.0})
        assert gone.status_code == 404
        assert "'old' is not among the 2 most recent houses" in gone.json()["detail"]
        assert c.post("/feedback", json={"request_id": "new", "actual_price": 1.0}).is_success
        unknown = c.post("/feedback", json={"request_id": "never", "actual_price": 1.0})
        assert unknown.status_code == 404
    with make_client(str(models / "model.joblib"), feedback_index_size=0) as c:
        c.post("/predict", json=HOUSE, headers={"X-Request-Id": "x"})
        off = c.post("/feedback", json={"request_id": "x", "actual_price": 1.0})
        assert off.status_code == 404 and "FEEDBACK_INDEX_SIZE=0" in off.json()["detail"]


def test_feedback_bodies_are_one_way_or_the_other(app_client: TestClient) -> None:
    old = {"model_version": "champ-1", "predicted_price": 1e5, "actual_price": 1.1e5}
    assert app_client.post("/feedback", json=old).json()["abs_error"] == pytest.approx(1e4)
    for bad, why in [
        ({"actual_price": 1.0}, "give request_id, or model_version and predicted_price"),
        ({"model_version": "champ-1", "actual_price": 1.0}, "go together"),
        ({**old, "index": 0}, "index goes with request_id alone"),
        ({"request_id": "x", "index": -1, "actual_price": 1.0}, "greater than or equal to 0"),
    ]:
        r = app_client.post("/feedback", json=bad)
        assert r.status_code == 422 and why in r.text, (bad, r.text)


def test_the_log_holds_every_served_house_of_both_roles(
    app_client: TestClient, tmp_path: Path
) -> None:
    app_client.post("/predict", json=HOUSE, headers={"X-Request-Id": "one"})
    batch = {"instances": [HOUSE, {**HOUSE, "lot_area": None}]}
    r = app_client.post("/predict", json=batch, headers={"X-Request-Id": "two"})
    app_client.post("/predict", json={"living_area": -5})  # a 422 is not logged
    wait_for(lambda: shadow_idle(app_client))
    service = app_client.app.state.service  # type: ignore[attr-defined]
    service.traffic.close()  # writes what is queued
    got = [json.loads(x) for x in (tmp_path / "predictions.jsonl").read_text().splitlines()]
    champion = [g for g in got if g["role"] == "champion"]
    shadow = [g for g in got if g["role"] == "shadow"]
    assert [(g["request_id"], g["index"]) for g in champion] == [("one", 0), ("two", 0), ("two", 1)]
    assert sorted((g["request_id"], g["index"]) for g in shadow) == [
        ("one", 0),
        ("two", 0),
        ("two", 1),
    ]
    assert [g["price"] for g in champion[1:]] == r.json()["prices"]
    assert champion[2]["inputs"] == {**HOUSE, "lot_area": None}
    assert {g["model_version"] for g in shadow} == {"shadow-1"}


def test_each_house_of_a_batch_gets_the_shadows_own_price_for_it(app_client: TestClient) -> None:
    # the houses travel to the worker as one flat list of values: each must come back as the
    # price the shadow model gives that house, from /predict's rows and from V2's columns
    shadow = app_client.app.state.service.traffic.shadow  # type: ignore[attr-defined]
    names = shadow.model.names
    houses: list[dict[str, Any]] = []
    seen: set[float] = set()
    for k in range(40):  # three houses the shadow (a tree) prices apart: a mixed order shows
        house = {**HOUSE, "living_area": 500.0 + 97 * k, "lot_area": 1500.0 + 1301 * k}
        own = shadow.model.predict({n: [house[n]] for n in names})[0]
        if own not in seen and len(houses) < 3:
            seen.add(own)
            houses.append(house)
    assert len(houses) == 3
    r = app_client.post("/predict", json={"instances": houses}, headers={"X-Request-Id": "b1"})
    assert r.status_code == 200, r.text
    inputs = [
        {
            "name": k,
            "shape": [3],
            "datatype": "BYTES" if isinstance(v, str) else "FP64",
            "data": [h[k] for h in houses],
        }
        for k, v in reversed(HOUSE.items())
    ]
    v2 = app_client.post(
        "/v2/models/houseprice/infer", json={"inputs": inputs}, headers={"X-Request-Id": "b2"}
    )
    assert v2.status_code == 200, v2.text
    wait_for(lambda: shadow_idle(app_client))
    own_prices = shadow.model.predict({n: [h[n] for h in houses] for n in names})
    for rid in ("b1", "b2"):
        got = [
            app_client.post(
                "/feedback", json={"request_id": rid, "index": i, "actual_price": 1.0}
            ).json()["shadow"]["predicted_price"]
            for i in range(3)
        ]
        assert got == pytest.approx(own_prices, rel=1e-12), rid


def test_metrics_carry_the_role_and_the_shadow_has_its_own_series(app_client: TestClient) -> None:
    for k in range(5):
        app_client.post("/predict", json={**HOUSE, "living_area": 1000 + 100 * k})
    wait_for(lambda: shadow_idle(app_client))
    text = app_client.get("/metrics").text
    m = metric
    assert m(text, "houseprice_predictions_total", model_version="champ-1", role="champion") == 5
    assert m(text, "houseprice_predictions_total", model_version="shadow-1", role="shadow") == 5
    assert (
        m(text, "houseprice_predicted_price_dollars_count", model_version="shadow-1", role="shadow")
        == 5
    )
    assert m(
        text, "houseprice_drift_window_samples", feature="prediction", model_version="shadow-1",
        role="shadow",
    ) == 5  # fmt: skip
    assert m(
        text, "houseprice_drift_window_samples", feature="living_area", model_version="champ-1",
        role="champion",
    ) == 5  # fmt: skip
    assert m(text, "houseprice_shadow_model_info", model_version="shadow-1") == 1
    assert m(text, "houseprice_shadow_dropped_total", reason="queue_full") == 0


def test_model_lists_both_and_reload_loads_or_drops_the_shadow(
    app_client: TestClient, models: Path
) -> None:
    meta = app_client.get("/model").json()
    assert meta["model_version"] == "champ-1" and meta["shadow"]["model_version"] == "shadow-1"
    assert "reference" not in meta["shadow"] and meta["shadow"]["artifact"]["sha256"]

    r = app_client.post("/admin/reload", json={"drop_shadow": True}, headers=AUTH)
    assert r.status_code == 200, r.text
    assert r.json() == {"shadow": None, "previous_shadow_version": "shadow-1"}
    assert "shadow" not in app_client.get("/model").json()
    assert "houseprice_shadow_model_info{" not in app_client.get("/metrics").text

    odd = app_client.post("/admin/reload", json={"shadow_path": "odd.joblib"}, headers=AUTH)
    assert odd.status_code == 409 and "'bedrooms', which the champion does not take" in odd.text

    r = app_client.post("/admin/reload", json={"shadow_path": "shadow.joblib"}, headers=AUTH)
    assert r.status_code == 200 and r.json()["shadow"]["model_version"] == "shadow-1"
    assert r.json()["previous_shadow_version"] is None
    assert app_client.get("/model").json()["shadow"]["model_version"] == "shadow-1"

    both = {"path": "model.joblib", "drop_shadow": True}
    mixed = app_client.post("/admin/reload", json=both, headers=AUTH)
    assert mixed.status_code == 422
    assert mixed.json()["detail"][0]["loc"] == ["body", "drop_shadow", "path"]
    assert mixed.json()["detail"][0]["msg"] == "Extra inputs are not permitted"
    keep = app_client.post("/admin/reload", json={"drop_shadow": False}, headers=AUTH)
    assert keep.status_code == 422  # not a way to reload the champion by accident
    outside = app_client.post("/admin/reload", json={"shadow_path": "../x.joblib"}, headers=AUTH)
    assert outside.status_code == 403
    assert app_client.post("/admin/reload", json={"drop_shadow": True}).status_code == 401


def test_the_shadow_prices_in_its_own_process_and_leaves_none_behind(models: Path) -> None:
    with shadowed(models) as c:
        shadow = c.app.state.service.traffic.shadow  # type: ignore[attr-defined]
        proc = shadow._proc
        assert shadow.pid != os.getpid() and proc.poll() is None
        assert c.post("/predict", json=HOUSE).status_code == 200
        wait_for(shadow.idle)
        # it prices at SHADOW_NICE (10) below the server and at the idle scheduling policy:
        # the cores go to the answers first
        mine = os.getpriority(os.PRIO_PROCESS, 0)
        assert os.getpriority(os.PRIO_PROCESS, shadow.pid) == min(19, mine + 10)
        assert os.sched_getscheduler(shadow.pid) == os.SCHED_IDLE
        assert c.post("/admin/reload", json={"drop_shadow": True}, headers=AUTH).status_code == 200
        assert proc.poll() == 0  # dropping the shadow ends its process
        r = c.post("/admin/reload", json={"shadow_path": "shadow.joblib"}, headers=AUTH)
        assert r.status_code == 200
        second = c.app.state.service.traffic.shadow._proc  # type: ignore[attr-defined]
        assert second.poll() is None
    assert second.poll() == 0  # the app's shutdown ends it too: no orphan


def test_a_shadow_loaded_after_its_reload_timed_out_is_stopped(
    models: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """RELOAD_TIMEOUT answers 409 while the load goes on in its thread: the shadow it ends
    with is never installed, and its worker process must not be left running."""
    import app.shadow as shadow_module

    answered = threading.Event()
    late: list[Any] = []
    load, start = shadow_module.load_shadow, shadow_module.start_worker

    def slow_load(*args: Any) -> Any:
        answered.wait(30)  # the load ends after the reload has answered
        late.append(load(*args))
        return late[-1]

    monkeypatch.setattr(shadow_module, "load_shadow", slow_load)
    # the worker's own start is bounded by RELOAD_TIMEOUT too: not this test's point
    monkeypatch.setattr(shadow_module, "start_worker", lambda s, _: start(s, 60.0))
    with make_client(str(models / "model.joblib"), reload_timeout=0.2) as c:
        r = c.post("/admin/reload", json={"shadow_path": "shadow.joblib"}, headers=AUTH)
        answered.set()
        assert r.status_code == 409 and "RELOAD_TIMEOUT" in r.text
        wait_for(lambda: bool(late), timeout=60)
        wait_for(lambda: late[0]._proc.poll() is not None)  # its worker ended
        assert c.app.state.service.traffic.shadow is None  # type: ignore[attr-defined]
        assert "shadow" not in c.get("/model").json()


@pytest.mark.skipif(os.geteuid() != 0, reason="lifting the idle policy needs CAP_SYS_NICE")
def test_a_shadow_dropped_on_a_busy_machine_still_exits_cleanly(models: Path) -> None:
    # every core busy at normal priority: a worker left at the idle policy gets only a sliver
    # of one, so unless stopping lifts it, it is killed after the close's timeout
    burners = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"])
        for _ in range(os.cpu_count() or 1)
    ]
    try:
        with shadowed(models) as c:
            proc = c.app.state.service.traffic.shadow._proc  # type: ignore[attr-defined]
            assert os.sched_getscheduler(proc.pid) == os.SCHED_IDLE
            assert c.post("/predict", json=HOUSE).status_code == 200
            r = c.post("/admin/reload", json={"drop_shadow": True}, headers=AUTH)
            assert r.status_code == 200
            assert proc.poll() == 0
    finally:
        for b in burners:
            b.kill()
            b.wait()


def test_restore_policy_gives_an_idle_process_the_normal_policy_back() -> None:
    from app.shadowworker import restore_policy

    idle = "import os, time; os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0)); "
    child = subprocess.Popen(
        [sys.executable, "-c", idle + "print(1, flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE,
    )
    try:
        assert child.stdout is not None and child.stdout.readline() == b"1\n"
        assert os.sched_getscheduler(child.pid) == os.SCHED_IDLE
        restore_policy(child.pid)
        expected = os.SCHED_OTHER if os.geteuid() == 0 else os.SCHED_IDLE
        assert os.sched_getscheduler(child.pid) == expected
    finally:
        child.kill()
        child.wait()
    restore_policy(child.pid)  # a worker that has gone: nothing to do, no error


def test_groups_larger_than_the_pipe_holds_reach_the_worker_and_come_back(
    app_client: TestClient,
) -> None:
    # 3,000 houses in one message and 40 requests after it: more than a pipe holds (64 KiB),
    # so the loop writes them as the worker drains the pipe
    houses = [{**HOUSE, "living_area": 1000 + i} for i in range(3000)]
    big = app_client.post("/predict", json={"instances": houses}, headers={"X-Request-Id": "big"})
    assert big.status_code == 200
    for i in range(40):
        one = {**HOUSE, "living_area": 900 + i}
        r = app_client.post("/predict", json=one, headers={"X-Request-Id": f"one-{i}"})
        assert r.status_code == 200
    wait_for(lambda: shadow_idle(app_client))
    index = app_client.app.state.service.traffic.index  # type: ignore[attr-defined]
    served = index.get("big")
    assert served.shadow_version == "shadow-1" and len(served.shadow_prices) == 3000
    assert all(index.get(f"one-{i}").shadow_prices for i in range(40))
    text = app_client.get("/metrics").text
    assert metric(text, "houseprice_predictions_total", role="shadow") == 3040
    assert metric(text, "houseprice_shadow_dropped_total") == 0


def test_the_worker_falls_back_to_nice_where_the_idle_policy_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from app import shadowworker

    niced: list[int] = []
    monkeypatch.setattr(shadowworker.os, "nice", niced.append)  # not this test's process

    def refuse(*args: Any) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(shadowworker.os, "sched_setscheduler", refuse)
    said = shadowworker.lower_priority(7)
    assert said == "nice +7 (SCHED_IDLE refused: [Errno 1] Operation not permitted)"
    assert niced == [7]


def group_of(tables: list[dict[str, Any]]) -> Any:
    """The group ``Shadow.submit`` would queue for these tables (its names each table's)."""
    from app.shadowworker import Group

    names: list[Sequence[str]] = [list(t) for t in tables]
    counts = [len(next(iter(t.values()))) for t in tables]
    values = [v for t in tables for row in zip(*t.values(), strict=True) for v in row]
    return Group(names, counts, values)


def test_the_worker_prices_groups_and_survives_a_failing_model(models: Path) -> None:
    from app.shadowworker import Pricer
    from app.state import load_model

    model = load_model(str(models / "shadow.joblib"), Settings(str(models / "model.joblib")))
    pricer = Pricer(model, monitoring=True)
    one = {k: (v,) for k, v in HOUSE.items()}
    two = {k: (v, v) for k, v in HOUSE.items()}
    reply = pricer.price_group(group_of([one, two, {"living_area": (1.0,)}]))
    assert reply.prices[0] == tuple(model.predict(one))
    assert reply.prices[1] == tuple(model.predict(two))
    assert reply.prices[2] is None and reply.dropped == {"incompatible": 1}
    assert reply.stats is not None and reply.stats.predictions == 3 and reply.stats.drift

    def broken(table: Any) -> list[float]:
        raise RuntimeError("the challenger is broken")

    model.predict = broken  # type: ignore[method-assign]
    reply = pricer.price_group(group_of([one, two]))
    assert reply.prices == [None, None] and reply.dropped == {"model_error": 3}
    assert reply.error is not None and "the challenger is broken" in reply.error
    model.predict = lambda table: [float("nan")]  # type: ignore[method-assign]
    assert pricer.price_group(group_of([one])).dropped == {"non_finite": 1}
    assert pricer.stats() == reply.stats  # nothing priced since: the same series


def test_a_restarted_worker_goes_on_from_the_series_it_is_given(models: Path) -> None:
    from app.shadowworker import Pricer, Stats
    from app.state import load_model

    model = load_model(str(models / "shadow.joblib"), Settings(str(models / "model.joblib")))
    before = Pricer(model, monitoring=True)
    one = {k: (v,) for k, v in HOUSE.items()}
    sent = before.price_group(group_of([one, one])).stats
    assert sent is not None
    since = Stats(sent.predictions, sent.counts, sent.total, None)
    after = Pricer(model, monitoring=True, since=since)
    now = after.price_group(group_of([one])).stats
    assert now is not None and now.predictions == 3 and sum(now.counts) == 3
    assert now.total == pytest.approx(sent.total * 1.5)


def test_the_worker_reads_the_drift_rows_at_most_once_a_period(models: Path) -> None:
    from app.shadowworker import Pricer
    from app.state import load_model

    model = load_model(str(models / "shadow.joblib"), Settings(str(models / "model.joblib")))
    pricer = Pricer(model, monitoring=True)
    one = {k: (v,) for k, v in HOUSE.items()}
    first = pricer.price_group(group_of([one])).stats
    assert first is not None and first.drift is not None and not first.drift_stale
    assert dict((r[0], r[3]) for r in first.drift)["prediction"] == 1
    second = pricer.price_group(group_of([one])).stats  # within DRIFT_EVERY: not re-read
    assert second is not None and second.drift is None and second.drift_stale
    assert pricer.drift_stale and 0.0 < pricer.drift_due_in() <= pricer.DRIFT_EVERY
    now = pricer.stats(drift=True)  # what the worker sends once the traffic pauses
    assert now is not None and not now.drift_stale and now.drift is not None
    assert dict((r[0], r[3]) for r in now.drift)["prediction"] == 2


def test_groups_travel_to_the_worker_as_they_were() -> None:
    import marshal
    from fractions import Fraction

    from app.shadowworker import Group, decode_group, encode_group

    ab = ["a", "b"]
    plain = group_of([{"a": (1.5, None, 3), "b": ("x", "y", None)}, {"a": (2.0,), "b": ("z",)}])
    assert plain.values[:4] == [1.5, "x", None, "y"]  # house after house
    message = encode_group([ab, ab], plain.counts, plain.values)
    got = decode_group(message)
    assert got == Group([ab, ab], [3, 1], plain.values) and got.names[0] is got.names[1]
    names, counts = marshal.loads(message[4:])
    assert names[0] is names[1] and counts == [3, 1]  # one list of names written once
    assert message.count(b"b") == 1  # the names once, the values alone after them
    odd = [Fraction(1, 3)]  # not a value marshal knows: the group is pickled
    ba = ["b", "a"]  # another champion's order: its own names
    got = decode_group(encode_group([["a"], ba], [1, 1], [*odd, "z", 2.0]))
    assert got == Group([["a"], ba], [1, 1], [Fraction(1, 3), "z", 2.0])
    with pytest.raises(ValueError, match="a group of 3 values for tables of 1"):
        decode_group(encode_group([["a"]], [1], [1.0, 2.0, 3.0]))  # values left over
    with pytest.raises(ValueError, match="a group of 3 values for tables of 4"):
        decode_group(encode_group([ab], [2], [1.0, 2.0, 3.0]))  # too few for its tables
    with pytest.raises(ValueError, match="a group of 2 values for tables of 4"):
        decode_group(encode_group([ab, ab], [1, 1], [1.0, 2.0]))  # none for the second
    with pytest.raises(ValueError, match="a group of 1 lists of names for 2 requests"):
        decode_group(encode_group([ab], [1, 1], [1.0, 2.0]))


def test_a_group_is_priced_a_run_of_names_at_a_time(models: Path) -> None:
    from app.shadowworker import Group, Pricer
    from app.state import load_model

    model = load_model(str(models / "shadow.joblib"), Settings(str(models / "model.joblib")))
    pricer = Pricer(model, monitoring=True)
    one = {k: (v,) for k, v in HOUSE.items()}
    two = {k: (v, v) for k, v in HOUSE.items()}
    two["living_area"] = (HOUSE["living_area"], 2 * HOUSE["living_area"])  # two prices
    backwards = dict(reversed(two.items()))  # a reloaded champion's order of the same names
    group = group_of([one, two, backwards, one])
    names: list[Sequence[str]] = [model.names, model.names, list(backwards), model.names]
    assert [(n, list(r)) for n, r, _, _ in Group(names, group.counts, []).runs()] == [
        (model.names, [0, 1]),
        (list(backwards), [2]),
        (model.names, [3]),
    ]
    reply = pricer.price_group(group)
    assert reply.prices == [tuple(model.predict(t)) for t in (one, two, two, one)]
    assert reply.dropped == {} and reply.stats is not None and reply.stats.predictions == 6
    assert reply.prices[1] is not None and reply.prices[1][0] != reply.prices[1][1]


def test_the_shadow_queues_each_requests_rows_under_its_models_names() -> None:
    from types import SimpleNamespace

    from app.shadow import Shadow, _Jobs
    from app.shadowworker import decode_group, encode_group

    shadow = Shadow.__new__(Shadow)  # the queue alone: no model, no worker
    shadow._closing, shadow._held, shadow.capacity, shadow.predlog = False, 0, 5, None
    shadow._queued, shadow._waiting, shadow.wake = _Jobs(), 0, 100
    shadow._flush_at = object()  # as if the timer were set
    from prometheus_client import Counter as Metric

    dropped = Metric("dropped", "", ["reason"], registry=CollectorRegistry())
    shadow.dropped = dropped
    champion = SimpleNamespace(names=["a", "b"])
    table = {"b": ("x", "y"), "a": (1.0, 2.0)}  # the table: for the log alone
    shadow.submit(0.0, "r1", champion, table, [(1.0, "x"), (2.0, "y")], None)  # type: ignore[arg-type]
    one = SimpleNamespace(names=["b"])  # a reload: another champion's names
    shadow.submit(0.0, "r2", one, table, [("x",), ("y",)], None)  # type: ignore[arg-type]
    shadow.submit(0.0, "r3", champion, table, [(3.0, "z"), (4.0, "w")], None)  # type: ignore[arg-type]
    assert dropped.labels("queue_full")._value.get() == 2  # 4 held of 5: two more do not fit
    shadow.submit(0.0, "r4", champion, table, [(3.0, "z")], None)  # type: ignore[arg-type]
    q = shadow._queued
    assert q.values == [1.0, "x", 2.0, "y", "x", "y", 3.0, "z"] and q.counts == [2, 2, 1]
    assert q.names == [champion.names, one.names, champion.names]
    assert q.rids == [] and q.tables == []  # kept for the prediction log alone
    group = q.take(2)
    message = encode_group(group.names, group.counts, group.values)
    tables = [{"a": (1.0, 2.0), "b": ("x", "y")}, {"b": ("x", "y")}]
    assert decode_group(message) == group_of(tables)
    assert q.values == [3.0, "z"] and shadow._held == 5


def test_replies_travel_back_as_they_were() -> None:
    from app.shadowworker import Reply, Stats, decode_reply, encode_reply

    rows = [("living_area", 0.12, False, 40), ("prediction", 0.3, True, 40)]
    stats = Stats(3, [1, 2, 0], 450_000.0, rows, True)
    replies = [
        Reply([[150_000.0], None, [1.0, 2.0]], {"incompatible": 1}, None, stats),
        Reply([None], {"model_error": 1}, "Traceback ...", None),  # monitoring off
        stats,  # the drift rows alone, once the traffic paused
        Stats(0, [0, 0, 0], 0.0, None),
    ]
    for reply in replies:
        back = decode_reply(encode_reply(reply))
        assert back == reply and type(back) is type(reply)
        if isinstance(back, Reply) and back.stats is not None:
            assert type(back.stats) is Stats


def test_a_killed_shadow_worker_is_restarted_and_no_request_fails(
    app_client: TestClient, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.shadow import Shadow

    monkeypatch.setattr(Shadow, "BACKOFF", 0.5)
    shadow = app_client.app.state.service.traffic.shadow  # type: ignore[attr-defined]
    assert app_client.post("/predict", json=HOUSE).status_code == 200
    wait_for(shadow.idle)
    first = shadow.pid
    os.kill(first, signal.SIGKILL)
    wait_for(lambda: shadow._lost)  # the receiver saw its output end
    for _ in range(3):  # while it is down: answered, and the shadow's houses counted
        r = app_client.post("/predict", json=HOUSE)
        assert r.status_code == 200
    wait_for(
        lambda: metric(app_client.get("/metrics").text, "houseprice_shadow_restarts_total") == 1
    )
    assert shadow.pid != first and shadow._proc.poll() is None
    assert "its process exited (code -9); restarting it in 0.5 s" in caplog.text
    assert app_client.post("/predict", json=HOUSE).status_code == 200  # priced by the new one
    wait_for(shadow.idle)
    text = app_client.get("/metrics").text
    assert metric(text, "houseprice_shadow_dropped_total", reason="model_error") == 3
    assert (
        metric(text, "houseprice_predictions_total", model_version="champ-1", role="champion") == 5
    )
    # the restarted worker's counters go on from the first one's
    assert (
        metric(text, "houseprice_predictions_total", model_version="shadow-1", role="shadow") == 2
    )
    assert metric(text, "houseprice_predicted_price_dollars_count", role="shadow") == 2


def test_failed_restarts_back_off_doubling_up_to_a_bound(
    models: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import logging

    import app.shadow
    from app.shadow import Shadow
    from app.state import ModelLoadError

    monkeypatch.setattr(Shadow, "BACKOFF", 0.05)
    monkeypatch.setattr(Shadow, "BACKOFF_MAX", 0.2)
    real = app.shadow.start_worker
    tries: list[float] = []

    def flaky(*args: Any) -> Any:
        tries.append(time.monotonic())
        if len(tries) <= 4:
            raise ModelLoadError("no room for another process")
        return real(*args)

    class Lines(logging.Handler):
        def __init__(self) -> None:
            super().__init__()
            self.lines: list[str] = []

        def emit(self, record: logging.LogRecord) -> None:
            self.lines.append(record.getMessage())

    with shadowed(models) as c:
        lines = Lines()
        logging.getLogger("houseprice").addHandler(lines)  # the app set up its logging
        try:
            shadow = c.app.state.service.traffic.shadow  # type: ignore[attr-defined]
            monkeypatch.setattr(app.shadow, "start_worker", flaky)
            os.kill(shadow.pid, signal.SIGKILL)
            wait_for(
                lambda: metric(c.get("/metrics").text, "houseprice_shadow_restarts_total") == 1
            )
        finally:
            logging.getLogger("houseprice").removeHandler(lines)
        assert len(tries) == 5
        gaps = [b - a for a, b in itertools.pairwise(tries)]
        assert all(g >= 0.95 * w for g, w in zip(gaps, (0.1, 0.2, 0.2, 0.2), strict=True)), gaps
        assert all(g < 2.0 for g in gaps)  # bounded by BACKOFF_MAX (and a busy machine)
        said = "shadow model shadow-1: restarting its process failed"
        why = "ModelLoadError: no room for another process"
        assert lines.lines[:-1] == [  # one line each: the exit, then each failed start
            "shadow model shadow-1: its process exited (code -9); restarting it in 0.05 s, "
            "houses are dropped until then",
            *(f"{said} ({why}); next try in {n:g} s" for n in (0.1, 0.2, 0.2, 0.2)),
        ]
        assert (
            lines.lines[-1]
            == f"shadow model shadow-1: its process {shadow.pid} prices at SCHED_IDLE"
        )
        assert c.post("/predict", json=HOUSE).status_code == 200
        wait_for(shadow.idle)
        text = c.get("/metrics").text
        assert metric(text, "houseprice_predictions_total", role="shadow") == 1


def test_closing_during_a_restart_backoff_ends_it_without_a_restart(
    models: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.shadow import Shadow

    monkeypatch.setattr(Shadow, "BACKOFF", 60.0)
    with shadowed(models) as c:
        shadow = c.app.state.service.traffic.shadow  # type: ignore[attr-defined]
        first = shadow._proc
        os.kill(shadow.pid, signal.SIGKILL)
        wait_for(lambda: shadow._lost)
        started = time.perf_counter()
        shadow.close()
        assert time.perf_counter() - started < 5  # not the 60 s backoff
        assert shadow._proc is first and shadow._restarting.done()
        assert shadow.restarts._value.get() == 0


def test_closing_while_a_restart_starts_a_worker_stops_that_worker(
    models: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A close that cancels a restart whose worker is being started returns once that worker
    too is gone: none is left running after the app stops."""
    import app.shadow as shadow_module
    from app.shadow import Shadow

    monkeypatch.setattr(Shadow, "BACKOFF", 0.05)
    real = shadow_module.start_worker
    starting, go = threading.Event(), threading.Event()
    started: list[Any] = []

    def slow(*args: Any) -> Any:
        starting.set()
        go.wait(30)
        started.append(real(*args))
        return started[-1]

    with shadowed(models) as c:
        shadow = c.app.state.service.traffic.shadow  # type: ignore[attr-defined]
        monkeypatch.setattr(shadow_module, "start_worker", slow)
        os.kill(shadow.pid, signal.SIGKILL)
        assert starting.wait(30)  # the restart is starting a worker
        closing = threading.Thread(target=shadow.close)
        closing.start()
        wait_for(lambda: shadow._closing)
        go.set()
        closing.join(60)
        assert not closing.is_alive()
        assert started, "the close returned before the start it cancelled ended"
        assert started[0][0].poll() is not None  # that worker is gone
        assert shadow.restarts._value.get() == 0


def test_a_shadow_that_cannot_load_leaves_the_champion_serving(models: Path) -> None:
    with make_client(
        str(models / "model.joblib"), shadow_model_path=str(models / "odd.joblib")
    ) as c:
        assert c.get("/health/ready").status_code == 200
        assert c.post("/predict", json=HOUSE).status_code == 200
        assert "shadow" not in c.get("/model").json()


def test_a_slow_shadow_drops_and_counts_and_the_answer_does_not_wait(models: Path) -> None:
    with shadowed(models, shadow_queue=4) as c:
        shadow = c.app.state.service.traffic.shadow  # type: ignore[attr-defined]
        os.kill(shadow.pid, signal.SIGSTOP)  # a worker that prices nothing for a while
        try:
            started = time.perf_counter()
            for _ in range(10):
                assert c.post("/predict", json=HOUSE).status_code == 200
            elapsed = time.perf_counter() - started
        finally:
            os.kill(shadow.pid, signal.SIGCONT)
        wait_for(shadow.idle)
        assert elapsed < 5  # the stopped shadow held no answer back
        text = c.get("/metrics").text
        dropped = metric(text, "houseprice_shadow_dropped_total", reason="queue_full")
        priced = metric(
            text, "houseprice_predictions_total", model_version="shadow-1", role="shadow"
        )
        assert dropped >= 5 and dropped + priced == 10


def test_a_shadow_stuck_at_shutdown_is_killed(models: Path) -> None:
    with shadowed(models) as c:
        shadow = c.app.state.service.traffic.shadow  # type: ignore[attr-defined]
        os.kill(shadow.pid, signal.SIGSTOP)
        assert c.post("/predict", json=HOUSE).status_code == 200
        started = time.perf_counter()
        shadow.close(timeout=0.5)
        assert shadow._proc.returncode == -signal.SIGKILL
        assert time.perf_counter() - started < 5


def test_dropping_a_shadow_slow_to_exit_holds_no_other_answer(
    models: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``/admin/reload`` dropping a shadow whose worker cannot exit (stopped) answers once the
    worker is killed after ``CLOSE_TIMEOUT``; the loop answers every other request meanwhile."""
    from app.shadow import Shadow

    monkeypatch.setattr(Shadow, "CLOSE_TIMEOUT", 3.0)
    with shadowed(models) as c:
        shadow = c.app.state.service.traffic.shadow  # type: ignore[attr-defined]
        proc = shadow._proc
        os.kill(shadow.pid, signal.SIGSTOP)  # it cannot finish, nor exit
        answers: list[Any] = []

        def drop() -> None:
            answers.append(c.post("/admin/reload", json={"drop_shadow": True}, headers=AUTH))

        dropping = threading.Thread(target=drop)
        dropping.start()
        try:
            wait_for(lambda: shadow._closing)  # its input ended: the drop waits for its exit
            waits = []
            for _ in range(3):
                started = time.perf_counter()
                assert c.get("/health/live").status_code == 200
                assert c.post("/predict", json=HOUSE).status_code == 200
                waits.append(time.perf_counter() - started)
            still_dropping = dropping.is_alive()
        finally:
            dropping.join(30)
        assert max(waits) < 1.0, waits  # not the close's 3 s
        assert still_dropping
        assert answers[0].status_code == 200
        assert answers[0].json()["previous_shadow_version"] == "shadow-1"
        assert proc.returncode == -signal.SIGKILL  # gone, killed after the timeout
        assert c.app.state.service.traffic._retired == set()  # type: ignore[attr-defined]


def test_the_app_stops_after_every_dropped_shadow_is_gone(
    models: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A shadow dropped on the loop is stopped without the loop waiting for its worker; the
    app's shutdown waits for it (killed after ``CLOSE_TIMEOUT``): no worker outlives the app."""
    from app.shadow import Shadow, install

    monkeypatch.setattr(Shadow, "CLOSE_TIMEOUT", 1.0)
    with shadowed(models) as c:
        service = c.app.state.service  # type: ignore[attr-defined]
        proc = service.traffic.shadow._proc
        os.kill(proc.pid, signal.SIGSTOP)  # it cannot exit
        assert c.portal.call(install, service, None) is not None  # on the loop
        assert proc.poll() is None  # still stopping: the loop went on
        assert c.get("/health/live").status_code == 200
    assert proc.returncode == -signal.SIGKILL


def test_a_failure_after_the_answer_is_logged_not_sent(
    app_client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    index = app_client.app.state.service.traffic.index  # type: ignore[attr-defined]

    def broken(rid: str, version: str, prices: list[float]) -> int:
        raise MemoryError("no room")

    index.add = broken
    r = app_client.post("/predict", json=HOUSE)
    assert r.status_code == 200 and r.json()["price"] > 0
    assert "recording a served answer failed" in caplog.text


def test_the_shadow_prices_its_batch_in_groups_of_about_a_size() -> None:
    from app.shadow import _Jobs, cut

    queued = _Jobs()
    for k, n in enumerate([1, 1, 3, 100, 2, 2, 1]):
        queued.rids.append(str(k))
        queued.counts.append(n)
        for name in ("times", "tables", "entries"):
            getattr(queued, name).append(None)
        queued.names.append(["a", "b"])
        queued.values += [k] * 2 * n
    got = []
    while queued.counts:
        k, n = cut(queued.counts, 4)
        group = queued.take(k)
        assert len(group.names) == len(group.counts) == k  # cut alike
        pairs = zip(group.rids, group.counts, strict=True)
        assert group.values == [int(r) for r, c in pairs for _ in range(2 * c)]
        got.append(([int(r) for r in group.rids], n))
    assert got == [([0, 1], 2), ([2], 3), ([3], 100), ([4, 5], 4), ([6], 1)]
    assert cut([], 4) == (0, 0)


def test_the_loop_sends_one_group_per_callback_and_hands_on_one_reply_per_callback() -> None:
    import asyncio
    from collections import deque
    from multiprocessing.connection import Connection

    from app.shadow import Shadow, _Jobs, _Pipe

    loop = asyncio.new_event_loop()
    work_r, work_w = os.pipe()
    reply_r, reply_w = os.pipe()
    got: list[bytes] = []
    ticks: list[int] = []  # the loop's iterations, counted by a callback that renews itself
    try:
        pipe = _Pipe(
            loop, Connection(work_w, readable=False), Connection(reply_r, writable=False),
            lambda m: got.append(m), lambda: None,
        )  # fmt: skip
        shadow = Shadow.__new__(Shadow)  # the hand-off alone: no model, no worker
        shadow._loop, shadow._pipe, shadow._lost = loop, pipe, False
        shadow._queued, shadow._waiting, shadow._flush_at = _Jobs(), 0, None
        shadow._in_flight = deque()
        q = shadow._queued
        for i in range(7):  # 7 requests of 30 houses: groups of 60, 60, 60, 30 at GROUP 64
            q.rids.append(str(i))
            q.counts.append(30)
            q.values += [0.0] * 30
            q.names.append(("a",))
            q.times.append(0.0)
            q.tables.append(None)
            q.entries.append(None)
            shadow._waiting += 30
        shadow.GROUP = 64
        shadow._flush()  # called by the timer: one group, the rest left for later callbacks
        assert [len(g.counts) for g, _ in shadow._in_flight] == [2]
        assert shadow._waiting == 150 and shadow._flush_at is not None
        loop.call_soon(lambda: loop.stop())
        loop.run_forever()  # one iteration of the loop: one more group
        assert [n for _, n in shadow._in_flight] == [60, 60]
        for _ in range(3):
            loop.call_soon(lambda: loop.stop())
            loop.run_forever()
        assert [n for _, n in shadow._in_flight] == [60, 60, 60, 30] and shadow._waiting == 0
        assert [r for g, _ in shadow._in_flight for r in g.rids] == [str(i) for i in range(7)]

        # three replies in one read: the first handed on at once, each next one a loop
        # iteration later
        os.write(reply_w, b"".join(len(m).to_bytes(4, "big") + m for m in (b"a", b"bb", b"c")))
        pipe._readable()
        assert got == [b"a"]

        def tick() -> None:
            ticks.append(len(got))
            if len(ticks) < 3:
                loop.call_soon(tick)
            else:
                loop.stop()

        loop.call_soon(tick)
        loop.run_forever()
        # the next reply's callback was queued before the first tick: one more per iteration
        assert got == [b"a", b"bb", b"c"] and ticks == [2, 3, 3]
        pipe.close()
    finally:
        for fd in (work_r, reply_w):
            os.close(fd)
        loop.close()


def test_the_batch_queue_is_bounded_until_done_and_drains_on_close() -> None:
    from app.batchqueue import BatchQueue

    q: BatchQueue[str] = BatchQueue(capacity=10, wake=100, period=0.01)
    assert q.wake == 5  # at most half the capacity
    assert q.put("a", 4) and q.free == 6 and q.put("b", 6)
    assert q.free == 0 and not q.put("c", 1)  # full
    started = time.perf_counter()
    assert q.take() == [("a", 4), ("b", 6)]  # enough houses waited: no period to sit out
    assert time.perf_counter() - started < 0.5
    assert not q.put("c", 1)  # taken, but not done: still counted
    q.done(10)
    assert q.held == 0 and q.put("c", 1)
    assert q.take() == [("c", 1)]  # one house: after the period
    assert q.take() == []  # a period with nothing
    q.done(1)
    q.put("d", 2)
    q.close()
    assert q.free == 0 and not q.put("e", 1)
    assert q.take() == [("d", 2)]  # what was queued before the close
    assert q.take() is None


def test_producers_on_two_threads_keep_the_count() -> None:
    from app.batchqueue import BatchQueue

    q: BatchQueue[int] = BatchQueue(capacity=10**9, wake=10**9, period=1.0)

    def fill() -> None:
        for k in range(20_000):
            q.put(k, 1)

    threads = [threading.Thread(target=fill) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert q.held == 40_000
    assert sum(n for _, n in q.take() or []) == 40_000


@pytest.mark.parametrize("shadow", [False, True], ids=["champion", "champion and shadow"])
def test_a_served_request_leaves_no_tracked_object_alive(models: Path, shadow: bool) -> None:
    """What a request leaves behind for a while (the drift window, the pending metrics, the
    feedback index, the shadow's queue and replies) holds no container the cyclic collector
    tracks: young collections, which scan every tracked object allocated since the last one
    and still alive, stay short and rare on the request path (docs/PERFORMANCE.md, s27-gc)."""
    path = str(models / "shadow.joblib") if shadow else None
    with make_client(str(models / "model.joblib"), shadow_model_path=path) as c:
        for i in range(300):  # warm-up: caches, the first series and histograms
            assert c.post("/predict", json={**HOUSE, "living_area": 900 + i}).status_code == 200
        wait_for(lambda: shadow_idle(c))
        gc.collect()  # the middle generation is empty now
        gc.disable()
        try:
            for i in range(500):
                one = {**HOUSE, "living_area": 1000 + i}
                assert c.post("/predict", json=one).status_code == 200
            wait_for(lambda: shadow_idle(c))
            gc.collect(0)  # the test client's cyclic garbage goes, what is alive moves up
            alive = gc.get_objects(1)
        finally:
            gc.enable()
        kinds = Counter(type(o).__name__ for o in alive).most_common(5)
        assert len(alive) < 100, f"{len(alive)} tracked objects alive after 500 requests: {kinds}"
