"""model.explain: what mutation testing found the other tests let through (issue 20).

The explanation's records and prices follow their definitions, contributions of columns from
one input are summed under its name in the order the names first appear.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest

from model.compose import TransformedTargetRegressor
from model.ensemble import VotingRegressor
from model.explain import CannotExplainError, Explanation, _group, attribute
from model.linear import Ridge
from model.tree import DecisionTreeRegressor


def test_group_sums_columns_of_one_name_in_order_of_first_sight() -> None:
    c = np.array([[1.0, 2.0, 4.0, 8.0], [16.0, 32.0, 64.0, 128.0]])
    grouped, names = _group(c, ["b", "a", "b", "c"])
    assert names == ["b", "a", "c"]
    np.testing.assert_array_equal(grouped, [[5.0, 2.0, 8.0], [80.0, 32.0, 128.0]])
    same, names = _group(c, ["w", "x", "y", "z"])
    assert same is c and names == ["w", "x", "y", "z"]


def test_records_and_prices_follow_the_definitions() -> None:
    b = np.array([1.0, 2.0])
    c = np.array([[0.5, -0.25], [0.0, 1.0]])
    for space, inverse in (("price", lambda s: s), ("log", np.exp), ("log1p", np.expm1)):
        e = Explanation(space, "saabas", ["a", "b"], b, c)  # type: ignore[arg-type]
        np.testing.assert_allclose(e.prices(), inverse(np.array([1.25, 3.0])), rtol=1e-15)
        assert e.records() == [
            {
                "space": space,
                "method": "saabas",
                "baseline": 1.0,
                "contributions": {"a": 0.5, "b": -0.25},
            },
            {
                "space": space,
                "method": "saabas",
                "baseline": 2.0,
                "contributions": {"a": 0.0, "b": 1.0},
            },
        ]


class _OwnPredict(Ridge):
    def predict(self, X: Any) -> Any:
        return super().predict(X) + 1.0


def matrix(n: int = 40) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 2))
    return X, X @ [1.0, -2.0] + 3.0


def test_what_cannot_be_explained_is_named_whole() -> None:
    X, y = matrix()
    message = "Ridge takes a matrix: it needs a ColumnTransformer before it to name its columns"
    with pytest.raises(CannotExplainError, match=f"^{re.escape(message)}$"):
        attribute(Ridge().fit(X, y), X)
    message = "_OwnPredict has no additive explanation here"
    with pytest.raises(CannotExplainError, match=f"^{re.escape(message)}$"):
        attribute(_OwnPredict().fit(X, y), X, ["a", "b"])
    twice = TransformedTargetRegressor(TransformedTargetRegressor(Ridge(), func="log"), func="log")
    twice.fit(X, np.exp(y / 10.0) + 1.0)
    with pytest.raises(CannotExplainError, match=r"^a target transform inside another one$"):
        attribute(twice, X, ["a", "b"])


def test_a_linear_model_of_a_matrix_explains_as_weight_times_column() -> None:
    X, y = matrix()
    est = Ridge(alpha=0.5).fit(X, y)
    a = attribute(est, X, ["a", "a"])
    assert a.names == ["a"] and a.exact_linear is True and a.space == "price"
    np.testing.assert_allclose(a.contributions[:, 0], X @ est.coef_, rtol=1e-12)
    np.testing.assert_allclose(a.baseline + a.contributions[:, 0], est.predict(X), rtol=1e-12)


def test_exact_linear_only_when_every_part_is_linear() -> None:
    X, y = matrix()
    vote = VotingRegressor([("a", Ridge(alpha=0.1)), ("b", Ridge(alpha=2.0))]).fit(X, y)
    a = attribute(vote, X, ["a", "b"])
    assert a.exact_linear is True
    np.testing.assert_allclose(a.baseline + a.contributions.sum(axis=1), vote.predict(X))
    tree = attribute(DecisionTreeRegressor(max_depth=2).fit(X, y), X, ["a", "b"])
    assert tree.exact_linear is False
