"""model.explain: what mutation testing found the other tests let through (issue 20).

The explanation's records and prices follow their definitions, contributions of columns from
one input are summed under its name in the order the names first appear. Saabas is checked by
hand on one- and two-split trees (rows exactly at a threshold go left), combinations on
hand-made parts, and every refusal is matched whole.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest

from model.compose import ColumnTransformer, TransformedTargetRegressor
from model.ensemble import (
    HistGradientBoostingRegressor,
    RandomForestRegressor,
    StackingRegressor,
    VotingRegressor,
)
from model.explain import (
    Attribution,
    CannotExplainError,
    Explanation,
    _combine,
    _group,
    attribute,
)
from model.hist import Forest
from model.linear import Ridge
from model.pipeline import Pipeline
from model.preprocessing import PolynomialFeatures, StandardScaler
from model.residual import ResidualRegressor
from model.tree import LEAF, DecisionTreeRegressor


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


# --- stop 26 (s26-mutx): the survivors of a fresh run ------------------------------------------


def test_combine_is_the_intercept_plus_the_weighted_parts_aligned_by_name() -> None:
    """``b = a₀ + Σ ω_k b_k`` and ``c = Σ ω_k c_k``, each part's columns added under its names
    (in order of first sight); exact-linear only if every part is."""
    p = Attribution(
        np.array([1.0, 2.0]), np.array([[1.0, 2.0], [3.0, 4.0]]), ["x", "y"], True, "price"
    )
    q = Attribution(
        np.array([10.0, 20.0]), np.array([[5.0, 6.0], [7.0, 8.0]]), ["z", "x"], False, "price"
    )
    a = _combine([p, q], np.array([2.0, 3.0]), 0.5)
    assert a.names == ["x", "y", "z"] and a.exact_linear is False and a.space == "price"
    np.testing.assert_array_equal(a.baseline, [0.5 + 2.0 + 30.0, 0.5 + 4.0 + 60.0])
    np.testing.assert_array_equal(
        a.contributions, [[2.0 + 18.0, 4.0, 15.0], [6.0 + 24.0, 8.0, 21.0]]
    )
    both = _combine([p, p._replace(baseline=np.array([0.25, 0.5]))], np.array([1.0, 1.0]), 0.0)
    assert both.exact_linear is True and both.names == ["x", "y"]
    np.testing.assert_array_equal(both.baseline, [1.25, 2.5])
    logged = q._replace(space="log")
    message = "a combined model's parts must predict on one scale, not transform it ({'log'})"
    with pytest.raises(CannotExplainError, match=f"^{re.escape(message)}$"):
        _combine([logged], np.array([1.0]), 0.0)


def columns(n: int = 40) -> tuple[dict[str, np.ndarray], np.ndarray]:
    X, y = matrix(n)
    return {"a": X[:, 0], "b": X[:, 1]}, y


def test_pipeline_steps_that_cannot_be_explained_are_named_whole() -> None:
    table, y = columns()
    scaled = Pipeline([("scale", StandardScaler()), ("model", Ridge())])
    scaled.fit(np.column_stack([table["a"], table["b"]]), y)
    message = (
        "pipeline step 'scale' (StandardScaler): only one ColumnTransformer may prepare the "
        "features of an explained model"
    )
    with pytest.raises(CannotExplainError, match=f"^{re.escape(message)}$"):
        attribute(scaled, np.column_stack([table["a"], table["b"]]))
    once = Pipeline(
        [("one", ColumnTransformer([("num", "passthrough", ["a", "b"])])), ("m", Ridge())]
    ).fit(table, y)
    (_, ct), (_, ridge) = once.steps
    twice = Pipeline([("one", ct), ("two", ct), ("m", ridge)])  # a second one is never fitted
    message = message.replace("'scale' (StandardScaler)", "'two' (ColumnTransformer)")
    with pytest.raises(CannotExplainError, match=f"^{re.escape(message)}$"):
        attribute(twice, table)
    poly = Pipeline(
        [
            ("features", ColumnTransformer([("poly", PolynomialFeatures(), ["a", "b"])])),
            ("m", Ridge()),
        ]
    ).fit(table, y)
    with pytest.raises(CannotExplainError) as info:
        attribute(poly, table)
    inner = poly.steps[0][1]
    with pytest.raises(ValueError) as original:
        inner.output_columns()
    assert str(info.value) == f"pipeline step 'features': {original.value}"
    assert info.value.__cause__ is None and info.value.__suppress_context__ is True


def test_switched_off_steps_are_skipped() -> None:
    table, y = columns()
    for off in ("passthrough", None):
        pipe = Pipeline(
            [
                ("off", off),
                ("features", ColumnTransformer([("num", "passthrough", ["a", "b"])])),
                ("model", Ridge()),
            ]
        ).fit(table, y)
        a = attribute(pipe, table)
        assert a.names == ["a", "b"]
        np.testing.assert_allclose(a.baseline + a.contributions.sum(axis=1), pipe.predict(table))


def test_linear_and_cart_refuse_missing_values_the_boosted_trees_take_them() -> None:
    X, y = matrix()
    holes = X.copy()
    holes[3, 1] = np.nan
    message = "X: column 1 holds missing or infinite values (1 of 40); impute them first"
    for est in (Ridge().fit(X, y), DecisionTreeRegressor(max_depth=2).fit(X, y)):
        with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
            attribute(est, holes, ["a", "b"])
    hgb = HistGradientBoostingRegressor(max_iter=3).fit(X, y)
    a = attribute(hgb, holes, ["a", "b"])
    np.testing.assert_allclose(a.baseline + a.contributions.sum(axis=1), hgb.predict(holes))
    with pytest.raises(ValueError, match="infinite"):
        attribute(hgb, np.where(np.isnan(holes), np.inf, holes), ["a", "b"])


def test_votes_and_stacks_hand_the_names_to_their_parts() -> None:
    X, y = matrix()
    parts = [("r", Ridge(alpha=0.1)), ("t", DecisionTreeRegressor(max_depth=2))]
    for est in (
        VotingRegressor(parts, weights=[3, 1]),
        ResidualRegressor(parts),
        StackingRegressor(parts, Ridge(alpha=0.01), cv=2),
    ):
        est.fit(X, y)
        a = attribute(est, X, ["p", "q"])
        assert a.names == ["p", "q"] and a.exact_linear is False
        np.testing.assert_allclose(
            a.baseline + a.contributions.sum(axis=1), est.predict(X), rtol=1e-12
        )


def test_cart_sends_a_row_at_the_threshold_left_saabas_by_hand() -> None:
    """Root 7.5 split at 1.5 into a leaf of 0 and a node of 15 split at 2.5 into 10 and 20: a
    row at 1.5 goes left (−7.5 on the split feature), one at 2.5 reaches 10 (+7.5 − 5)."""
    X = np.array([[0.0, 7.0], [1.0, 7.0], [2.0, 7.0], [3.0, 7.0]])
    tree = DecisionTreeRegressor(max_depth=2).fit(X, [0.0, 0.0, 10.0, 20.0])
    assert tree.feature_.tolist()[:3] == [0, LEAF, 0] and tree.threshold_[[0, 2]].tolist() == [
        1.5,
        2.5,
    ]
    a = attribute(tree, np.array([[1.5, 7.0], [2.5, 7.0], [1.6, 7.0], [2.6, 7.0]]), ["a", "b"])
    np.testing.assert_array_equal(a.baseline, [7.5] * 4)
    np.testing.assert_array_equal(a.contributions[:, 1], 0.0)
    np.testing.assert_array_equal(a.contributions[:, 0], [-7.5, 2.5, 2.5, 12.5])
    # rows that all stop at the depth-1 leaf: the walk ends before the tree's depth
    a = attribute(tree, np.array([[1.5, 7.0], [0.0, 7.0]]), ["a", "b"])
    np.testing.assert_array_equal(a.contributions, [[-7.5, 0.0], [-7.5, 0.0]])


def one_split_boosting() -> tuple[HistGradientBoostingRegressor, np.ndarray]:
    x = np.arange(40.0)
    X = np.column_stack([np.full(40, 3.0), x])  # column 1 splits: its step is credited to 1
    y = np.where(x < 20, 0.0, 10.0)
    est = HistGradientBoostingRegressor(max_iter=1, max_leaf_nodes=2, learning_rate=1.0)
    return est.fit(X, y), X


def test_boosting_sends_a_row_at_the_threshold_left_saabas_by_hand() -> None:
    est, _ = one_split_boosting()
    (t,) = est.trees_
    assert t.feature[0] == 1 and t.left[0] == 1
    thr = float(t.threshold[0])
    rows = np.array([[3.0, thr], [3.0, np.nextafter(thr, np.inf)]])
    a = attribute(est, rows, ["a", "b"])
    root, left, right = (float(v) for v in t.value[:3])
    np.testing.assert_array_equal(a.baseline, [est.baseline_ + root] * 2)
    np.testing.assert_array_equal(a.contributions, [[0.0, left - root], [0.0, right - root]])
    np.testing.assert_allclose(a.baseline + a.contributions.sum(axis=1), est.predict(rows))


def test_a_forest_is_the_mean_of_its_trees_saabas_by_hand() -> None:
    x = np.arange(40.0)
    X = np.column_stack([np.full(40, 3.0), x])
    est = RandomForestRegressor(n_estimators=2, max_depth=1, bootstrap=False, random_state=0)
    est.fit(X, np.where(x < 20, 0.0, 10.0))
    rows = np.array([[3.0, 5.0], [3.0, 30.0]])
    a = attribute(est, rows, ["a", "b"])
    walk = [
        t.value[t.left[0] + (0 if r[1] <= t.threshold[0] else 1)] - t.value[0]
        for r in rows
        for t in est.trees_
    ]
    roots = sum(float(t.value[0]) for t in est.trees_)
    np.testing.assert_allclose(a.baseline, [est.baseline_ + roots / 2] * 2, rtol=1e-15)
    np.testing.assert_allclose(
        a.contributions,
        [[0.0, (walk[0] + walk[1]) / 2], [0.0, (walk[2] + walk[3]) / 2]],
        rtol=1e-15,
    )
    np.testing.assert_allclose(a.baseline + a.contributions.sum(axis=1), est.predict(rows))


def test_a_model_with_no_trees_explains_as_its_baseline() -> None:
    """A boosted model cut back to no trees predicts ``F₀`` everywhere: all of it baseline."""
    est, X = one_split_boosting()
    est.trees_ = []
    est.forest_ = Forest.build([], est.bin_mapper_)
    a = attribute(est, X[:3], ["a", "b"])
    assert a.baseline.dtype == np.float64 and a.contributions.shape == (3, 2)
    np.testing.assert_array_equal(a.baseline, [est.baseline_] * 3)
    np.testing.assert_array_equal(a.contributions, np.zeros((3, 2)))


def test_one_categorical_split_goes_by_its_left_set_saabas_by_hand() -> None:
    """One tree, one split: categories 1 and 3 left (+5 from a root of 0), 0 and 2 right."""
    code = np.tile(np.arange(4.0), 10)
    X = np.column_stack([code, np.full(40, 2.0)])
    est = HistGradientBoostingRegressor(
        max_iter=1, max_leaf_nodes=2, learning_rate=1.0, categorical_features=[0]
    ).fit(X, np.where(np.isin(code, [1, 3]), 10.0, 0.0))
    assert est.forest_.cat_left.shape[0] == 1
    rows = np.array([[0.0, 2.0], [1.0, 2.0], [2.0, 2.0], [3.0, 2.0]])
    a = attribute(est, rows, ["a", "b"])
    np.testing.assert_array_equal(a.baseline, [5.0] * 4)
    np.testing.assert_array_equal(a.contributions, [[-5.0, 0], [5.0, 0], [-5.0, 0], [5.0, 0]])


def test_one_part_combines_as_itself_and_a_pipeline_takes_the_names_given() -> None:
    X, y = matrix()
    p = Attribution(np.array([1.0]), np.array([[2.0, 3.0]]), ["x", "y"], True, "price")
    a = _combine([p], np.array([2.0]), 1.0)
    assert a.names == ["x", "y"]
    np.testing.assert_array_equal(a.baseline, [3.0])
    np.testing.assert_array_equal(a.contributions, [[4.0, 6.0]])
    pipe = Pipeline([("model", Ridge())]).fit(X, y)
    a = attribute(pipe, X, ["p", "q"])
    assert a.names == ["p", "q"]
    np.testing.assert_allclose(a.contributions, X * pipe.steps[0][1].coef_, rtol=1e-15)


def test_only_passthrough_and_none_steps_are_skipped() -> None:
    """A step given as any other string (never fitted) is named, not skipped."""
    table, y = columns()
    fitted = Pipeline(
        [("features", ColumnTransformer([("num", "passthrough", ["a", "b"])])), ("m", Ridge())]
    ).fit(table, y)
    odd = Pipeline([("odd", "drop"), *fitted.steps])
    message = (
        "pipeline step 'odd' (str): only one ColumnTransformer may prepare the features of an "
        "explained model"
    )
    with pytest.raises(CannotExplainError, match=f"^{re.escape(message)}$"):
        attribute(odd, table)


def test_a_stack_over_a_tree_is_refused_in_words_named_whole() -> None:
    X, y = matrix()
    stack = StackingRegressor([("r", Ridge())], DecisionTreeRegressor(max_depth=2), cv=2)
    message = (
        "stacking's final estimator DecisionTreeRegressor is not linear: its inputs' "
        "contributions do not add up"
    )
    with pytest.raises(CannotExplainError, match=f"^{re.escape(message)}$"):
        attribute(stack.fit(X, y), X, ["a", "b"])
