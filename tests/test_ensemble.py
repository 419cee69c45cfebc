"""model.ensemble against scikit-learn and against the formulas its docstrings state."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray
from sklearn import ensemble as sk_ensemble
from threadpoolctl import threadpool_limits

from model.ensemble import (
    HistGradientBoostingRegressor,
    RandomForestRegressor,
    StackingRegressor,
    VotingRegressor,
)
from model.linear import LinearRegression, Ridge
from model.preprocessing import OrdinalEncoder
from model.selection import KFold

SAME: dict[str, Any] = {
    "max_iter": 200,
    "learning_rate": 0.1,
    "max_leaf_nodes": 31,
    "min_samples_leaf": 20,
    "early_stopping": False,
}


def interactions(n: int, seed: int, categories: int = 0) -> tuple[NDArray[Any], NDArray[Any]]:
    """Features with interactions, a threshold effect, missing values and (optionally) a
    categorical column of integer codes whose effect is not monotone in the code."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 6))
    y = (
        X[:, 0] * X[:, 1]
        + np.sin(2 * X[:, 2])
        + np.where(X[:, 3] > 0, X[:, 4], -X[:, 4])
        + 0.3 * rng.normal(size=n)
    )
    if categories:
        codes = rng.integers(0, categories, size=n)
        effect = np.sin(1.7 * np.arange(categories))
        X[:, 5] = codes
        y = y + effect[codes]
    X[rng.random(n) < 0.1, 2] = np.nan
    return X, y


def rmse(a: NDArray[Any], b: NDArray[Any]) -> float:
    return float(np.sqrt(np.mean((np.asarray(a) - np.asarray(b)) ** 2)))


# --- boosting against scikit-learn ----------------------------------------------------------


@pytest.mark.parametrize("categorical", [None, [5]], ids=["numeric", "categorical"])
def test_boosting_within_2_percent_of_sklearn(categorical: list[int] | None) -> None:
    X, y = interactions(1200, seed=1, categories=12 if categorical else 0)
    tr, te = slice(0, 900), slice(900, None)
    ours = HistGradientBoostingRegressor(categorical_features=categorical, **SAME)
    ours.fit(X[tr], y[tr])
    with threadpool_limits(1):
        ref = sk_ensemble.HistGradientBoostingRegressor(categorical_features=categorical, **SAME)
        ref.fit(X[tr], y[tr])
        ref_rmse = rmse(ref.predict(X[te]), y[te])
    assert ours.n_iter_ == ref.n_iter_ == 200
    assert rmse(ours.predict(X[te]), y[te]) <= 1.02 * ref_rmse


def test_native_categories_beat_their_codes_as_numbers() -> None:
    X, y = interactions(1200, seed=2, categories=30)
    tr, te = slice(0, 900), slice(900, None)
    kw: dict[str, Any] = {"max_iter": 60, "max_leaf_nodes": 8, "early_stopping": False}
    native = HistGradientBoostingRegressor(categorical_features=[5], **kw).fit(X[tr], y[tr])
    codes = HistGradientBoostingRegressor(**kw).fit(X[tr], y[tr])
    assert rmse(native.predict(X[te]), y[te]) < rmse(codes.predict(X[te]), y[te])


# --- the formulas -------------------------------------------------------------------------


def brute_force_stump(x: NDArray[Any], g: NDArray[Any], lam: float, msl: int) -> float:
    """The best gain over every threshold between distinct values, by the docstring formula."""
    G, H = g.sum(), g.size
    best = -np.inf
    for t in np.unique(x)[:-1]:
        left = x <= t
        gl, hl = g[left].sum(), left.sum()
        gr, hr = G - gl, H - hl
        if hl >= msl and hr >= msl:
            best = max(best, gl**2 / (hl + lam) + gr**2 / (hr + lam) - G**2 / (H + lam))
    return float(best)


@pytest.mark.parametrize("lam", [0.0, 5.0])
def test_one_split_has_the_stated_gain_and_leaf_values(lam: float) -> None:
    rng = np.random.default_rng(3)
    X = rng.integers(0, 40, size=(200, 3)).astype(np.float64)  # < max_bins: bins are exact
    y = np.where(X[:, 1] > 17, 2.0, -1.0) + rng.normal(size=200)
    model = HistGradientBoostingRegressor(
        max_iter=1,
        learning_rate=1.0,
        max_leaf_nodes=2,
        min_samples_leaf=5,
        l2_regularization=lam,
        early_stopping=False,
    ).fit(X, y)
    tree = model.trees_[0]
    g = y.mean() - y  # F_0 − y
    expected = max(brute_force_stump(X[:, j], g, lam, 5) for j in range(3))
    assert tree.gain[0] == pytest.approx(expected, rel=1e-9)
    assert tree.feature[0] == 1
    left = X[:, 1] <= tree.threshold[0]
    for rows, node in ((left, tree.left[0]), (~left, tree.left[0] + 1)):
        assert tree.value[node] == pytest.approx(-g[rows].sum() / (rows.sum() + lam))
    np.testing.assert_allclose(
        model.predict(X), y.mean() + np.where(left, tree.value[1], tree.value[2])
    )


def test_best_first_growth_respects_the_size_limits() -> None:
    X, y = interactions(600, seed=4)
    for kw, leaves, depth in (({"max_leaf_nodes": 7}, 7, 6), ({"max_depth": 2}, 4, 2)):
        model = HistGradientBoostingRegressor(max_iter=5, early_stopping=False, **kw).fit(X, y)
        for t in model.trees_:
            assert t.is_leaf.sum() == leaves and t.depth <= depth
            assert (t.hessian[t.is_leaf] >= 20).all()  # min_samples_leaf
            # best-first: the gains along any path from the root never need to decrease, but
            # the root's split is the best one of the whole tree
            assert t.gain[0] == t.gain.max()


def test_predict_on_raw_values_matches_the_binned_training_path() -> None:
    """The thresholds in data units and the bins used in training send rows the same way."""
    X, y = interactions(800, seed=5, categories=9)
    model = HistGradientBoostingRegressor(
        max_iter=20, categorical_features=[5], early_stopping=False
    ).fit(X, y)
    Xb = model.bin_mapper_.transform(X)
    binned = model.baseline_ + sum(
        t.value[t.apply_binned(Xb, model.bin_mapper_.missing_bin)] for t in model.trees_
    )
    np.testing.assert_allclose(model.predict(X), binned)


def test_missing_values_take_the_learned_direction() -> None:
    rng = np.random.default_rng(6)
    x = rng.uniform(0, 10, size=600)
    y = np.where(x > 5, 10.0, 0.0)
    x[:100] = np.nan
    y[:100] = 10.0  # missing behaves like the large values
    model = HistGradientBoostingRegressor(max_iter=30, early_stopping=False).fit(x[:, None], y)
    pred = model.predict(np.array([[np.nan], [1.0], [9.0]]))
    assert pred[0] == pytest.approx(pred[2], abs=0.1) and pred[0] > pred[1] + 8
    # never missing at fit: a missing value follows the larger child, not an error
    clean = HistGradientBoostingRegressor(max_iter=5, early_stopping=False)
    clean.fit(x[100:, None], y[100:])
    assert np.isfinite(clean.predict(np.array([[np.nan]]))).all()


def test_unknown_category_is_priced_as_missing() -> None:
    X, y = interactions(600, seed=7, categories=5)
    model = HistGradientBoostingRegressor(
        max_iter=20, categorical_features=[5], early_stopping=False
    ).fit(X, y)
    row = X[:1].copy()
    outs = []
    for code in (np.nan, 77.0, -1.0, 2.5):
        row[0, 5] = code
        outs.append(model.predict(row)[0])
    assert np.allclose(outs, outs[0])


def test_bad_category_codes_at_fit_name_the_column() -> None:
    X, y = interactions(100, seed=8, categories=4)
    X[3, 5] = 1.5
    with pytest.raises(ValueError, match=r"categorical column 5 .*integer codes"):
        HistGradientBoostingRegressor(categorical_features=[5]).fit(X, y)
    with pytest.raises(ValueError, match="categorical_features: column index 9"):
        HistGradientBoostingRegressor(categorical_features=[9]).fit(X, y)


def test_early_stopping_stops_and_records_scores() -> None:
    rng = np.random.default_rng(9)
    X = rng.normal(size=(800, 4))
    y = X[:, 0] + rng.normal(size=800)
    model = HistGradientBoostingRegressor(max_iter=500, early_stopping=True, random_state=0)
    model.fit(X, y)
    assert model.n_iter_ < 500
    assert model.validation_score_.shape == (model.n_iter_ + 1,)
    k = model.n_iter_no_change
    assert not (model.validation_score_[-k:] > model.validation_score_[-k - 1] + model.tol).any()
    with pytest.raises(ValueError, match="validation_fraction"):
        HistGradientBoostingRegressor(early_stopping=True).fit(X[:1], y[:1])


def test_subsampling_is_seeded_and_importances_rank_the_signal() -> None:
    X, y = interactions(600, seed=10)
    kw: dict[str, Any] = {
        "max_iter": 30,
        "subsample": 0.6,
        "max_features": 0.5,
        "early_stopping": False,
    }
    a = HistGradientBoostingRegressor(random_state=1, **kw).fit(X, y)
    b = HistGradientBoostingRegressor(random_state=1, **kw).fit(X, y)
    c = HistGradientBoostingRegressor(random_state=2, **kw).fit(X, y)
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    assert not np.array_equal(a.predict(X), c.predict(X))
    imp = HistGradientBoostingRegressor(max_iter=30).fit(X, y).feature_importances_
    assert imp.sum() == pytest.approx(1.0) and imp[5] == imp.min()  # column 5 is pure noise


@pytest.mark.parametrize(
    ("param", "value", "message"),
    [
        ("learning_rate", 0.0, r"learning_rate must be a number in \(0, inf\)"),
        ("max_iter", 0, r"max_iter must be an integer in \[1, inf\)"),
        ("max_leaf_nodes", 1, r"max_leaf_nodes must be an integer in \[2, inf\) or None"),
        ("max_depth", 0, r"max_depth must be an integer in \[1, inf\) or None"),
        ("min_samples_leaf", 0, r"min_samples_leaf must be an integer in \[1, inf\)"),
        ("l2_regularization", -1.0, r"l2_regularization must be a number in \[0, inf\)"),
        ("max_features", 1.5, r"max_features must be a number in \(0, 1\]"),
        ("subsample", 0.0, r"subsample must be a number in \(0, 1\]"),
        ("max_bins", 256, r"max_bins must be an integer in \[2, 255\]"),
        ("early_stopping", "yes", "early_stopping must be 'auto', True or False"),
        ("validation_fraction", 1.0, r"validation_fraction must be a number in \(0, 1\)"),
        ("n_iter_no_change", 0, r"n_iter_no_change must be an integer in \[1, inf\)"),
        ("max_iter", 2.5, r"max_iter must be an integer"),
        ("learning_rate", float("nan"), "learning_rate must be a number"),
    ],
)
def test_invalid_hyperparameters_name_the_parameter_and_range(
    param: str, value: Any, message: str
) -> None:
    X, y = interactions(50, seed=11)
    with pytest.raises(ValueError, match=message):
        HistGradientBoostingRegressor(**{param: value}).fit(X, y)


# --- random forest ------------------------------------------------------------------------


def test_forest_close_to_sklearn_and_oob_score() -> None:
    X, y = interactions(900, seed=12)
    X = np.nan_to_num(X)  # scikit-learn's forest wants no NaN in older versions
    tr, te = slice(0, 600), slice(600, None)
    kw: dict[str, Any] = {
        "n_estimators": 40,
        "min_samples_leaf": 3,
        "max_features": 0.5,
        "random_state": 0,
    }
    ours = RandomForestRegressor(oob_score=True, **kw).fit(X[tr], y[tr])
    with threadpool_limits(1):
        ref = sk_ensemble.RandomForestRegressor(oob_score=True, **kw).fit(X[tr], y[tr])
    assert rmse(ours.predict(X[te]), y[te]) <= 1.05 * rmse(ref.predict(X[te]), y[te])
    assert ours.oob_score_ == pytest.approx(ref.oob_score_, abs=0.05)
    assert ours.oob_prediction_.shape == (600,)


def test_forest_without_bootstrap_is_one_tree_repeated() -> None:
    X, y = interactions(300, seed=13)
    model = RandomForestRegressor(n_estimators=3, bootstrap=False, random_state=0).fit(X, y)
    one = RandomForestRegressor(n_estimators=1, bootstrap=False).fit(X, y)
    np.testing.assert_allclose(model.predict(X), one.predict(X))
    # grown to purity on distinct rows: the training rows are fitted exactly
    np.testing.assert_allclose(one.predict(X), y, atol=1e-9)
    with pytest.raises(ValueError, match="oob_score=True needs bootstrap=True"):
        RandomForestRegressor(bootstrap=False, oob_score=True).fit(X, y)


# --- stacking and voting ------------------------------------------------------------------


def test_stacking_fits_the_final_model_on_out_of_fold_predictions() -> None:
    X, y = interactions(400, seed=14)
    X = np.nan_to_num(X)
    bases: list[tuple[str, Any]] = [
        ("ridge", Ridge(alpha=1.0)),
        ("gbdt", HistGradientBoostingRegressor(max_iter=30)),
    ]
    cv = KFold(4, shuffle=True, random_state=0)
    stack = StackingRegressor(bases, final_estimator=LinearRegression(), cv=cv).fit(X, y)
    oof = np.zeros((400, 2))
    for train, test in cv.split(X):
        for k, (_, est) in enumerate(bases):
            oof[test, k] = type(est)(**est.get_params()).fit(X[train], y[train]).predict(X[test])
    final = LinearRegression().fit(oof, y)
    np.testing.assert_allclose(stack.final_estimator_.coef_, final.coef_, rtol=1e-9)
    full = [type(e)(**e.get_params()).fit(X, y).predict(X) for _, e in bases]
    np.testing.assert_allclose(stack.predict(X), final.predict(np.column_stack(full)))
    assert stack.get_params()["gbdt__max_iter"] == 30  # nested parameters, for grid searches


def test_voting_is_the_weighted_mean() -> None:
    X, y = interactions(300, seed=15)
    X = np.nan_to_num(X)
    bases: list[tuple[str, Any]] = [
        ("ridge", Ridge(alpha=1.0)),
        ("gbdt", HistGradientBoostingRegressor(max_iter=20)),
    ]
    vote = VotingRegressor(bases, weights=[1.0, 3.0]).fit(X, y)
    p = [type(e)(**e.get_params()).fit(X, y).predict(X) for _, e in bases]
    np.testing.assert_allclose(vote.predict(X), 0.25 * p[0] + 0.75 * p[1])
    with pytest.raises(ValueError, match="weights must be 2 non-negative numbers"):
        VotingRegressor(bases, weights=[1.0]).fit(X, y)
    with pytest.raises(ValueError, match="estimators must be a non-empty list"):
        VotingRegressor([]).fit(X, y)


def test_ordinal_encoder_maps_unknown_and_missing_to_nan() -> None:
    X = np.array([["b", "x"], ["a", None], ["c", "x"]], dtype=object)
    enc = OrdinalEncoder().fit(X)
    out = enc.transform(np.array([["c", "x"], ["zzz", None], ["a", "x"]], dtype=object))
    np.testing.assert_array_equal(out, [[2.0, 0.0], [np.nan, np.nan], [0.0, 0.0]])


def test_report_trees_calls_back_after_each_tree_only_within_its_block() -> None:
    from model.ensemble import report_trees

    X, y = interactions(300, seed=14)
    seen: list[tuple[int, int]] = []
    with report_trees(lambda done, planned: seen.append((done, planned))):
        HistGradientBoostingRegressor(max_iter=4, early_stopping=False).fit(X, y)
        RandomForestRegressor(n_estimators=3, random_state=0).fit(X, y)
        stopped = HistGradientBoostingRegressor(
            max_iter=500, early_stopping=True, n_iter_no_change=2, random_state=0
        ).fit(X, y)
    assert seen[:7] == [(1, 4), (2, 4), (3, 4), (4, 4), (1, 3), (2, 3), (3, 3)]
    assert seen[7:] == [(k, 500) for k in range(1, stopped.n_iter_ + 1)]
    assert stopped.n_iter_ < 500
    HistGradientBoostingRegressor(max_iter=2, early_stopping=False).fit(X, y)
    assert len(seen) == 7 + stopped.n_iter_  # outside the block: no calls


def test_split_search_over_several_nodes_equals_one_node_at_a_time() -> None:
    """The batched search (both children of a split at once) finds each node's own split."""
    from model.hist import BinMapper, SplitParams, TreeGrower

    X, y = interactions(900, seed=15, categories=9)
    categorical = np.zeros(X.shape[1], dtype=bool)
    categorical[5] = True
    mapper = BinMapper(255, categorical).fit(X)
    grower = TreeGrower(mapper.transform(X), mapper)
    g = y.mean() - y
    rng = np.random.default_rng(0)
    nodes = [np.sort(rng.choice(900, size, replace=False)) for size in (900, 400, 120, 45)]
    hists = [grower.histogram(rows, g, None) for rows in nodes]
    G, H = np.stack([x[0] for x in hists]), np.stack([x[1] for x in hists])
    masks = [None, None, rng.random(6) < 0.5, None]
    for lam in (0.0, 2.0):
        p = SplitParams(31, None, 20, lam, 1.0, 0.1)
        together = grower.best_splits(G, H, p, masks)
        alone = [grower.best_split(Gi, Hi, p, m) for (Gi, Hi), m in zip(hists, masks, strict=True)]
        assert [_fields(s) for s in together] == [_fields(s) for s in alone]
        assert sum(s is not None for s in together) >= 3
        assert any(s is not None and s.left_bins is not None for s in together)  # a category


def _fields(s: Any) -> tuple[Any, ...] | None:
    if s is None:
        return None
    bins = None if s.left_bins is None else np.flatnonzero(s.left_bins).tolist()
    return (s.gain, s.feature, s.bin, s.missing_left, bins)
