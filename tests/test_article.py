"""The house-price article's worked example, reproduced by our "gd" solver.

The article fits price = m·size + b to three houses by gradient descent, row by row. We pick
three plausible houses — 1400, 1600 and 1700 sq ft selling for $245,000, $312,000 and
$279,000 — scale the sizes min-max to [0, 1] (0, 2/3, 1), start from m = b = 0 and run 1000
epochs at learning rate 0.01. The article's literal per-row loop is kept here as the oracle;
our solver computes the same epochs from sufficient statistics in O(d²) each, and must give
the same slope, intercept and cost history to 1e-9.
"""

from __future__ import annotations

import numpy as np
import pytest

from model.linear import LinearRegression

SIZES = [1400.0, 1600.0, 1700.0]
PRICES = [245_000.0, 312_000.0, 279_000.0]
LEARNING_RATE = 0.01
EPOCHS = 1000


def min_max(values: list[float]) -> list[float]:
    lo, hi = min(values), max(values)
    return [(v - lo) / (hi - lo) for v in values]


def article_loop(
    x: list[float], y: list[float], lr: float, epochs: int
) -> tuple[float, float, list[float]]:
    """The article's algorithm, literally: per-row gradient sums, one update per epoch.

    The cost recorded for an epoch is the MSE of the parameters after that epoch's update.
    """
    n = len(x)
    m, b = 0.0, 0.0
    costs: list[float] = []
    for _ in range(epochs):
        dm, db = 0.0, 0.0
        for xi, yi in zip(x, y, strict=True):
            dm += -2 / n * xi * (yi - (m * xi + b))
            db += -2 / n * (yi - (m * xi + b))
        m -= lr * dm
        b -= lr * db
        costs.append(sum((yi - (m * xi + b)) ** 2 for xi, yi in zip(x, y, strict=True)) / n)
    return m, b, costs


def test_gd_reproduces_the_article_loop() -> None:
    x = min_max(SIZES)
    assert x == pytest.approx([0.0, 2 / 3, 1.0])
    m, b, costs = article_loop(x, PRICES, LEARNING_RATE, EPOCHS)

    model = LinearRegression(
        solver="gd", learning_rate=LEARNING_RATE, n_epochs=EPOCHS, tol=None
    ).fit(np.array(x).reshape(-1, 1), np.array(PRICES))

    assert model.coef_[0] == pytest.approx(m, rel=1e-9)
    assert model.intercept_ == pytest.approx(b, rel=1e-9)
    assert model.n_iter_ == EPOCHS
    np.testing.assert_allclose(model.cost_history_, costs, rtol=1e-9)
    # The last recorded cost is the fitted line's MSE on the three houses.
    mse = np.mean((model.predict(np.array(x).reshape(-1, 1)) - PRICES) ** 2)
    assert model.cost_history_[-1] == pytest.approx(mse, rel=1e-9)


def test_article_run_heads_for_the_least_squares_line() -> None:
    """1000 small steps have not converged, but the cost falls every epoch towards the optimum
    and more epochs approach the closed-form line."""
    x = np.array(min_max(SIZES)).reshape(-1, 1)
    y = np.array(PRICES)
    gd = LinearRegression(solver="gd", learning_rate=LEARNING_RATE, n_epochs=EPOCHS, tol=None)
    gd.fit(x, y)
    assert np.all(np.diff(gd.cost_history_) < 0)
    best = LinearRegression(solver="normal").fit(x, y)
    best_mse = np.mean((best.predict(x) - y) ** 2)
    assert gd.cost_history_[-1] > best_mse
    long = LinearRegression(solver="gd", learning_rate=0.1, n_epochs=100_000, tol=1e-15).fit(x, y)
    assert long.coef_[0] == pytest.approx(best.coef_[0], rel=1e-6)
    assert long.intercept_ == pytest.approx(best.intercept_, rel=1e-6)
