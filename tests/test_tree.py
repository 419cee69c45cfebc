"""model.tree against scikit-learn's CART (same criterion, same stopping rules)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray
from sklearn import datasets
from sklearn import tree as sk_tree
from sklearn.model_selection import KFold, cross_val_score

from model import tree as tree_module
from model.base import NotFittedError
from model.tree import DecisionTreeClassifier, DecisionTreeRegressor

Data = tuple[NDArray[np.float64], NDArray[Any]]


def continuous(n: int, d: int, seed: int, classes: int = 0) -> Data:
    """Random continuous features (no tied values, so no tied splits) and a noisy target.

    The features are rounded to float32 because scikit-learn's trees work in float32: then
    both implementations see the same numbers and must grow the same tree.
    """
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32).astype(np.float64)
    signal = np.sin(2 * X[:, 0]) + X[:, 1] ** 2 - X[:, 2] * X[:, 3] + 0.3 * rng.normal(size=n)
    if classes:
        return X, np.digitize(signal, np.quantile(signal, np.linspace(0, 1, classes + 1)[1:-1]))
    return X, signal


def assert_same_tree(ours: Any, ref: Any) -> None:
    t = ref.tree_
    leaf = t.children_left == -1
    np.testing.assert_array_equal(ours.children_left_, t.children_left)
    np.testing.assert_array_equal(ours.children_right_, t.children_right)
    np.testing.assert_array_equal(ours.feature_[~leaf], t.feature[~leaf])
    np.testing.assert_allclose(ours.threshold_[~leaf], t.threshold[~leaf], rtol=1e-12)
    np.testing.assert_array_equal(ours.n_node_samples_, t.n_node_samples)
    np.testing.assert_allclose(ours.impurity_, t.impurity, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ours.feature_importances_, ref.feature_importances_, atol=1e-9)


@pytest.mark.parametrize(
    "params",
    [
        {"max_depth": 3},
        {"max_depth": 8, "min_samples_leaf": 5},
        {"min_samples_split": 30},
    ],
)
def test_regressor_grows_sklearns_tree(params: dict[str, Any]) -> None:
    X, y = continuous(300, 6, seed=0)
    ours = DecisionTreeRegressor(**params, random_state=0).fit(X, y)
    ref = sk_tree.DecisionTreeRegressor(**params, random_state=0).fit(X, y)
    assert_same_tree(ours, ref)
    np.testing.assert_allclose(ours.value_[:, 0], ref.tree_.value[:, 0, 0], rtol=1e-9)
    X_new = continuous(200, 6, seed=1)[0]
    np.testing.assert_allclose(ours.predict(X_new), ref.predict(X_new), rtol=1e-9)
    np.testing.assert_array_equal(ours.apply(X_new), ref.apply(X_new))


def test_fully_grown_regressor_makes_sklearns_partition() -> None:
    """Grown to purity, tiny nodes have exact ties (two features ordering 3 rows alike give the
    same partition), broken at random by both; the partition of the rows, hence every
    training prediction and the set of leaves, must still be the same."""
    X, y = continuous(300, 6, seed=0)
    ours = DecisionTreeRegressor(random_state=0).fit(X, y)
    ref = sk_tree.DecisionTreeRegressor(random_state=0).fit(X, y)
    np.testing.assert_allclose(ours.predict(X), ref.predict(X), rtol=1e-12)
    assert ours.node_count_ == ref.tree_.node_count and ours.max_depth_ == ref.get_depth()
    leaf = ours.feature_ == -1
    np.testing.assert_allclose(
        np.sort(ours.value_[leaf, 0]), np.sort(ref.tree_.value[ref.tree_.feature < 0, 0, 0])
    )


@pytest.mark.parametrize("params", [{"max_depth": 2}, {"max_depth": 3, "min_samples_leaf": 3}])
def test_classifier_grows_sklearns_tree(params: dict[str, Any]) -> None:
    X, y = continuous(300, 5, seed=2, classes=3)
    labels = np.array(["low", "mid", "top"], dtype=object)[y]
    ours = DecisionTreeClassifier(**params, random_state=0).fit(X, labels)
    ref = sk_tree.DecisionTreeClassifier(**params, random_state=0).fit(X, labels)
    assert_same_tree(ours, ref)
    assert list(ours.classes_) == list(ref.classes_)
    X_new = continuous(100, 5, seed=3)[0]
    np.testing.assert_allclose(ours.predict_proba(X_new), ref.predict_proba(X_new), atol=1e-12)
    assert list(ours.predict(X_new)) == list(ref.predict(X_new))
    np.testing.assert_allclose(ours.predict_proba(X_new).sum(axis=1), 1.0)


def few_values(n: int, seed: int, classes: int = 0) -> Data:
    """Features with 2 to 40 distinct values (searched on histograms, one bin per value)
    beside two continuous ones (searched on sorted lists), and a noisy continuous target
    (no two different partitions of a node score the same)."""
    rng = np.random.default_rng(seed)
    levels = [2, 3, 5, 12, 40]
    X = np.column_stack(
        [rng.integers(0, k, size=n) * 0.5 for k in levels]
        + [rng.normal(size=(n, 2)).astype(np.float32).astype(np.float64)]
    )
    signal = X[:, 0] * X[:, 3] + np.sin(X[:, 4]) - X[:, 2] + X[:, 5] + 0.3 * rng.normal(size=n)
    if classes:
        return X, np.digitize(signal, np.quantile(signal, np.linspace(0, 1, classes + 1)[1:-1]))
    return X, signal


@pytest.mark.parametrize(
    "params",
    [
        {"max_depth": 4},
        {"max_depth": 7, "min_samples_leaf": 10},
        {"max_depth": 10, "min_samples_split": 40},
    ],
)
def test_regressor_on_few_values_grows_sklearns_tree(params: dict[str, Any]) -> None:
    """Nodes of at least 10 rows: no two features partition one alike (in smaller nodes a
    3-valued feature can, a tie each implementation breaks its own way)."""
    X, y = few_values(600, seed=3)
    ours = DecisionTreeRegressor(**params, random_state=0).fit(X, y)
    ref = sk_tree.DecisionTreeRegressor(**params, random_state=0).fit(X, y)
    assert_same_tree(ours, ref)
    X_new = few_values(300, seed=4)[0]
    np.testing.assert_allclose(ours.predict(X_new), ref.predict(X_new), rtol=1e-9)


@pytest.mark.parametrize("params", [{"max_depth": 4}, {"max_depth": 5, "min_samples_leaf": 10}])
def test_classifier_on_few_values_grows_sklearns_tree(params: dict[str, Any]) -> None:
    """Gini scores are ratios of integer counts, so deeper small nodes have exact ties between
    different partitions (scikit-learn's own tree changes with its seed there): these depths
    have none."""
    X, y = few_values(600, seed=5, classes=4)
    ours = DecisionTreeClassifier(**params, random_state=0).fit(X, y)
    ref = sk_tree.DecisionTreeClassifier(**params, random_state=0).fit(X, y)
    assert_same_tree(ours, ref)
    X_new = few_values(300, seed=6)[0]
    np.testing.assert_allclose(ours.predict_proba(X_new), ref.predict_proba(X_new), atol=1e-12)


def test_fully_grown_on_few_values_makes_sklearns_partition(monkeypatch: Any) -> None:
    """Grown to purity, the many small nodes of the deep levels make histograms dearer than
    lists, and the binned features switch to lists on the way: the partition must still be
    scikit-learn's."""
    switches: list[int] = []
    real = tree_module._Features.switch_to_lists

    def counted(self: Any, Xt: Any) -> None:
        switches.append(int(self.binned.size))
        real(self, Xt)

    monkeypatch.setattr(tree_module._Features, "switch_to_lists", counted)
    X, y = few_values(800, seed=7)
    ours = DecisionTreeRegressor(random_state=0).fit(X, y)
    ref = sk_tree.DecisionTreeRegressor(random_state=0).fit(X, y)
    assert switches == [5]
    np.testing.assert_allclose(ours.predict(X), ref.predict(X), rtol=1e-12)
    assert ours.node_count_ == ref.tree_.node_count and ours.max_depth_ == ref.get_depth()
    np.testing.assert_allclose(ours.impurity_.sum(), ref.tree_.impurity.sum(), rtol=1e-9)


def same_partition(a: NDArray[np.intp], b: NDArray[np.intp]) -> bool:
    """Whether two leaf labellings of the same rows group them alike."""
    pairs = np.unique(np.column_stack([a, b]), axis=0)
    return len(pairs) == len(np.unique(a)) == len(np.unique(b))


@pytest.mark.parametrize("max_bins", [0, 10**9])
def test_histogram_and_list_searches_grow_the_same_tree(monkeypatch: Any, max_bins: int) -> None:
    """Every feature on lists (``HIST_MAX_BINS = 0``) or every one on histograms for as long
    as they are the cheaper: the same tree as the default mix. Small nodes have exact ties
    (two features partitioning the rows alike, or one the mirror of the other), decided by
    rounding, so the test is the partition of the rows into leaves, with the leaves' values,
    and the same shape while the nodes are large."""
    X, y = few_values(500, seed=8)
    X[:, 6] = np.round(X[:, 6], 1)  # a feature of a few dozen values
    default = DecisionTreeRegressor(min_samples_leaf=2, random_state=1).fit(X, y)
    monkeypatch.setattr(tree_module, "HIST_MAX_BINS", max_bins)
    other = DecisionTreeRegressor(min_samples_leaf=2, random_state=1).fit(X, y)
    assert same_partition(other.apply(X), default.apply(X))
    np.testing.assert_allclose(other.predict(X), default.predict(X), rtol=1e-12)
    assert other.node_count_ == default.node_count_ and other.max_depth_ == default.max_depth_
    shallow = DecisionTreeRegressor(max_depth=6, min_samples_leaf=8, random_state=1).fit(X, y)
    monkeypatch.setattr(tree_module, "HIST_MAX_BINS", 255)
    reference = DecisionTreeRegressor(max_depth=6, min_samples_leaf=8, random_state=1).fit(X, y)
    for name in ("children_left_", "feature_", "threshold_", "n_node_samples_"):
        np.testing.assert_array_equal(getattr(shallow, name), getattr(reference, name))


def test_fit_sorts_each_feature_once(monkeypatch: Any) -> None:
    """One argsort of the features at fit (and one more of the binned features' slots if the
    deep levels switch them to lists); no sort at a node."""
    calls: list[tuple[int, ...]] = []
    real_argsort = np.argsort

    def argsort(a: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(np.shape(a))
        return real_argsort(a, *args, **kwargs)

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a sort during growth")

    monkeypatch.setattr(np, "argsort", argsort)
    for name in ("sort", "lexsort", "unique", "partition", "argpartition"):
        monkeypatch.setattr(np, name, refuse)
    X, y = few_values(2000, seed=9)
    X = np.column_stack([X, continuous(2000, 4, seed=9)[0]])
    tree = DecisionTreeRegressor(random_state=0).fit(X, y)
    assert tree.max_depth_ > 10
    assert len(calls) == 2 and calls[0] == (X.shape[1], X.shape[0])
    assert calls[1][0] == 5 and calls[1][1] < X.shape[0]  # the 5 binned features, deep down


def test_apply_equals_a_literal_walk() -> None:
    X, y = continuous(200, 4, seed=5)
    tree = DecisionTreeRegressor(max_depth=5, random_state=0).fit(X, y)
    for x, leaf in zip(X[:50], tree.apply(X[:50]), strict=True):
        node = 0
        while tree.feature_[node] != -1:
            go_left = x[tree.feature_[node]] <= tree.threshold_[node]
            node = tree.children_left_[node] if go_left else tree.children_right_[node]
        assert node == leaf


Loader = Callable[..., Any]
REAL = [
    ("diabetes", datasets.load_diabetes, DecisionTreeRegressor, sk_tree.DecisionTreeRegressor),
    (
        "breast_cancer",
        datasets.load_breast_cancer,
        DecisionTreeClassifier,
        sk_tree.DecisionTreeClassifier,
    ),
    ("iris", datasets.load_iris, DecisionTreeClassifier, sk_tree.DecisionTreeClassifier),
    ("wine", datasets.load_wine, DecisionTreeClassifier, sk_tree.DecisionTreeClassifier),
]


@pytest.mark.parametrize(("name", "load", "ours_cls", "ref_cls"), REAL, ids=[r[0] for r in REAL])
def test_cross_validated_score_within_two_points_of_sklearn(
    name: str, load: Loader, ours_cls: Any, ref_cls: Any
) -> None:
    """Real data has tied values, so ties may be broken differently: compare held-out scores."""
    X, y = load(return_X_y=True)
    cv = KFold(5, shuffle=True, random_state=0)
    for depth in (2, 3, 4):
        ours = np.mean(
            [
                ours_cls(max_depth=depth, random_state=0).fit(X[tr], y[tr]).score(X[te], y[te])
                for tr, te in cv.split(X)
            ]
        )
        ref = cross_val_score(ref_cls(max_depth=depth, random_state=0), X, y, cv=cv).mean()
        assert abs(ours - ref) <= 0.02, f"{name} depth {depth}: ours {ours:.4f} vs {ref:.4f}"


def test_leaves_respect_min_samples_and_depth() -> None:
    X, y = datasets.load_diabetes(return_X_y=True)
    tree = DecisionTreeRegressor(max_depth=6, min_samples_leaf=7, random_state=0).fit(X, y)
    leaves = tree.feature_ == -1
    assert tree.n_node_samples_[leaves].min() >= 7
    assert tree.max_depth_ <= 6
    inner = ~leaves
    kids = tree.n_node_samples_[tree.children_left_[inner]]
    kids += tree.n_node_samples_[tree.children_right_[inner]]
    np.testing.assert_array_equal(kids, tree.n_node_samples_[inner])
    assert tree.feature_importances_.sum() == pytest.approx(1.0)


def test_seeded_tie_breaking_is_reproducible() -> None:
    # Columns 0 and 1 are copies: every split on one ties with the same split on the other.
    x = np.random.default_rng(0).normal(size=(60, 1))
    X = np.hstack([x, x])
    y = (x[:, 0] > 0).astype(float)
    roots = {int(DecisionTreeRegressor(random_state=s).fit(X, y).feature_[0]) for s in range(20)}
    assert roots == {0, 1}  # ties are broken at random ...
    a = DecisionTreeRegressor(random_state=4).fit(X, y)
    b = DecisionTreeRegressor(random_state=4).fit(X, y)
    np.testing.assert_array_equal(a.feature_, b.feature_)  # ... but reproducibly


def test_constant_target_is_a_single_leaf() -> None:
    X = np.random.default_rng(0).normal(size=(10, 2))
    tree = DecisionTreeRegressor().fit(X, np.full(10, 3.5))
    assert tree.node_count_ == 1 and tree.predict(X[:2]).tolist() == [3.5, 3.5]
    assert tree.feature_importances_.tolist() == [0.0, 0.0]


def test_errors() -> None:
    X, y = continuous(30, 4, seed=0)
    with pytest.raises(NotFittedError):
        DecisionTreeRegressor().predict(X)
    split, leaf = r"^min_samples_split must be an integer", r"^min_samples_leaf must be an integer"
    with pytest.raises(ValueError, match=split + r" in \[2, inf\), got 1$"):
        DecisionTreeRegressor(min_samples_split=1).fit(X, y)
    with pytest.raises(ValueError, match=leaf + r" in \[1, inf\), got 0$"):
        DecisionTreeRegressor(min_samples_leaf=0).fit(X, y)
    depth = r"^max_depth must be an integer in \[0, inf\) or None, got "
    with pytest.raises(ValueError, match=depth + r"2\.5$"):
        DecisionTreeRegressor(max_depth=2.5).fit(X, y)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=depth + "-1$"):
        DecisionTreeClassifier(max_depth=-1).fit(X, y > 0)
    with pytest.raises(ValueError, match="X has 3 features, but DecisionTreeRegressor"):
        DecisionTreeRegressor().fit(X, y).predict(X[:, :3])
    X_nan = X.copy()
    X_nan[3, 1] = np.nan
    with pytest.raises(ValueError, match="column 1 holds missing"):
        DecisionTreeRegressor().fit(X_nan, y)
    with pytest.raises(ValueError, match="different numbers of samples"):
        DecisionTreeClassifier().fit(X, y[:-1] > 0)
