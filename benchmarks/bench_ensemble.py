"""Speed of the histogram gradient boosting, against scikit-learn measured in the same run.

1. Fit time at scikit-learn's settings (200 iterations, learning rate 0.1, 31 leaves, 20 rows
   a leaf, no early stopping) on synthetic data with interactions (10,000 x 20) and on Ames
   (all columns, categories native). scikit-learn runs with all cores and with one (ours uses
   one). Target: ours <= 3x scikit-learn's time. The test RMSE of both is printed beside.
2. Prediction of a 500-tree model (31 leaves): one row in process, and a 1,000-row batch.
   Targets: one row < 100 us, 1,000 rows < 5 ms. Ours by leaf bit vectors (what ``predict``
   uses, :mod:`model.quickscorer`) and level by level (``Forest.predict_sum_levelwise``, the
   path before them) with the bit tables' size; scikit-learn's times on the same model
   settings beside, each column timed in turn in every round (``--rounds``), and ours over
   scikit-learn's one-thread time per round: the machine has slow phases of seconds to
   minutes in which all code runs up to ~1.7x slower (docs/PERFORMANCE.md, "stop 28"), which
   the ratio sees through and an absolute time does not.
3. The CART tree (``model.tree``: exact thresholds, each feature sorted once, per-node
   histograms or sorted row lists) against scikit-learn's ``DecisionTreeRegressor``, on
   continuous features (depth 8 and grown out), few-valued ones and Ames. Target: ours <= 2x.

Prints tables; asserts nothing. Run: ``.venv/bin/python benchmarks/bench_ensemble.py``
(``--only fit`` for section 1 alone, ``--repeats 5`` for more alternated fits in it).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from machine import describe
from sklearn.ensemble import HistGradientBoostingRegressor as SkHGB
from sklearn.tree import DecisionTreeRegressor as SkTree
from threadpoolctl import threadpool_limits

from model.ensemble import HistGradientBoostingRegressor
from model.tree import DecisionTreeRegressor

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SAME: dict[str, Any] = {
    "max_iter": 200,
    "learning_rate": 0.1,
    "max_leaf_nodes": 31,
    "min_samples_leaf": 20,
    "early_stopping": False,
}


def best_time(fn: Callable[[], object], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def median_time(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def synthetic(n: int, d: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = X[:, 0] * X[:, 1] + np.sin(2 * X[:, 2]) + np.where(X[:, 3] > 0, X[:, 4], -X[:, 4])
    y += 0.1 * X[:, 5:].sum(axis=1) + 0.3 * rng.normal(size=n)
    X[rng.random((n, d)) < 0.02] = np.nan
    return X, y


def ames() -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Ames, all columns of configs/ames-full.toml, as the gbdt pipeline's features see them."""
    from model.workflow.config import load_config
    from model.workflow.train import native_features, prepare_data

    cfg = load_config(ROOT / "configs" / "ames-full.toml")
    cfg = cfg.with_overrides(data_path=str(ROOT / cfg.data_path))
    data = prepare_data(cfg)
    features, cats = native_features(cfg)
    return features.fit_transform(data.table), np.log(data.y), cats


def rmse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((a - b) ** 2)))


def threads(n: int, fn: Callable[[], object]) -> Callable[[], object]:
    """``fn`` run with its BLAS and OpenMP pools held to ``n`` threads."""

    def limited() -> object:
        with threadpool_limits(n):
            return fn()

    return limited


def interleaved_best(fns: list[Callable[[], object]], repeats: int) -> list[float]:
    """Best time of each of ``fns``, run in turn ``repeats`` times (a load swing on a shared
    machine then hits them alike)."""
    best = [float("inf")] * len(fns)
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            best[i] = min(best[i], best_time(fn, 1))
    return best


def fit_times(repeats: int = 3) -> None:
    print(
        "\n1. Fit time, 200 iterations, lr 0.1, 31 leaves, 20 rows a leaf (ours, sk 1 thread and "
        f"sk all threads: best of {repeats}, interleaved)"
    )
    header = f"{'data':<22}{'ours s':>9}{'sk 1 thr s':>12}{'sk all s':>10}{'ratio 1thr':>11}"
    header += f"{'ratio all':>10}{'RMSE ours':>11}{'RMSE sk':>9}"
    print(header)
    print("-" * len(header))
    X, y = synthetic(12_500, 20)
    Xa, ya, cats = ames()
    for name, (X_, y_, cat) in {
        "synthetic 10,000x20": (X, y, None),
        f"Ames {Xa.shape[0] * 4 // 5:,}x{Xa.shape[1]}": (Xa, ya, cats),
    }.items():
        n = X_.shape[0] * 4 // 5
        tr, te = slice(0, n), slice(n, None)
        ours = HistGradientBoostingRegressor(categorical_features=cat, **SAME)
        ref = SkHGB(categorical_features=cat, **SAME)
        Xt, yt = X_[tr], y_[tr]
        t_ours, t_one, t_all = interleaved_best(
            [
                threads(1, partial(ours.fit, Xt, yt)),
                threads(1, partial(ref.fit, Xt, yt)),
                partial(ref.fit, Xt, yt),
            ],
            repeats,
        )
        e_ours = rmse(ours.predict(X_[te]), y_[te])
        e_ref = rmse(ref.predict(X_[te]), y_[te])
        print(
            f"{name:<22}{t_ours:>9.2f}{t_one:>12.2f}{t_all:>10.2f}{t_ours / t_one:>10.2f}x"
            f"{t_ours / t_all:>9.2f}x{e_ours:>11.4f}{e_ref:>9.4f}"
        )
    print("target: ours <= 3x scikit-learn's fit time")


def prediction(rounds: int) -> None:
    X, y = synthetic(3_000, 20, seed=1)
    kw = {**SAME, "max_iter": 500}
    ours = HistGradientBoostingRegressor(**kw).fit(X, y)
    with threadpool_limits(1):
        ref = SkHGB(**kw).fit(X, y)
    forest = ours.forest_
    depth = forest.depth
    start = time.perf_counter()
    bits, _ = forest._split_by_size()  # what the first predict builds
    build = time.perf_counter() - start
    assert bits is not None
    print(
        f"\n2. Prediction, 500 trees of 31 leaves (deepest {depth} levels): medians over {rounds}"
        " rounds, each timing every column in turn"
    )
    print(
        f"bit tables: {bits.nbytes / 1e6:.1f} MB ({bits.words.shape[0]:,} rows x "
        f"{bits.words.shape[1]} trees of {bits.words.dtype}), built in {build * 1e3:.0f} ms"
    )
    header = f"{'rows':<8}{'ours':>12}{'level-wise':>13}{'sk 1 thread':>14}{'sk all':>12}"
    header += f"{'target':>9}   ours / sk 1 thread (quartiles); ours' rounds"
    print(header)
    print("-" * len(header))
    one, batch = X[:1], X[:1000]
    for label, rows, calls, target in (("1", one, 100, "100 us"), ("1,000", batch, 10, "5 ms")):
        columns: list[list[float]] = [[], [], [], []]
        for _ in range(rounds):
            columns[0].append(median_time(partial(ours.predict, rows), calls))
            level = partial(forest.predict_sum_levelwise, rows)
            columns[1].append(median_time(level, max(3, calls // 10)))
            with threadpool_limits(1):
                columns[2].append(median_time(partial(ref.predict, rows), calls))
            columns[3].append(median_time(partial(ref.predict, rows), calls))
        t_ours, t_level, t_one, t_all = (float(np.median(c)) for c in columns)
        ratios = np.array(columns[0]) / np.array(columns[2])
        q1, q3 = np.percentile(ratios, [25, 75])
        unit, scale = ("us", 1e6) if rows.shape[0] == 1 else ("ms", 1e3)
        spread = f"{min(columns[0]) * scale:.1f}-{max(columns[0]) * scale:.1f} {unit}"
        print(
            f"{label:<8}{t_ours * scale:>9.1f} {unit}{t_level * scale:>10.1f} {unit}"
            f"{t_one * scale:>11.1f} {unit}{t_all * scale:>9.1f} {unit}{target:>9}"
            f"   {np.median(ratios):.3f} ({q1:.3f}-{q3:.3f}); {spread}"
        )
    print(
        "(a slow phase of the machine slows every column alike: the ratio holds where the "
        "absolute times do not)"
    )


def tree() -> None:
    X, y = synthetic(10_000, 20, seed=2)
    X = np.nan_to_num(X)
    Xa, ya, _ = ames()
    Xa = np.nan_to_num(Xa, nan=-1.0)  # the CART tree takes no missing values
    cases: dict[str, tuple[np.ndarray, np.ndarray, dict[str, Any]]] = {
        "10,000x20 continuous, depth 8": (X, y, {"max_depth": 8}),
        "10,000x20 continuous, grown out": (X, y, {}),
        "10,000x20 few values, depth 8": (np.round(X * 2) / 2, y, {"max_depth": 8}),
        f"Ames {Xa.shape[0]:,}x{Xa.shape[1]}, grown out": (Xa, ya, {}),
    }
    print("\n3. CART tree (model.tree, exact thresholds) vs scikit-learn (best of 3, interleaved)")
    header = f"{'data':<36}{'ours s':>9}{'sk s':>9}{'ratio':>8}"
    print(header)
    print("-" * len(header))
    for name, (X_, y_, kw) in cases.items():
        t_ours, t_ref = interleaved_best(
            [
                partial(DecisionTreeRegressor(**kw).fit, X_, y_),
                partial(SkTree(**kw).fit, X_, y_),
            ],
            3,
        )
        print(f"{name:<36}{t_ours:>9.3f}{t_ref:>9.3f}{t_ours / t_ref:>7.2f}x")
    print("target: ours <= 2x scikit-learn's fit time")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("fit", "predict", "tree"), help="one section only")
    parser.add_argument("--repeats", type=int, default=3, help="alternated fits in section 1")
    parser.add_argument("--rounds", type=int, default=10, help="rounds of section 2")
    args = parser.parse_args()
    print(describe("scikit-learn"))
    if args.only in (None, "fit"):
        fit_times(args.repeats)
    if args.only in (None, "predict"):
        prediction(args.rounds)
    if args.only in (None, "tree"):
        tree()


if __name__ == "__main__":
    main()
