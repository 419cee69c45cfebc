"""model.robust: what mutation testing found the other tests let through (issue 20).

The objective is scikit-learn's Huber loss at any point (not only at the optimum), each
hyperparameter is refused with an error naming it and its range, and the ends of each range
are accepted.
"""

from __future__ import annotations

import itertools
import re
from typing import Any

import numpy as np
import pytest
from sklearn import linear_model as sk_linear
from sklearn.linear_model._huber import _huber_loss_and_gradient

import model.robust as robust
from model.robust import HuberRegressor, _newton_step, huber_objective


def data(n: int = 40, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + 3.0 + rng.standard_t(2, size=n)
    return X, y


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("epsilon", [1.0, 1.35, 3.0])
def test_the_objective_is_sklearns_huber_loss_anywhere(seed: int, epsilon: float) -> None:
    X, y = data(seed=seed)
    rng = np.random.default_rng(100 + seed)
    theta = np.concatenate([rng.normal(size=4), [rng.uniform(0.2, 3.0)]])
    ref, _ = _huber_loss_and_gradient(theta, X, y, epsilon, 0.7, np.ones(y.size))
    assert huber_objective(theta, X, y, epsilon, 0.7) == pytest.approx(ref, rel=1e-12)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"epsilon": 0.99}, "epsilon must be a number in [1, inf), got 0.99"),
        ({"epsilon": float("inf")}, "epsilon must be a number in [1, inf), got inf"),
        ({"alpha": -1e-12}, "alpha must be a number in [0, inf), got -1e-12"),
        ({"max_iter": 0}, "max_iter must be an integer in [1, inf), got 0"),
        ({"max_iter": 1.0}, "max_iter must be an integer in [1, inf), got 1.0"),
        ({"tol": -1.0}, "tol must be a number in [0, inf), got -1.0"),
        ({"fit_intercept": 1}, "fit_intercept must be True or False, got 1"),
    ],
)
def test_each_hyperparameter_is_refused_by_name(params: dict[str, Any], message: str) -> None:
    X, y = data()
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        HuberRegressor(**params).fit(X, y)


def test_the_ends_of_each_range_are_accepted() -> None:
    X, y = data()
    model = HuberRegressor(epsilon=1.0, alpha=0.0, tol=0.0, max_iter=1).fit(X, y)
    assert model.n_iter_ == 1
    assert model.coef_.shape == (3,)


def sklearn_gradient(theta: np.ndarray, X: np.ndarray, y: np.ndarray, eps: float, alpha: float):  # type: ignore[no-untyped-def]
    return _huber_loss_and_gradient(theta, X, y, eps, alpha, np.ones(y.size))[1]


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("intercept", [True, False])
def test_the_newton_step_uses_sklearns_gradient_and_the_true_hessian(
    seed: int, intercept: bool
) -> None:
    X, y = data(seed=seed)
    rng = np.random.default_rng(200 + seed)
    theta = np.concatenate([rng.normal(size=3), [rng.normal() if intercept else 0.0], [1.7]])
    eps, alpha = 1.35, 0.3
    grad, step = _newton_step(theta, X, y, eps, alpha, intercept)
    sk_theta = theta if intercept else np.delete(theta, 3)
    ref = sklearn_gradient(sk_theta, X, y, eps, alpha)
    np.testing.assert_allclose(grad if intercept else np.delete(grad, 3), ref, rtol=1e-10)
    if not intercept:
        assert grad[3] == 0.0 and step[3] == 0.0  # b stays 0
    # The Hessian by central differences of the gradient; no residual sits near ±εσ here.
    h = 1e-6
    free = [i for i in range(5) if intercept or i != 3]
    H = np.zeros((5, 5))
    for i in free:
        e = np.zeros(5)
        e[i] = h
        H[:, i] = (
            _newton_step(theta + e, X, y, eps, alpha, intercept)[0]
            - _newton_step(theta - e, X, y, eps, alpha, intercept)[0]
        ) / (2 * h)
    np.testing.assert_allclose((H @ step)[free], -grad[free], rtol=1e-5, atol=1e-6)


def test_n_iter_counts_newton_steps_and_max_iter_bounds_them() -> None:
    X, y = data()
    full = HuberRegressor(tol=0.0, max_iter=100).fit(X, y)
    assert 2 <= full.n_iter_ < 100
    for k in (1, 2):
        part = HuberRegressor(tol=0.0, max_iter=k).fit(X, y)
        assert part.n_iter_ == k
        assert huber_objective(
            np.r_[part.coef_, part.intercept_, part.scale_], X, y, 1.35, 1e-4
        ) > huber_objective(np.r_[full.coef_, full.intercept_, full.scale_], X, y, 1.35, 1e-4)


def test_tol_stops_on_the_largest_gradient_entry_per_row() -> None:
    X, y = data(200, seed=1)
    loose = HuberRegressor(tol=1e-1).fit(X, y)
    theta = np.r_[loose.coef_, loose.intercept_, loose.scale_]
    grad, _ = _newton_step(theta, X, y, 1.35, 1e-4, True)
    tight = HuberRegressor(tol=0.0).fit(X, y)
    assert loose.n_iter_ < tight.n_iter_
    # it stops at the first iterate whose gradient is within tol·n (the check that stops it is
    # counted as an iteration): the iterate after n_iter_ - 1 steps, not the one before
    assert np.max(np.abs(grad)) <= 1e-1 * 200
    same = HuberRegressor(tol=0.0, max_iter=loose.n_iter_ - 1).fit(X, y)
    np.testing.assert_array_equal(same.coef_, loose.coef_)
    before = HuberRegressor(tol=0.0, max_iter=loose.n_iter_ - 2).fit(X, y)
    grad_before, _ = _newton_step(
        np.r_[before.coef_, before.intercept_, before.scale_], X, y, 1.35, 1e-4, True
    )
    assert np.max(np.abs(grad_before)) > 1e-1 * 200


def test_outliers_are_the_rows_beyond_epsilon_scales() -> None:
    X, y = data(100, seed=2)
    model = HuberRegressor().fit(X, y)
    r = np.abs(y - model.predict(X))
    np.testing.assert_array_equal(model.outliers_, r > 1.35 * model.scale_)
    assert 0 < model.outliers_.sum() < 100


def test_a_constant_target_is_fitted_exactly() -> None:
    X, _ = data(30, seed=3)
    model = HuberRegressor().fit(X, np.full(30, 7.0))
    assert model.intercept_ == pytest.approx(7.0, abs=1e-6)
    np.testing.assert_allclose(model.coef_, 0.0, atol=1e-6)
    assert 0 < model.scale_ < 1e-2 and not model.outliers_.any()


def test_defaults_are_sklearns() -> None:
    ours = HuberRegressor().get_params()
    ref = sk_linear.HuberRegressor().get_params()
    assert ours == {name: ref[name] for name in ours}
    assert set(ours) == {"epsilon", "max_iter", "alpha", "fit_intercept", "tol"}


def start(X: np.ndarray, y: np.ndarray, intercept: bool = True) -> np.ndarray:
    """The documented start: w = 0, b the median, σ the mean absolute deviation from b (at
    least 10⁻³·(1 + |b|))."""
    b = float(np.median(y)) if intercept else 0.0
    return np.r_[np.zeros(X.shape[1]), b, max(float(np.mean(np.abs(y - b))), 1e-3 * (1 + abs(b)))]


@pytest.mark.parametrize("intercept", [True, False])
def test_the_start_is_the_median_and_the_mean_absolute_deviation(intercept: bool) -> None:
    X, y = data(41, seed=4)
    y = y + 10.0  # far from 0: b and σ differ from their no-intercept values
    at_start = HuberRegressor(tol=1e300, fit_intercept=intercept).fit(X, y)  # stops at once
    theta = start(X, y, intercept)
    np.testing.assert_array_equal(at_start.coef_, 0.0)
    assert (at_start.intercept_, at_start.scale_) == (theta[3], theta[4])
    assert at_start.n_iter_ == 1
    flat = HuberRegressor(tol=1e300).fit(X, np.full(41, 7.0))  # no spread: the floor
    assert flat.scale_ == 1e-3 * 8.0


def test_a_gradient_exactly_at_tol_stops_the_fit() -> None:
    X, y = data(32, seed=5)
    grad, _ = _newton_step(start(X, y), X, y, 1.35, 1e-4, True)
    tol = float(np.max(np.abs(grad))) / 32  # exact: 32 is a power of 2
    model = HuberRegressor(tol=tol).fit(X, y)
    assert model.n_iter_ == 1 and model.intercept_ == start(X, y)[3]


def scripted_fit(
    monkeypatch: pytest.MonkeyPatch, script: Any
) -> tuple[HuberRegressor, np.ndarray, np.ndarray, list[float]]:
    """One Newton step from the start, with L at the line search's trial points given by
    ``script(t, bound, L0)``, ``bound`` being Armijo's L₀ + 10⁻⁴·t·∇L₀·δ; returns the model,
    the start, the Newton direction δ and the trial t's."""
    X, y = data(40, seed=6)
    theta0 = start(X, y)
    grad, step = _newton_step(theta0, X, y, 1.35, 1e-4, True)
    L0 = huber_objective(theta0, X, y, 1.35, 1e-4)
    i = int(np.argmax(np.abs(step)))
    trials: list[float] = []

    def objective(theta: np.ndarray, *args: Any) -> float:
        if np.array_equal(theta, theta0):
            return L0
        t = float(2.0 ** np.round(np.log2((theta[i] - theta0[i]) / step[i])))  # a power of 2
        trials.append(t)
        return float(script(t, L0 + 1e-4 * t * float(grad @ step), L0))

    monkeypatch.setattr(robust, "huber_objective", objective)
    model = HuberRegressor(max_iter=1, tol=0.0).fit(X, y)
    return model, theta0, step, trials


def fitted(model: HuberRegressor) -> np.ndarray:
    return np.r_[model.coef_, model.intercept_, model.scale_]


def first_t(theta0: np.ndarray, step: np.ndarray) -> float:
    """The largest t = 2⁻ᵏ that keeps the scale positive."""
    t = 1.0
    while theta0[-1] + t * step[-1] <= 0:
        t /= 2
    return t


def test_the_first_trial_is_the_longest_step_that_keeps_the_scale_positive(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model, theta0, step, trials = scripted_fit(monkeypatch, lambda t, bound, L0: L0 - 1.0)
    t0 = first_t(theta0, step)
    assert trials == [t0] and t0 < 1.0  # from the start, Newton's σ step overshoots below 0
    np.testing.assert_allclose(fitted(model), theta0 + t0 * step, rtol=1e-12)


def test_armijos_rule_refuses_no_decrease_and_takes_the_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    X, y = data(40, seed=6)
    theta0 = start(X, y)
    t0 = first_t(theta0, _newton_step(theta0, X, y, 1.35, 1e-4, True)[1])

    def script(t: float, bound: float, L0: float) -> float:
        return {t0 / 2: L0, t0 / 4: bound}.get(t, 1e9)  # no decrease, then the bound exactly

    model, theta0, step, trials = scripted_fit(monkeypatch, script)
    assert trials == [t0, t0 / 2, t0 / 4]
    np.testing.assert_allclose(fitted(model), theta0 + t0 / 4 * step, rtol=1e-12)


@pytest.mark.parametrize("shift", [0.0, 1e3])  # |L| below 1 per row, and far above
def test_newton_stops_at_the_first_step_that_lowers_l_by_rounding_only(shift: float) -> None:
    X, y = data(300, seed=7)
    y = y + shift
    n_iter = HuberRegressor(tol=0.0).fit(X, y).n_iter_  # tol 0: the gradient never stops it
    L = []
    for k in range(1, n_iter + 1):
        model = HuberRegressor(tol=0.0, max_iter=k).fit(X, y)
        L.append(huber_objective(fitted(model), X, y, 1.35, 1e-4))
    L0 = huber_objective(start(X, y), X, y, 1.35, 1e-4)
    L = [L0, *L]
    drops = [(a - b) / max(1.0, abs(a)) for a, b in itertools.pairwise(L)]
    assert drops[-1] <= 1e-12
    assert all(drop > 1e-12 for drop in drops[:-1])


@pytest.mark.parametrize("intercept", [True, False])
def test_a_singular_newton_system_falls_back_to_least_squares(
    monkeypatch: pytest.MonkeyPatch, intercept: bool
) -> None:
    X, y = data(60, seed=8)
    expected = HuberRegressor(fit_intercept=intercept).fit(X, y)

    def singular(*args: Any, **kwargs: Any) -> None:
        raise np.linalg.LinAlgError("Singular matrix")

    monkeypatch.setattr(np.linalg, "solve", singular)
    got = HuberRegressor(fit_intercept=intercept).fit(X, y)
    np.testing.assert_allclose(fitted(got), fitted(expected), rtol=1e-7, atol=1e-9)
