"""model.robust: what mutation testing found the other tests let through (issue 20).

The objective is scikit-learn's Huber loss at any point (not only at the optimum), each
hyperparameter is refused with an error naming it and its range, and the ends of each range
are accepted.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest
from sklearn.linear_model._huber import _huber_loss_and_gradient

from model.robust import HuberRegressor, huber_objective


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
