"""model.tree: what mutation testing found the other tests let through (issue 20).

The trees' defaults are scikit-learn's, a depth of 0 is a single leaf, and every fitted array
(structure, values, impurities, sizes, importances) equals scikit-learn's on data where no two
splits tie.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest
from sklearn import tree as sk_tree

from model import tree as tree_module
from model.base import NotFittedError
from model.tree import DecisionTreeClassifier, DecisionTreeRegressor


def test_defaults_are_sklearns() -> None:
    for ours, ref in (
        (DecisionTreeRegressor(), sk_tree.DecisionTreeRegressor()),
        (DecisionTreeClassifier(), sk_tree.DecisionTreeClassifier()),
    ):
        params = ours.get_params()
        assert params == {k: ref.get_params()[k] for k in params}


def test_max_depth_zero_is_one_leaf_predicting_the_mean() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    y = X[:, 0] * 3.0 + rng.normal(size=40)
    tree = DecisionTreeRegressor(max_depth=0).fit(X, y)
    assert tree.node_count_ == 1 and tree.max_depth_ == 0
    np.testing.assert_allclose(tree.predict(X[:5]), np.full(5, y.mean()))
    np.testing.assert_allclose(tree.impurity_, [y.var()])


def test_a_fit_refused_for_its_parameters_leaves_the_tree_unfitted() -> None:
    """The classifier learns its classes before the parameters are checked; a refused fit
    still leaves a tree that refuses to predict as unfitted."""
    X = np.arange(12.0).reshape(6, 2)
    tree = DecisionTreeClassifier(min_samples_leaf=0)
    with pytest.raises(ValueError, match=r"^min_samples_leaf must be an integer"):
        tree.fit(X, [0, 1, 0, 1, 0, 1])
    for method in (tree.predict, tree.predict_proba, tree.apply):
        with pytest.raises(NotFittedError, match=r"^this DecisionTreeClassifier instance is not"):
            method(X)


def test_features_of_at_most_hist_max_bins_values_are_binned_the_others_listed() -> None:
    n = tree_module.HIST_MAX_BINS + 1
    base = np.arange(float(n))
    at_limit = base.copy()
    at_limit[-1] = at_limit[0]  # exactly HIST_MAX_BINS distinct values
    Xt = np.vstack([at_limit, base[::-1], np.zeros(n), base])
    f = tree_module._Features.of(Xt)
    np.testing.assert_array_equal(f.binned, [0, 2])
    np.testing.assert_array_equal(f.listed, [1, 3])
    np.testing.assert_array_equal(f.listed_x, Xt[[1, 3]])
    np.testing.assert_array_equal(f.order, np.argsort(Xt[[1, 3]], axis=1, kind="stable"))
    np.testing.assert_array_equal(f.offset, [0, n - 1, n])
    np.testing.assert_array_equal(f.bin_value, np.append(base[:-1], 0.0))


@pytest.mark.parametrize("max_bins", [0, 10**9])
def test_fit_divides_by_an_empty_side_without_a_warning(monkeypatch: Any, max_bins: int) -> None:
    """A candidate with no row on one side scores inf or NaN and is masked: silently."""
    monkeypatch.setattr(tree_module, "HIST_MAX_BINS", max_bins)
    rng = np.random.default_rng(1)
    X = rng.integers(0, 5, size=(60, 3)).astype(float)
    y = X[:, 0] - X[:, 1] + rng.normal(size=60)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        DecisionTreeRegressor(random_state=0).fit(X, y)
        DecisionTreeClassifier(random_state=0).fit(X, y > 0)


@pytest.mark.parametrize("max_bins", [0, 10**9])
def test_a_midpoint_rounded_up_to_the_right_value_is_replaced_by_the_left(
    monkeypatch: Any, max_bins: int
) -> None:
    """Between two adjacent floats whose midpoint rounds (half to even) to the right one,
    the threshold is the left one (scikit-learn's rule, which it applies in float32, where
    these two values are one): the rows are still split."""
    monkeypatch.setattr(tree_module, "HIST_MAX_BINS", max_bins)
    a = 1.0 + 2.0**-52
    b = np.nextafter(a, 2.0)
    assert (a + b) / 2.0 == b
    X = np.array([[a], [b], [a], [b]])
    y = np.array([0.0, 1.0, 0.0, 1.0])
    ours = DecisionTreeRegressor().fit(X, y)
    assert ours.node_count_ == 3 and ours.threshold_[0] == a
    np.testing.assert_array_equal(ours.predict(X), y)


@pytest.mark.parametrize("max_bins", [0, 10**9])
def test_nodes_of_equal_rows_with_different_targets_stay_leaves(
    monkeypatch: Any, max_bins: int
) -> None:
    """A node whose rows all have the same x but not the same y may split (it is not pure)
    yet has no threshold: it stays a leaf, whichever place it has in its level, while the
    other nodes of the level split. Fully grown, the tree predicts each distinct row's mean."""
    monkeypatch.setattr(tree_module, "HIST_MAX_BINS", max_bins)
    for seed in range(4):
        rng = np.random.default_rng(seed)
        X = rng.integers(0, 4, size=(80, 2)).astype(float)
        y = X[:, 0] * 10 + X[:, 1] + rng.normal(size=80)
        tree = DecisionTreeRegressor(random_state=seed).fit(X, y)
        keys = X[:, 0] * 4 + X[:, 1]
        means = {k: y[keys == k].mean() for k in np.unique(keys)}
        np.testing.assert_allclose(tree.predict(X), [means[k] for k in keys], rtol=1e-12)
        leaves = tree.feature_ == -1
        assert leaves.sum() == len(means) and tree.node_count_ == 2 * len(means) - 1
        assert tree.n_node_samples_.min() >= 1
        assert tree.max_depth_ == depths(tree).max()  # the leaves' depth, no empty level


def test_a_split_at_the_first_value_of_a_later_binned_feature() -> None:
    rng = np.random.default_rng(3)
    X = np.column_stack([rng.integers(100, 110, 200), rng.integers(0, 3, 200)]).astype(float)
    y = 10.0 * (X[:, 1] == 0) + 0.01 * rng.normal(size=200)
    ours = DecisionTreeRegressor(max_depth=1).fit(X, y)
    ref = sk_tree.DecisionTreeRegressor(max_depth=1).fit(X, y)
    assert ours.feature_[0] == ref.tree_.feature[0] == 1
    assert ours.threshold_[0] == ref.tree_.threshold[0] == 0.5
    np.testing.assert_allclose(ours.predict(X), ref.predict(X), rtol=1e-12)


def depths(tree: DecisionTreeRegressor) -> np.ndarray:
    depth = np.zeros(tree.node_count_, dtype=int)
    for v in range(tree.node_count_):  # pre-order: a parent comes before its children
        if tree.feature_[v] != -1:
            depth[[tree.children_left_[v], tree.children_right_[v]]] = depth[v] + 1
    return depth


def test_importances_sum_to_one_whatever_the_scale_of_the_target() -> None:
    rng = np.random.default_rng(4)
    X = rng.normal(size=(100, 3))
    y = 1e-3 * (X[:, 0] + 0.5 * X[:, 1])
    ours = DecisionTreeRegressor(max_depth=3, random_state=0).fit(X, y)
    ref = sk_tree.DecisionTreeRegressor(max_depth=3, random_state=0).fit(X, y)
    assert ours.feature_importances_.sum() == pytest.approx(1.0, rel=1e-12)
    np.testing.assert_allclose(ours.feature_importances_, ref.feature_importances_, atol=1e-9)
