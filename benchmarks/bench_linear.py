"""Speed and memory of the linear models, against references measured in the same run.

1. Closed form on 1,000,000 x 20 synthetic rows: our ``LinearRegression`` / ``Ridge``
   ("normal" solver) against scikit-learn's ``LinearRegression`` (lstsq) and ``Ridge``
   (Cholesky). Target: ours <= 0.8x sklearn Ridge's time. Peak memory allocated during
   each fit (tracemalloc, which sees NumPy's buffers) is reported as a multiple of X's size.
2. The article's per-row gradient-descent loop against our "gd" solver, 1000 epochs at
   learning rate 0.01 on 10,000 rows. Target: >= 1000x. The literal loop is timed on fewer
   epochs and scaled linearly (every epoch does the same work); both produce the same
   iterates, which is checked on the epochs the loop runs.

Prints tables; asserts nothing. Run: ``.venv/bin/python benchmarks/bench_linear.py``.
"""

from __future__ import annotations

import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from machine import describe
from sklearn.linear_model import LinearRegression as SkLinearRegression
from sklearn.linear_model import Ridge as SkRidge

from model.linear import LinearRegression, Ridge

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.test_article import article_loop

N_ROWS, N_FEATURES = 1_000_000, 20
GD_ROWS, GD_EPOCHS, LOOP_EPOCHS, LR = 10_000, 1000, 10, 0.01


def best_time(fn: Callable[[], object], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def peak_bytes(fn: Callable[[], object]) -> int:
    """Largest total of buffers allocated while ``fn`` runs (inputs already existing)."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak - base


def closed_form() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(N_ROWS, N_FEATURES)) * rng.uniform(0.5, 20, N_FEATURES)
    X += rng.uniform(-100, 100, N_FEATURES)
    y = X @ rng.normal(size=N_FEATURES) + 3.0 + rng.normal(0, 1.0, N_ROWS)
    mb = X.nbytes / 2**20
    print(f"\n1. Closed form on {N_ROWS:,} x {N_FEATURES} rows (X = {mb:.0f} MiB), best of 3")
    fits: list[tuple[str, Callable[[], Any]]] = [
        ("ours LinearRegression (normal)", lambda: LinearRegression().fit(X, y)),
        ("ours Ridge(alpha=1) (normal)", lambda: Ridge(alpha=1.0).fit(X, y)),
        ("sklearn LinearRegression", lambda: SkLinearRegression().fit(X, y)),
        ("sklearn Ridge(alpha=1)", lambda: SkRidge(alpha=1.0).fit(X, y)),
    ]
    times = {name: best_time(fn, 3) for name, fn in fits}
    peaks = {name: peak_bytes(fn) for name, fn in fits}
    coefs = {name: fn().coef_ for name, fn in fits}
    ref_time = times["sklearn Ridge(alpha=1)"]
    header = f"{'fit':<32}{'seconds':>9}{'vs sk Ridge':>13}{'peak alloc':>12}{'/ X':>7}"
    print(header + f"{'coef rel diff':>15}")
    print("-" * (len(header) + 15))
    for name, _ in fits:
        ref = coefs["sklearn Ridge(alpha=1)" if "Ridge" in name else "sklearn LinearRegression"]
        diff = float(np.max(np.abs(coefs[name] - ref)) / np.max(np.abs(ref)))
        print(
            f"{name:<32}{times[name]:>9.3f}{times[name] / ref_time:>12.2f}x"
            f"{peaks[name] / 2**20:>8.1f} MiB{peaks[name] / X.nbytes:>7.2f}{diff:>15.1e}"
        )
    print("target: ours <= 0.80x sklearn Ridge's time")


def gradient_descent() -> None:
    rng = np.random.default_rng(1)
    size = rng.uniform(600, 4000, GD_ROWS)
    price = 50_000 + 110 * size + rng.normal(0, 25_000, GD_ROWS)
    x = (size - size.min()) / (size.max() - size.min())
    X = x.reshape(-1, 1)
    xs, ys = x.tolist(), price.tolist()

    def ours(epochs: int) -> LinearRegression:
        return LinearRegression(solver="gd", learning_rate=LR, n_epochs=epochs, tol=None).fit(
            X, price
        )

    t_loop = best_time(lambda: article_loop(xs, ys, LR, LOOP_EPOCHS), 1)
    m, b, costs = article_loop(xs, ys, LR, LOOP_EPOCHS)
    short = ours(LOOP_EPOCHS)
    same = max(
        abs(short.coef_[0] / m - 1),
        abs(short.intercept_ / b - 1),
        float(np.max(np.abs(np.array(short.cost_history_) / costs - 1))),
    )
    t_ours = best_time(lambda: ours(GD_EPOCHS), 5)
    t_loop_full = t_loop * GD_EPOCHS / LOOP_EPOCHS
    print(f"\n2. Article's GD: {GD_ROWS:,} rows, {GD_EPOCHS} epochs, learning rate {LR}")
    print(f"{'implementation':<44}{'seconds':>10}{'speed-up':>11}")
    print("-" * 65)
    loop_name = f"per-row loop ({LOOP_EPOCHS} epochs timed, x{GD_EPOCHS // LOOP_EPOCHS})"
    print(f"{loop_name:<44}{t_loop_full:>10.3f}{1.0:>10.0f}x")
    print(f"{'ours, solver=gd (best of 5)':<44}{t_ours:>10.4f}{t_loop_full / t_ours:>10.0f}x")
    print(
        f"same iterates over the {LOOP_EPOCHS} looped epochs: max relative difference "
        f"{same:.1e} (slope, intercept, costs)"
    )
    print("target: >= 1000x")


def main() -> None:
    print("bench_linear: from-scratch linear models vs scikit-learn and the article's loop")
    print(describe("scikit-learn"))
    closed_form()
    gradient_descent()


if __name__ == "__main__":
    main()
