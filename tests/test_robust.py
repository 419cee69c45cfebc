"""model.robust.HuberRegressor against scikit-learn's and against its own objective."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray
from sklearn import linear_model as sk_linear

from model.linear import Ridge
from model.robust import HuberRegressor, huber_objective


def heavy_tailed(n: int, seed: int) -> tuple[NDArray[Any], NDArray[Any]]:
    """A linear signal with Student-t (2 degrees of freedom) noise: a few huge residuals."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5))
    y = X @ np.array([1.0, 2.0, 0.0, -1.0, 3.0]) + 5.0 + rng.standard_t(2, size=n)
    return X, y


@pytest.mark.parametrize(
    "params",
    [{}, {"alpha": 10.0, "epsilon": 1.5}, {"epsilon": 2.0, "fit_intercept": False}],
    ids=["default", "penalised", "no-intercept"],
)
def test_matches_sklearn(params: dict[str, Any]) -> None:
    X, y = heavy_tailed(300, seed=0)
    ours = HuberRegressor(**params).fit(X, y)
    ref = sk_linear.HuberRegressor(max_iter=1000, tol=1e-8, **params).fit(X, y)
    np.testing.assert_allclose(ours.coef_, ref.coef_, atol=1e-4)
    assert ours.intercept_ == pytest.approx(ref.intercept_, abs=1e-4)
    assert ours.scale_ == pytest.approx(ref.scale_, rel=1e-4)
    np.testing.assert_array_equal(ours.outliers_, ref.outliers_)
    np.testing.assert_allclose(ours.predict(X), ref.predict(X), atol=1e-3)


def test_the_fit_is_the_objectives_minimum() -> None:
    """Every small move of (w, b, σ) away from the fit raises L (it is convex: a minimum)."""
    X, y = heavy_tailed(200, seed=1)
    est = HuberRegressor(alpha=1.0).fit(X, y)
    theta = np.r_[est.coef_, est.intercept_, est.scale_]
    best = huber_objective(theta, X, y, 1.35, 1.0)
    rng = np.random.default_rng(2)
    for _ in range(50):
        moved = theta + 1e-3 * rng.normal(size=theta.size)
        assert huber_objective(moved, X, y, 1.35, 1.0) > best


def test_outliers_pull_less_than_on_least_squares() -> None:
    """Corrupt 5 % of the targets: the Huber fit stays near the true line, the ridge moves."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(400, 3))
    w = np.array([1.0, -2.0, 0.5])
    y = X @ w + 0.1 * rng.normal(size=400)
    bad = rng.choice(400, 20, replace=False)
    y[bad] += 20.0 * np.sign(X[bad, 0])  # outliers aligned with a feature: they bias w₀
    huber = HuberRegressor().fit(X, y)
    ridge = Ridge(alpha=1e-6).fit(X, y)
    assert np.abs(huber.coef_ - w).max() < 0.05
    assert np.abs(ridge.coef_ - w).max() > 0.5
    assert set(np.flatnonzero(huber.outliers_)) >= set(bad)


def test_unit_of_the_target_does_not_matter() -> None:
    """σ is estimated with w, so scaling y scales the fit (alpha = 0) and flags the same rows."""
    X, y = heavy_tailed(200, seed=4)
    a = HuberRegressor(alpha=0.0).fit(X, y)
    b = HuberRegressor(alpha=0.0).fit(X, 1000.0 * y)
    np.testing.assert_allclose(b.coef_, 1000.0 * a.coef_, rtol=1e-5, atol=1e-3)
    np.testing.assert_array_equal(a.outliers_, b.outliers_)


@pytest.mark.parametrize(
    ("param", "value", "message"),
    [
        ("epsilon", 0.9, r"epsilon must be a number in \[1, inf\)"),
        ("alpha", -1.0, r"alpha must be a number in \[0, inf\)"),
        ("max_iter", 0, r"max_iter must be an integer in \[1, inf\)"),
        ("tol", float("nan"), "tol must be a number"),
        ("fit_intercept", "yes", "fit_intercept must be True or False"),
    ],
)
def test_invalid_hyperparameters_name_the_parameter(param: str, value: Any, message: str) -> None:
    X, y = heavy_tailed(20, seed=5)
    with pytest.raises(ValueError, match=message):
        HuberRegressor(**{param: value}).fit(X, y)
