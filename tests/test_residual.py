"""ResidualRegressor: each model fitted to the residuals of the ones before it, summed."""

from __future__ import annotations

import numpy as np
import pytest

from model.base import clone
from model.ensemble import HistGradientBoostingRegressor
from model.linear import LinearRegression, Ridge
from model.residual import ResidualRegressor
from model.tree import DecisionTreeRegressor


def _data(n: int, seed: int, spread: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """A linear trend in x0 (trees cannot extrapolate it) plus a step in x1 (a line cannot
    fit it); x0 in ``[-spread, spread]``."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, size=(n, 3))
    X[:, 0] *= spread
    y = 3.0 * X[:, 0] + np.where(X[:, 1] > 0.2, 2.0, 0.0) + rng.normal(0, 0.1, n)
    return X, y


def test_each_model_fits_the_residuals_of_those_before() -> None:
    X, y = _data(300, 0)
    chain = ResidualRegressor(
        [
            ("ridge", Ridge(alpha=1.0)),
            ("tree", DecisionTreeRegressor(max_depth=3)),
            ("line", LinearRegression()),
        ]
    ).fit(X, y)
    first = Ridge(alpha=1.0).fit(X, y)
    r1 = y - first.predict(X)
    second = DecisionTreeRegressor(max_depth=3).fit(X, r1)
    third = LinearRegression().fit(X, r1 - second.predict(X))
    X_new, _ = _data(50, 1)
    expected = first.predict(X_new) + second.predict(X_new) + third.predict(X_new)
    np.testing.assert_allclose(chain.predict(X_new), expected, rtol=1e-12, atol=1e-12)
    assert list(chain.named_estimators_) == ["ridge", "tree", "line"]
    np.testing.assert_allclose(chain.named_estimators_["ridge"].coef_, first.coef_)


def test_a_line_then_trees_beats_either_alone() -> None:
    X, y = _data(600, 2)
    X_new, y_new = _data(400, 3, spread=1.3)  # partly outside the training range

    def rmse(model: object) -> float:
        pred = clone(model).fit(X, y).predict(X_new)
        return float(np.sqrt(np.mean((pred - y_new) ** 2)))

    trees = HistGradientBoostingRegressor(max_iter=100, max_leaf_nodes=4, random_state=0)
    line = LinearRegression()
    chained = rmse(ResidualRegressor([("line", line), ("trees", trees)]))
    assert chained < 0.5 * rmse(line)
    assert chained < 0.5 * rmse(trees)


def test_params_address_the_models_by_name() -> None:
    chain = ResidualRegressor([("ridge", Ridge()), ("tree", DecisionTreeRegressor())])
    chain.set_params(ridge__alpha=5.0, tree__max_depth=2)
    assert chain.get_params()["ridge__alpha"] == 5.0
    assert chain.estimators[1][1].max_depth == 2


@pytest.mark.parametrize(
    ("estimators", "message"),
    [
        ([], "non-empty list"),
        ([Ridge()], r"each estimator must be \(name, estimator\)"),
        ([("a", Ridge()), ("a", Ridge())], "unique"),
        ([("a__b", Ridge())], "without '__'"),
    ],
)
def test_bad_estimators_are_named(estimators: list, message: str) -> None:
    X, y = _data(20, 4)
    with pytest.raises(ValueError, match=message):
        ResidualRegressor(estimators).fit(X, y)
