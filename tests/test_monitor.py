"""app.monitor.DriftMonitor: PSI by hand through the window, no drift on training rows, drift
on exactly the shifted feature, eviction against a brute-force recomputation, flat memory."""

from __future__ import annotations

import gc
import json
import math
import threading
import tracemalloc
from typing import Any

import numpy as np
import pytest

from app.monitor import PREDICTION, DriftMonitor, bin_labels, ks_binned, ks_critical
from model import drift
from model.base import Columns
from model.workflow.config import load_config
from model.workflow.train import prepare_data

NUM = {"kind": "numeric", "edges": [1.0, 2.0], "shares": [0.25, 0.5, 0.25, 0.0], "count": 400}
CAT = {"kind": "categorical", "categories": ["a", "b"], "shares": [0.5, 0.5, 0, 0], "count": 4}
PRED = {"kind": "numeric", "edges": [100.0], "shares": [0.5, 0.5, 0.0], "count": 2}
TINY = {"features": {"x": NUM, "c": CAT}, "prediction": PRED}


def tiny(**kw: Any) -> DriftMonitor:
    return DriftMonitor(TINY, "v1", **kw)


def send(m: DriftMonitor, x: list[float], c: list[str | None], y: list[float]) -> None:
    m.update(
        {"x": np.array(x, dtype=np.float64), "c": np.array(c, dtype=object)},
        np.array(y, dtype=np.float64),
    )


# --- known answers ------------------------------------------------------------------------


def test_psi_by_hand_for_small_histograms_through_the_monitor() -> None:
    m = tiny(window=8, min_samples=8)
    # x: buckets (-inf, 1], (1, 2], (2, inf), missing -> live shares 0.5, 0.25, 0.25, 0
    # c: a, b, unseen, missing -> live shares 0.5, 0.25, 0.25, 0
    for _ in range(2):
        send(m, [0.5, 1.0, 1.5, 3.0], ["a", "a", "b", "zz"], [50.0, 50.0, 150.0, 150.0])
    r = m.report()
    x, c, p = r["features"]["x"], r["features"]["c"], r["prediction"]
    assert x["live_shares"] == [0.5, 0.25, 0.25, 0.0]  # 1.0 is in (-inf, 1]: right-closed
    assert c["live_shares"] == [0.5, 0.25, 0.25, 0.0]
    # empty on both sides: both raised to eps, the term is 0
    x_hand = (0.5 - 0.25) * math.log(0.5 / 0.25) + (0.25 - 0.5) * math.log(0.25 / 0.5)
    # "unseen" is empty in training: raised to eps = 1e-4
    eps = 1e-4
    c_hand = (0.25 - 0.5) * math.log(0.25 / 0.5) + (0.25 - eps) * math.log(0.25 / eps)
    assert x["score"] == pytest.approx(x_hand, rel=1e-9)
    assert x["score"] == pytest.approx(0.5 * math.log(2), rel=1e-9)
    assert c["score"] == pytest.approx(c_hand, rel=1e-9)
    assert p["score"] == pytest.approx(0.0, abs=1e-12)  # half under 100, half over
    assert x["drifted"] and c["drifted"] and not p["drifted"]  # 0.35 and 2.1 > 0.25
    assert r["drifted"] == ["x", "c"]
    assert x["level"] == "significant"
    assert x["bins"] == ["<= 1", "(1, 2]", "> 2", "(missing)"]
    assert c["bins"] == ["a", "b", "(unseen)", "(missing)"]
    assert bin_labels({"kind": "numeric", "edges": []}) == ["(all)", "(missing)"]
    assert x["reference_shares"] == NUM["shares"]
    assert m.gauges() == [
        ("x", x["score"], True, 8),
        ("c", c["score"], True, 8),
        (PREDICTION, p["score"], False, 8),
    ]


def test_ks_from_bin_cdfs_by_hand_and_as_a_lower_bound_of_scipy() -> None:
    e = np.array([0.25, 0.5, 0.25])
    a = np.array([4.0, 2.0, 2.0])  # counts: shares 0.5, 0.25, 0.25
    # cumulative: e 0.25, 0.75, 1 ; a 0.5, 0.75, 1 -> largest gap 0.25
    assert ks_binned(e, a) == pytest.approx(0.25)
    assert ks_critical(100, 100) == pytest.approx(1.358 * math.sqrt(2 / 100))
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    ref = rng.lognormal(7.0, 0.4, 3000)
    live = rng.lognormal(7.1, 0.4, 500)
    prof = drift.numeric_profile(ref)
    counts = np.bincount(drift.bin_index(prof, live), minlength=drift.n_buckets(prof))
    d_binned = ks_binned(np.asarray(prof["shares"][:-1]), counts[:-1].astype(float))
    d_exact = stats.ks_2samp(ref, live).statistic
    assert d_binned <= d_exact + 1e-12
    assert d_binned > 0.5 * d_exact  # ten quantile bins keep most of the signal


def test_report_carries_ks_for_numeric_features_only() -> None:
    m = tiny(window=8, min_samples=4)
    send(m, [3.0] * 4, ["a"] * 4, [1.0] * 4)
    r = m.report()
    x = r["features"]["x"]
    # all live rows in the last ordered bin: CDF gap at edge 2 is 0.75 - 0 = 0.75
    assert x["ks"] == pytest.approx(0.75)
    assert x["ks_critical"] == pytest.approx(ks_critical(400, 4))
    assert "ks" not in r["features"]["c"]


def test_nothing_is_reported_below_min_samples() -> None:
    m = tiny(window=20, min_samples=5)
    send(m, [5.0] * 4, ["zz"] * 4, [1.0] * 4)  # wildly off, but only 4 rows
    r = m.report()
    assert r["drifted"] == []
    for e in [*r["features"].values(), r["prediction"]]:
        assert e["score"] is None and e["drifted"] is False and e["samples"] == 4
    assert all(math.isnan(s) and not d and n == 4 for _, s, d, n in m.gauges())
    json.dumps(r, allow_nan=False)  # None, not NaN, in the JSON
    send(m, [5.0], ["zz"], [1.0])
    assert m.report()["drifted"] == ["x", "c"]


def test_settings_and_inputs_are_validated() -> None:
    with pytest.raises(ValueError, match="min_samples"):
        tiny(window=10, min_samples=11)
    with pytest.raises(ValueError, match="window"):
        tiny(window=0, min_samples=1)
    with pytest.raises(ValueError, match="threshold"):
        tiny(threshold=0.0)
    with pytest.raises(ValueError, match="'features' and 'prediction'"):
        DriftMonitor({"features": {}}, "v1")
    bad = {"features": {"x": {**NUM, "shares": [1.0, 0.0]}}, "prediction": PRED}
    with pytest.raises(ValueError, match="reference for 'x': expected 4 shares"):
        DriftMonitor(bad, "v1")
    m = tiny()
    with pytest.raises(ValueError, match="column 'x' has 2 values but there are 3 predictions"):
        m.update({"x": np.array([1.0, 2.0]), "c": np.array(["a"] * 3, dtype=object)}, np.ones(3))


def test_an_absent_feature_counts_as_missing_and_unknown_columns_are_ignored() -> None:
    m = tiny(window=4, min_samples=1)
    m.update({"x": np.array([1.5, 1.5]), "other": np.array([9.0, 9.0])}, np.ones(2))
    r = m.report()
    assert r["features"]["c"]["live_shares"] == [0.0, 0.0, 0.0, 1.0]
    assert list(r["features"]) == ["x", "c"]


def test_a_row_without_a_reference_feature_counts_it_as_missing() -> None:
    m = tiny(window=4, min_samples=1)
    m.update({"x": (1.5,), "other": (9.0,)}, [1.0])
    m.update({"x": (None,), "c": ("b",)}, [200.0])
    r = m.report()
    assert r["features"]["c"]["live_shares"] == [0.0, 0.5, 0.0, 0.5]
    assert r["features"]["x"]["live_shares"] == [0.0, 0.5, 0.0, 0.5]
    assert r["prediction"]["live_shares"] == [0.5, 0.5, 0.0]


# --- the window ---------------------------------------------------------------------------


def _random_batch(rng: np.random.Generator, n: int) -> tuple[Columns, np.ndarray]:
    x = rng.normal(1.5, 1.0, n)
    x[rng.random(n) < 0.1] = np.nan
    c = np.array(rng.choice(["a", "b", "zz", None], n), dtype=object)  # type: ignore[arg-type]
    return {"x": x, "c": c}, rng.normal(100.0, 30.0, n)


def _send_as_rows(m: DriftMonitor, cols: Columns, y: np.ndarray) -> None:
    """One table of one row per row, with the plain values the service's table holds."""
    for i in range(len(y)):
        x = float(cols["x"][i])
        m.update({"x": (None if math.isnan(x) else x,), "c": (cols["c"][i],)}, [float(y[i])])


@pytest.mark.parametrize(
    "rows", [False, True], ids=["NumPy batches", "NumPy batches and Python tables of one"]
)
def test_window_eviction_matches_a_brute_force_recomputation(rows: bool) -> None:
    rng = np.random.default_rng(1)
    window = 50
    m = tiny(window=window, min_samples=10)
    history: dict[str, list[Any]] = {"x": [], "c": [], PREDICTION: []}
    sizes = [0, 1, 3, 49, 50, 51, 7, 120, 2, 0, 13, 60, 1, 1, 200, 5]
    for k, n in enumerate(sizes + list(rng.integers(0, 80, 60))):
        cols, y = _random_batch(rng, int(n))
        if rows and n <= 60 and rng.random() < 0.5:
            _send_as_rows(m, cols, y)  # tables of one row, between NumPy batches
        else:
            m.update(cols, y)
        history["x"].extend(cols["x"].tolist())
        history["c"].extend(cols["c"].tolist())
        history[PREDICTION].extend(y.tolist())
        if k >= len(sizes) and rng.random() < 0.6:
            continue  # no read: newer rows overwrite older ones, wrapping round the slots
        r = m.report()
        entries = {**r["features"], PREDICTION: r["prediction"]}
        profiles = {"x": NUM, "c": CAT, PREDICTION: PRED}
        for name, values in history.items():
            last = values[-window:]  # a literal sliding window over everything ever sent
            profile = profiles[name]
            counts = np.zeros(drift.n_buckets(profile), dtype=np.int64)
            for v in last:
                counts[int(drift.bin_index(profile, np.array([v], dtype=object))[0])] += 1
            e = entries[name]
            assert e["samples"] == len(last)
            if last:
                assert e["live_shares"] == (counts / len(last)).tolist(), name
            expected = drift.psi(profile["shares"], counts) if len(last) >= 10 else None
            assert e["score"] == expected, name


def test_a_batch_longer_than_the_window_keeps_its_tail() -> None:
    m = tiny(window=4, min_samples=1)
    send(m, [0.5] * 6 + [3.0] * 4, ["a"] * 10, [1.0] * 10)
    assert m.report()["features"]["x"]["live_shares"] == [0.0, 0.0, 1.0, 0.0]


def test_memory_is_flat_after_100k_updates_and_nothing_in_the_window_is_tracked() -> None:
    """100k one-row requests and no read: the window's one list of slots is never replaced
    and holds only values the cyclic collector does not track, so a request leaves no
    container alive for a young collection to scan."""
    m = DriftMonitor({"features": {"x": NUM}, "prediction": PRED}, "v1", window=1000)
    rng = np.random.default_rng(2)
    xs = rng.normal(1.5, 1.0, 100_000)
    slots = m._slots
    assert len(slots) == 1000 * 2
    for i in range(80_000):  # untraced: tracemalloc slows every allocation tenfold
        m.update({"x": (float(xs[i]),)}, [float(xs[i])])
    tracemalloc.start()
    for i in range(80_000, 85_000):  # traced warm-up: allocator free lists fill once
        m.update({"x": (float(xs[i]),)}, [float(xs[i])])
    before = tracemalloc.get_traced_memory()[0]
    for i in range(85_000, 100_000):
        m.update({"x": (float(xs[i]),)}, [float(xs[i])])
    grown = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert grown < 1_000, f"memory grew by {grown} bytes over 15k updates"
    assert m._slots is slots and len(slots) == 1000 * 2
    assert not any(gc.is_tracked(v) for v in slots)
    r = m.report()
    assert r["features"]["x"]["samples"] == 1000
    counts = np.bincount(drift.bin_index(NUM, xs[-1000:]), minlength=4)
    assert r["features"]["x"]["live_shares"] == (counts / 1000).tolist()


def test_the_window_keeps_the_newest_rows_across_the_wrap() -> None:
    m = tiny(window=10, min_samples=1)
    send(m, [0.5] * 4, ["a"] * 4, [1.0] * 4)
    send(m, [1.5] * 4, ["a"] * 4, [1.0] * 4)
    send(m, [3.0] * 5, ["a"] * 5, [1.0] * 5)
    send(m, [3.0] * 2, ["a"] * 2, [1.0] * 2)
    # the last 10 of 4 x 0.5, 4 x 1.5, 7 x 3.0: 3 x 1.5 and 7 x 3.0
    assert m.report()["features"]["x"]["live_shares"] == [0.0, 0.3, 0.7, 0.0]
    send(m, [0.5] * 25, ["a"] * 25, [1.0] * 25)  # longer than the window: its tail stays
    assert m.report()["features"]["x"]["live_shares"] == [1.0, 0.0, 0.0, 0.0]


def test_concurrent_updates_lose_no_rows() -> None:
    m = tiny(window=100_000, min_samples=1)
    rng = np.random.default_rng(3)
    batches = [_random_batch(rng, 3) for _ in range(800)]

    def worker(k: int) -> None:
        for cols, y in batches[k::8]:
            m.update(cols, y)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    x = np.concatenate([cols["x"] for cols, _ in batches])
    expected = np.bincount(drift.bin_index(NUM, x), minlength=4)
    live = m.report()["features"]["x"]
    assert live["samples"] == 2400
    assert live["live_shares"] == (expected / 2400).tolist()


# --- the real reference: Ames training data -----------------------------------------------


@pytest.fixture(scope="module")
def ames() -> tuple[Columns, np.ndarray, dict[str, Any]]:
    """The served features of data/ames.csv (configs/ames.toml) and a reference built from
    them by model.drift, with the sale prices standing in for the predictions."""
    cfg = load_config("configs/ames.toml")
    data = prepare_data(cfg)
    kinds = {f.name: f.kind for f in cfg.features}
    reference = drift.build_reference(data.table, kinds, data.y)
    return data.table, data.y, reference


def _sample(
    table: Columns, y: np.ndarray, rng: np.random.Generator, n: int
) -> tuple[Columns, np.ndarray]:
    idx = rng.integers(0, y.size, n)
    return {k: v[idx] for k, v in table.items()}, y[idx]


def _stream(m: DriftMonitor, table: Columns, y: np.ndarray, seed: int, rows: int) -> None:
    rng = np.random.default_rng(seed)
    sent = 0
    while sent < rows:
        n = int(rng.integers(1, 40))
        cols, p = _sample(table, y, rng, n)
        m.update(cols, p)
        sent += n


@pytest.mark.parametrize("seed", range(5))
def test_no_drift_when_requests_are_sampled_from_the_training_data(
    ames: tuple[Columns, np.ndarray, dict[str, Any]], seed: int
) -> None:
    table, y, reference = ames
    m = DriftMonitor(reference, "v1", window=1000, min_samples=200)
    _stream(m, table, y, seed, 1500)
    r = m.report()
    assert r["drifted"] == [] and not r["prediction"]["drifted"]
    scores = {k: e["score"] for k, e in r["features"].items()}
    assert max(scores.values()) < 0.1, scores  # not even "moderate"
    assert len(scores) == 17


def _shift(name: str, col: np.ndarray) -> np.ndarray:
    if name == "living_area":
        return col * 1.3  # 30% bigger houses
    if name == "kitchen_quality":
        return np.full(col.shape, "Ex", dtype=object)  # only excellent kitchens
    if name == "lot_area":
        return np.full(col.shape, math.nan)  # clients stop sending the lot size
    raise AssertionError(name)


@pytest.mark.parametrize("feature", ["living_area", "kitchen_quality", "lot_area"])
def test_drift_is_reported_on_the_shifted_feature_and_only_on_it(
    ames: tuple[Columns, np.ndarray, dict[str, Any]], feature: str
) -> None:
    table, y, reference = ames
    m = DriftMonitor(reference, "v1", window=1000, min_samples=200)
    _stream(m, table, y, 10, 1000)
    assert m.report()["drifted"] == []
    shifted = {**table, feature: _shift(feature, table[feature])}
    _stream(m, shifted, y, 11, 1000)  # the whole window is now shifted traffic
    r = m.report()
    assert r["drifted"] == [feature]
    flagged = [name for name, _, drifted, _ in m.gauges() if drifted]
    assert flagged == [feature]
    assert r["features"][feature]["score"] > 0.25
    json.dumps(r, allow_nan=False)


@pytest.mark.slow
def test_the_trained_artifact_reference_with_real_predictions(artifact_path: str) -> None:
    """Through the real artifact: its stored reference and its pipeline's predictions."""
    from model.workflow.artifact import load_artifact

    art = load_artifact(artifact_path)
    pipeline, meta = art.pipeline, art.metadata
    cfg = load_config("configs/ames.toml")
    data = prepare_data(cfg)
    m = DriftMonitor(meta["reference"], meta["model_version"])
    rng = np.random.default_rng(5)
    for _ in range(30):
        cols, _ = _sample(data.table, data.y, rng, 40)
        m.update(cols, pipeline.predict(cols))
    r = m.report()
    assert r["drifted"] == [] and not r["prediction"]["drifted"]
    for _ in range(30):
        cols, _ = _sample(data.table, data.y, rng, 40)
        cols["living_area"] = cols["living_area"] * 2.0  # twice as big: PSI ~3.4
        m.update(cols, pipeline.predict(cols))
    r = m.report()
    assert r["drifted"] == ["living_area"]
    assert r["prediction"]["drifted"]  # bigger houses are predicted dearer (PSI ~0.5)


class _OneRowAtATime:
    """The oracle of the window's layout: each table's rows (report order, then the price)
    written one at a time over the oldest slots, only its last ``window`` rows when it has
    more (the older ones could not stay)."""

    def __init__(self, window: int, width: int) -> None:
        self.window, self.width = window, width
        self.slots: list[Any] = [None] * (window * width)
        self.pos = self.filled = 0

    def write(self, rows: list[list[Any]]) -> tuple[list[Any], int, int]:
        for row in rows[-self.window :] if rows else []:
            self.slots[self.pos * self.width : (self.pos + 1) * self.width] = row
            self.pos = (self.pos + 1) % self.window
            self.filled = min(self.filled + 1, self.window)
        return self.slots, self.pos, self.filled


@pytest.mark.parametrize(
    "order",
    [["x", "c"], ["c", "x"], ["c", "extra", "x"], ["extra", "x"]],
    ids=["the reference's", "permuted", "with a feature the reference lacks", "without 'c'"],
)
def test_add_rows_and_update_keep_the_window_a_row_at_a_time_keeps(order: list[str]) -> None:
    """The same tables, given as rows in the model's ``order`` to ``add_rows`` (the service's
    path) and as columns to ``update``, leave the slots that writing their rows one at a time
    leaves, after every table, across the wrap, for tables of one row, of none and longer
    than the window."""
    rng = np.random.default_rng(28)
    by_rows = tiny(window=7, min_samples=1, order=order)
    by_columns = tiny(window=7, min_samples=1)
    oracle = _OneRowAtATime(7, 3)
    sizes = [1, 0, *[1] * 9, 7, 1, 8, 15, 2, *rng.integers(0, 12, 200).tolist()]
    for n in sizes:
        cols, y = _random_batch(rng, n)
        values = {
            "x": [None if math.isnan(v) else v for v in cols["x"].tolist()],
            "c": cols["c"].tolist(),
            "extra": rng.integers(0, 9, n).tolist(),
        }
        prices = y.tolist()
        by_rows.add_rows(list(zip(*(values[name] for name in order), strict=True)), prices)
        by_columns.update({name: tuple(values[name]) for name in order}, prices)
        x = values["x"] if "x" in order else [None] * n
        c = values["c"] if "c" in order else [None] * n
        expected = oracle.write([[x[i], c[i], prices[i]] for i in range(n)])
        assert (by_rows._slots, by_rows._pos, by_rows._filled) == expected
        assert (by_columns._slots, by_columns._pos, by_columns._filled) == expected
    assert by_rows.report() == by_columns.report()
    with pytest.raises(ValueError, match="'x' has 2 values but there are 1"):
        by_columns.update({"x": (1.0, 2.0)}, [1.0])


def test_add_rows_refuses_a_row_of_another_width_and_leaves_the_window() -> None:
    m = tiny(window=3, min_samples=1)
    m.add_rows([(1.0, "a")], [100.0])
    before = list(m._slots), m._pos, m._filled
    for rows, prices in [([(1.0,)], [1.0]), ([(1.0, "a", 2)], [1.0]), ([(1.0, "a")] * 2, [1.0])]:
        with pytest.raises(ValueError, match="one per prediction"):
            m.add_rows(rows, prices)
    with pytest.raises(ValueError):
        m.add_rows([(1.0, "a"), (2.0,)], [1.0, 2.0])
    # widths 1 and 3 add up to two rows of 2: only each row's own width tells them apart
    with pytest.raises(ValueError, match="every row must hold 2 values"):
        m.add_rows([(1.0,), (2.0, "b", 3)], [1.0, 2.0])
    assert (m._slots, m._pos, m._filled) == before
