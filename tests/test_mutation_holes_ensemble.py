"""model.ensemble: what mutation testing found the other tests let through (issue 20).

Small data and few trees, compared exactly: boosting against scikit-learn's
HistGradientBoostingRegressor, the forest, stacking and voting against the formulas the module
docstring states, every refusal matched whole.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray
from sklearn import ensemble as sk_ensemble

from model.base import NotFittedError
from model.ensemble import (
    HistGradientBoostingRegressor,
    RandomForestRegressor,
    StackingRegressor,
    VotingRegressor,
    _importances,
    gradient,
    huber_delta,
    location,
    negative_loss,
)
from model.hist import BinMapper, SplitParams, Tree, TreeGrower


def small(n: int = 300, seed: int = 0) -> tuple[NDArray[Any], NDArray[Any]]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4)).round(1)
    X[:, 3] = rng.integers(0, 6, size=n)
    y = X[:, 0] * X[:, 1] + np.sin(3 * X[:, 2]) + np.sin(1.7 * X[:, 3]) + 0.1 * rng.normal(size=n)
    X[rng.random(n) < 0.15, 2] = np.nan
    return X, y


@pytest.mark.parametrize("loss", ["squared_error", "absolute_error"])
def test_boosting_equals_sklearns(loss: str) -> None:
    X, y = small()
    y = y + np.where(np.arange(y.size) % 23 == 0, 8.0, 0.0)  # a few wild targets
    params: dict[str, Any] = {
        "loss": loss,
        "max_iter": 5,
        "learning_rate": 0.3,
        "max_leaf_nodes": 5,
        "min_samples_leaf": 12,
        "early_stopping": False,
        "categorical_features": [3],
    }
    ours = HistGradientBoostingRegressor(**params).fit(X, y)
    ref = sk_ensemble.HistGradientBoostingRegressor(**params).fit(X, y)
    assert ours.n_iter_ == ref.n_iter_ == 5
    np.testing.assert_allclose(ours.predict(X), ref.predict(X), rtol=0, atol=1e-7)


# --- the boosting loop, replayed from its parts ----------------------------------------------


def replay_boosting(
    X: NDArray[Any],
    y: NDArray[Any],
    loss: str,
    n_trees: int,
    subsample: float,
    seed: int,
    **kw: Any,
) -> tuple[float, list[Tree], NDArray[Any]]:
    """The loop the module docstring states, on :mod:`model.hist`'s parts: ``F_0`` the mean
    (the median for the robust losses), each tree grown on the gradients of the loss at the
    current predictions over a ``subsample`` drawn without replacement, Huber's ``δ`` the
    ``alpha`` quantile of the absolute residuals of every training row at each iteration, the
    robust losses' leaves the location of their rows' residuals times the learning rate."""
    rng = np.random.default_rng(seed)
    mapper = BinMapper(kw.get("max_bins", 255), np.zeros(X.shape[1], dtype=bool)).fit(X)
    Xb = mapper.transform(X)
    grower = TreeGrower(Xb, mapper)
    eta, alpha = kw.get("learning_rate", 0.1), kw.get("alpha", 0.9)
    p = SplitParams(
        kw.get("max_leaf_nodes", 31),
        None,
        kw.get("min_samples_leaf", 20),
        0.0,
        kw.get("max_features", 1.0),
        eta,
    )
    baseline = float(y.mean() if loss == "squared_error" else np.median(y))
    raw = np.full(y.size, baseline)
    n_sub = max(1, round(subsample * y.size))
    trees = []
    for _ in range(n_trees):
        r = y - raw
        delta = float(np.percentile(np.abs(r), 100 * alpha))
        g = {
            "squared_error": -r,
            "absolute_error": -np.sign(r),
            "huber": -np.clip(r, -delta, delta),
        }[loss]
        rows = (
            np.arange(y.size)
            if n_sub >= y.size
            else np.sort(rng.choice(y.size, n_sub, replace=False))
        )
        tree, leaves = grower.grow(rows, g, None, p, rng)
        for node, lr in leaves:
            rl = r[lr]
            m = float(np.median(rl))
            if loss == "absolute_error":
                tree.value[node] = eta * m
            elif loss == "huber":
                tree.value[node] = eta * (m + float(np.clip(rl - m, -delta, delta).mean()))
        raw += tree.value[tree.apply_binned(Xb, mapper.missing_bin)]
        trees.append(tree)
    return baseline, trees, raw


@pytest.mark.parametrize("loss", ["squared_error", "absolute_error", "huber"])
@pytest.mark.parametrize("subsample", [1.0, 0.55, 0.001], ids=["all", "share", "one-row"])
def test_boosting_is_the_stated_loop(loss: Any, subsample: float) -> None:
    X, y = small(160, seed=1)
    X = np.nan_to_num(X)
    y = y + np.where(np.arange(y.size) % 17 == 0, 6.0, 0.0)
    kw: dict[str, Any] = {
        "learning_rate": 0.4,
        "max_leaf_nodes": 4,
        "min_samples_leaf": 8,
        "alpha": 0.8,
    }
    model = HistGradientBoostingRegressor(
        loss=loss, max_iter=4, subsample=subsample, early_stopping=False, random_state=3, **kw
    ).fit(X, y)
    baseline, trees, raw = replay_boosting(X, y, loss, 4, subsample, 3, **kw)
    assert model.baseline_ == baseline
    assert model.n_iter_ == 4 and model.validation_score_.shape == (0,)
    for ours, want in zip(model.trees_, trees, strict=True):
        np.testing.assert_array_equal(ours.feature, want.feature)
        np.testing.assert_allclose(ours.value, want.value, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(model.predict(X), raw, rtol=1e-12)


@pytest.mark.parametrize("subsample", [1.0, 0.55], ids=["all", "share"])
def test_boosting_loop_draws_features_per_node_and_routes_missing_values(
    subsample: float,
) -> None:
    # missing values kept: the share path updates the predictions by routing every training
    # row, missing ones by the learned direction; the one random stream serves the row draws
    # (only when there is a share to draw) and then each node's features
    X, y = small(160, seed=1)
    kw: dict[str, Any] = {
        "learning_rate": 0.4,
        "max_leaf_nodes": 4,
        "min_samples_leaf": 8,
        "max_features": 0.5,
    }
    model = HistGradientBoostingRegressor(
        max_iter=4, subsample=subsample, early_stopping=False, random_state=3, **kw
    ).fit(X, y)
    _, trees, raw = replay_boosting(X, y, "squared_error", 4, subsample, 3, **kw)
    assert np.isnan(X).any()
    assert any(t.missing_left[~t.is_leaf].any() for t in trees)
    for ours, want in zip(model.trees_, trees, strict=True):
        np.testing.assert_array_equal(ours.feature, want.feature)
        np.testing.assert_allclose(ours.value, want.value, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(model.predict(X), raw, rtol=1e-12)


def test_early_stopping_holds_out_the_stated_rows_and_scores_them() -> None:
    X, y = small(200, seed=2)
    kw: dict[str, Any] = {"max_iter": 6, "max_leaf_nodes": 4, "learning_rate": 0.3}
    model = HistGradientBoostingRegressor(
        early_stopping=True, validation_fraction=0.25, n_iter_no_change=50, random_state=4, **kw
    ).fit(X, y)
    perm = np.random.default_rng(4).permutation(200)
    valid, train = np.sort(perm[:50]), np.sort(perm[50:])  # ceil(0.25 * 200) held out
    plain = HistGradientBoostingRegressor(early_stopping=False, **kw).fit(X[train], y[train])
    assert model.baseline_ == plain.baseline_ == y[train].mean()
    np.testing.assert_allclose(model.predict(X), plain.predict(X), rtol=1e-12)
    mapper = model.bin_mapper_
    np.testing.assert_array_equal(mapper.cuts[0], plain.bin_mapper_.cuts[0])  # train rows only
    Xb = mapper.transform(X[valid])
    raw = np.full(50, model.baseline_)
    expected = [-0.5 * np.mean((y[valid] - raw) ** 2)]
    for t in model.trees_:
        raw = raw + t.value[t.apply_binned(Xb, mapper.missing_bin)]
        expected.append(-0.5 * np.mean((y[valid] - raw) ** 2))
    np.testing.assert_allclose(model.validation_score_, expected, rtol=1e-12)
    assert model.n_iter_ == 6


@pytest.mark.parametrize(("n", "scored"), [(10_000, False), (10_001, True)])
def test_early_stopping_auto_means_more_than_10_000_rows(n: int, scored: bool) -> None:
    rng = np.random.default_rng(0)
    X = rng.integers(0, 4, size=(n, 1)).astype(np.float64)
    y = X[:, 0] + rng.normal(size=n)
    model = HistGradientBoostingRegressor(max_iter=2, max_leaf_nodes=2).fit(X, y)
    assert model.validation_score_.shape == ((3,) if scored else (0,))


def test_validation_share_that_leaves_nothing_to_fit_is_refused_whole() -> None:
    X, y = small(4)
    model = HistGradientBoostingRegressor(early_stopping=True, validation_fraction=0.8)
    with pytest.raises(ValueError) as err:
        model.fit(X, y)
    assert str(err.value) == "validation_fraction=0.8 leaves no rows to fit on with 4 sample(s)"
    HistGradientBoostingRegressor(
        early_stopping=True, validation_fraction=0.7, max_iter=1, min_samples_leaf=1
    ).fit(X, y)  # 3 held out, 1 left to fit on
    one = HistGradientBoostingRegressor(
        early_stopping=True, validation_fraction=0.1, max_iter=2, min_samples_leaf=1
    ).fit(X, y)  # ceil(0.4) = 1 held out: enough to score on
    assert one.n_iter_ == 2 and one.validation_score_.shape == (3,)
    lone = HistGradientBoostingRegressor(early_stopping=True, validation_fraction=0.5)
    with pytest.raises(ValueError) as err:
        lone.fit(X[:1], y[:1])  # the one row is held out
    assert str(err.value) == "validation_fraction=0.5 leaves no rows to fit on with 1 sample(s)"


def test_huber_early_stopping_scores_from_the_training_median() -> None:
    # before any tree: the held-out rows' Huber loss from the training rows' median, with δ
    # the alpha quantile of the training rows' absolute residuals from it
    X, y = small(120, seed=5)
    y = y + 40.0  # far from 0, so a sign slip in the residuals moves δ
    model = HistGradientBoostingRegressor(
        loss="huber",
        alpha=0.7,
        early_stopping=True,
        validation_fraction=0.3,
        max_iter=1,
        random_state=6,
    ).fit(X, y)
    perm = np.random.default_rng(6).permutation(120)
    valid, train = np.sort(perm[:36]), np.sort(perm[36:])
    m = np.median(y[train])
    delta = np.percentile(np.abs(y[train] - m), 70.0)
    a = np.abs(y[valid] - m)
    assert (a > delta).any() and (a <= delta).any()  # both pieces of the loss are used
    want = -np.mean(np.where(a <= delta, 0.5 * a**2, delta * (a - 0.5 * delta)))
    assert model.baseline_ == m
    assert model.validation_score_[0] == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize(
    ("scores", "k", "tol", "stop"),
    [
        ([0.0, 1.0, 1.0], 2, 0.0, False),  # k scores after the first: not yet
        ([0.0, 1.0, 1.0, 1.0], 2, 0.0, True),  # no gain over the one before the last k
        ([0.0, 1.0, 1.0, 1.5], 2, 0.0, False),
        ([0.0, 1.0, 1.0, 1.5], 2, 0.5, True),  # a gain of tol exactly is not enough
        ([0.0, 1.0, 1.0, 1.5], 2, 0.49, False),
        ([5.0, 1.0, 2.0], 1, 0.0, False),  # only the last k against the one before them
        ([1.0, 2.0, 1.0], 1, 0.0, True),
        ([0.0, 5.0, 1.0, 1.0], 1, 0.0, True),  # an earlier best does not count
    ],
)
def test_should_stop_rule(scores: list[float], k: int, tol: float, stop: bool) -> None:
    model = HistGradientBoostingRegressor(n_iter_no_change=k, tol=tol)
    assert model._should_stop(scores) is stop


def test_loss_helpers_follow_their_formulas() -> None:
    r = np.array([-3.0, -0.5, 0.0, 0.25, 2.0, 7.0])
    assert huber_delta(r, 0.5) == np.percentile(np.abs(r), 50.0)
    assert huber_delta(r, 0.9) == np.percentile(np.abs(r), 90.0)
    np.testing.assert_array_equal(gradient("squared_error", r, 1.0), -r)
    np.testing.assert_array_equal(gradient("absolute_error", r, 1.0), -np.sign(r))
    np.testing.assert_array_equal(gradient("huber", r, 1.0), [1.0, 0.5, -0.0, -0.25, -1.0, -1.0])
    assert negative_loss("squared_error", r, 1.0) == -0.5 * np.mean(r**2)
    assert negative_loss("absolute_error", r, 1.0) == -np.mean(np.abs(r))
    d = 1.0  # |r| <= d: r²/2; beyond: d(|r| - d/2)
    want = -np.mean([2.5, 0.125, 0.0, 0.03125, 1.5, 6.5])
    assert negative_loss("huber", r, d) == pytest.approx(want, rel=1e-15)
    assert negative_loss("huber", np.array([1.0, -1.0]), 1.0) == -0.5  # the edge is quadratic
    assert negative_loss("huber", np.array([0.5, -5.0]), 2.0) == -(0.125 + 2.0 * 4.0) / 2
    assert location("absolute_error", r, 1.0) == np.median(r)
    m = np.median(r)
    assert location("huber", r, 1.0) == pytest.approx(m + np.clip(r - m, -1.0, 1.0).mean())
    assert location("huber", r, 100.0) == pytest.approx(r.mean())


def test_importances_are_the_normalised_gain_per_feature() -> None:
    X, y = small(200, seed=5)
    model = HistGradientBoostingRegressor(max_iter=3, max_leaf_nodes=4).fit(X, y)
    total = np.zeros(4)
    for t in model.trees_:
        for node in np.flatnonzero(~t.is_leaf):
            total[t.feature[node]] += t.gain[node]
    np.testing.assert_allclose(model.feature_importances_, total / total.sum(), rtol=1e-12)
    # gains far below 1 (targets a thousandth as large): still normalised
    tiny = HistGradientBoostingRegressor(max_iter=3, max_leaf_nodes=4).fit(X, y / 1000)
    assert sum(t.gain.sum() for t in tiny.trees_) < 1
    assert tiny.feature_importances_.sum() == pytest.approx(1.0, rel=1e-12)
    flat = HistGradientBoostingRegressor(max_iter=2).fit(X, np.ones(200))
    np.testing.assert_array_equal(flat.feature_importances_, np.zeros(4))
    assert _importances([], 3).tolist() == [0.0, 0.0, 0.0]


def test_fitted_attributes() -> None:
    X, y = small(120, seed=6)
    model = HistGradientBoostingRegressor(max_iter=2, categorical_features=[3]).fit(X, y)
    assert model.n_features_in_ == 4
    np.testing.assert_array_equal(model.is_categorical_, [False, False, False, True])
    np.testing.assert_array_equal(model.bin_mapper_.categorical, model.is_categorical_)
    assert model.bin_mapper_.max_bins == 255
    assert model.forest_.roots.size == 2
    with pytest.raises(
        ValueError, match=r"^X has 3 features, but HistGradientBoostingRegressor was fitted with 4$"
    ):
        model.predict(X[:, :3])
    with pytest.raises(
        NotFittedError, match=r"^this HistGradientBoostingRegressor instance is not fitted yet"
    ):
        HistGradientBoostingRegressor().predict(X)
    np.testing.assert_array_equal(model.predict(X[:3].tolist()), model.predict(X[:3]))


# --- hyperparameters ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"loss": "poisson"},
            "loss must be one of ['squared_error', 'absolute_error', 'huber'], got 'poisson'",
        ),
        ({"alpha": 1.0}, "alpha must be a number in (0, 1), got 1.0"),
        ({"learning_rate": float("inf")}, "learning_rate must be a number in (0, inf), got inf"),
        ({"max_iter": 0}, "max_iter must be an integer in [1, inf), got 0"),
        ({"max_leaf_nodes": 1}, "max_leaf_nodes must be an integer in [2, inf) or None, got 1"),
        ({"max_depth": 0}, "max_depth must be an integer in [1, inf) or None, got 0"),
        ({"min_samples_leaf": 0}, "min_samples_leaf must be an integer in [1, inf), got 0"),
        ({"l2_regularization": -0.1}, "l2_regularization must be a number in [0, inf), got -0.1"),
        ({"max_features": 0.0}, "max_features must be a number in (0, 1], got 0.0"),
        ({"max_features": 1.01}, "max_features must be a number in (0, 1], got 1.01"),
        ({"subsample": 1.5}, "subsample must be a number in (0, 1], got 1.5"),
        ({"max_bins": 1}, "max_bins must be an integer in [2, 255], got 1"),
        ({"early_stopping": 1.0}, "early_stopping must be 'auto', True or False, got 1.0"),
        ({"early_stopping": None}, "early_stopping must be 'auto', True or False, got None"),
        ({"early_stopping": 0}, "early_stopping must be 'auto', True or False, got 0"),
        ({"early_stopping": "Auto"}, "early_stopping must be 'auto', True or False, got 'Auto'"),
        ({"validation_fraction": 0.0}, "validation_fraction must be a number in (0, 1), got 0.0"),
        ({"n_iter_no_change": 0}, "n_iter_no_change must be an integer in [1, inf), got 0"),
        ({"tol": -1e-9}, "tol must be a number in [0, inf), got -1e-09"),
        ({"tol": float("inf")}, "tol must be a number in [0, inf), got inf"),
        ({"random_state": -1}, "random_state must be an integer in [0, inf), got -1"),
        ({"random_state": 1.5}, "random_state must be an integer in [0, inf), got 1.5"),
    ],
)
def test_boosting_refusals_are_whole(params: dict[str, Any], message: str) -> None:
    X, y = small(30)
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        HistGradientBoostingRegressor(**params).fit(X, y)


def test_boosting_limits_are_accepted() -> None:
    X, y = small(60)
    limits: dict[str, Any] = {
        "alpha": 0.999,
        "learning_rate": 1e-9,
        "max_iter": 1,
        "max_leaf_nodes": 2,
        "max_depth": 1,
        "min_samples_leaf": 1,
        "l2_regularization": 0.0,
        "max_features": 1.0,
        "subsample": 1.0,
        "max_bins": 2,
        "validation_fraction": 0.999,
        "n_iter_no_change": 1,
        "tol": 0.0,
        "random_state": 0,
    }
    HistGradientBoostingRegressor(**limits).fit(X, y)
    HistGradientBoostingRegressor(max_bins=255, early_stopping=False, max_iter=1).fit(X, y)
    HistGradientBoostingRegressor(loss="huber", alpha=1e-9, max_iter=1).fit(X, y)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"n_estimators": 0}, "n_estimators must be an integer in [1, inf), got 0"),
        ({"max_depth": 0}, "max_depth must be an integer in [1, inf) or None, got 0"),
        ({"min_samples_leaf": 0}, "min_samples_leaf must be an integer in [1, inf), got 0"),
        ({"max_features": 0.0}, "max_features must be a number in (0, 1], got 0.0"),
        ({"max_leaf_nodes": 1}, "max_leaf_nodes must be an integer in [2, inf) or None, got 1"),
        ({"bootstrap": 1}, "bootstrap must be True or False, got 1"),
        ({"oob_score": "yes"}, "oob_score must be True or False, got 'yes'"),
        (
            {"oob_score": True, "bootstrap": False},
            "oob_score=True needs bootstrap=True (no row is left out otherwise)",
        ),
        ({"max_bins": 256}, "max_bins must be an integer in [2, 255], got 256"),
        ({"random_state": -2}, "random_state must be an integer in [0, inf), got -2"),
    ],
)
def test_forest_refusals_are_whole(params: dict[str, Any], message: str) -> None:
    X, y = small(30)
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        RandomForestRegressor(**params).fit(X, y)


def test_forest_limits_are_accepted() -> None:
    X, y = small(40)
    RandomForestRegressor(
        n_estimators=1,
        max_depth=1,
        min_samples_leaf=1,
        max_features=1.0,
        max_leaf_nodes=2,
        max_bins=2,
        random_state=0,
    ).fit(X, y)
    RandomForestRegressor(n_estimators=1, max_features=1e-9, max_bins=255, oob_score=True).fit(X, y)


# --- the forest, replayed ------------------------------------------------------------------


@pytest.mark.parametrize("bootstrap", [True, False])
def test_forest_is_the_stated_mean_of_bootstrap_trees(bootstrap: bool) -> None:
    X, y = small(90, seed=7)
    kw: dict[str, Any] = {
        "max_depth": 3,
        "min_samples_leaf": 2,
        "max_features": 0.5,
        "max_leaf_nodes": 6,
    }
    model = RandomForestRegressor(
        n_estimators=5, bootstrap=bootstrap, oob_score=bootstrap, random_state=2, **kw
    ).fit(X, y)
    rng = np.random.default_rng(2)
    mapper = BinMapper(255, np.zeros(4, dtype=bool)).fit(X)
    Xb = mapper.transform(X)
    grower = TreeGrower(Xb, mapper)
    yc = y - y.mean()
    p = SplitParams(6, 3, 2, 0.0, 0.5, 1.0)
    total, oob_sum, oob_count = np.zeros(90), np.zeros(90), np.zeros(90)
    for ours in model.trees_:
        w = (
            np.bincount(rng.integers(0, 90, size=90), minlength=90).astype(float)
            if bootstrap
            else np.ones(90)
        )
        tree, _ = grower.grow(np.flatnonzero(w > 0), -w * yc, w, p, rng)
        np.testing.assert_array_equal(ours.feature, tree.feature)
        # bit for bit: grown on the drawn rows only; rows of weight 0 add nothing to a sum
        # but change which child's histogram is counted and which subtracted (rounding)
        np.testing.assert_array_equal(ours.value, tree.value)
        pred = tree.value[tree.apply_binned(Xb, 255)]
        total += pred
        out = w == 0
        oob_sum[out] += pred[out]
        oob_count[out] += 1
    assert model.baseline_ == y.mean()
    np.testing.assert_allclose(model.predict(X), y.mean() + total / 5, rtol=1e-12)
    assert model.n_features_in_ == 4 and not model.is_categorical_.any()
    if bootstrap:
        seen = oob_count > 0
        assert 0 < seen.sum() < 90
        with np.errstate(invalid="ignore", divide="ignore"):
            want = y.mean() + oob_sum / oob_count
        np.testing.assert_allclose(model.oob_prediction_, want, rtol=1e-12)
        assert np.isnan(model.oob_prediction_[~seen]).all()
        r2 = 1 - np.sum((y[seen] - want[seen]) ** 2) / np.sum((y[seen] - y[seen].mean()) ** 2)
        assert model.oob_score_ == pytest.approx(r2, rel=1e-12)
    else:
        assert not hasattr(model, "oob_score_") and not hasattr(model, "oob_prediction_")


@pytest.mark.filterwarnings("error")  # rows with no out-of-bag tree: NaN without a warning
def test_oob_score_is_nan_when_r2_is_undefined() -> None:
    X = np.arange(6.0)[:, None]
    few = RandomForestRegressor(n_estimators=1, oob_score=True, random_state=0).fit(X, X[:, 0])
    seen = ~np.isnan(few.oob_prediction_)
    assert seen.sum() == 2  # two rows left out of the one bootstrap sample
    assert np.isfinite(few.oob_score_)
    # the same rows left out, their targets less than 1 apart: R² is still defined
    narrow = RandomForestRegressor(n_estimators=1, oob_score=True, random_state=0)
    narrow.fit(X, X[:, 0] / 100)
    assert np.isfinite(narrow.oob_score_)
    flat = np.array([1.0, 5.0, 7.0, 1.0, 7.0, 1.0])  # the rows left out share one target
    assert np.isnan(
        RandomForestRegressor(n_estimators=1, oob_score=True, random_state=0)
        .fit(X, flat)
        .oob_score_
    )
    one = RandomForestRegressor(n_estimators=1, oob_score=True, random_state=3).fit(X[:3], X[:3, 0])
    assert (~np.isnan(one.oob_prediction_)).sum() == 1 and np.isnan(one.oob_score_)


# --- voting and stacking --------------------------------------------------------------------


class Constant:
    """A base model that predicts ``c`` times the mean of ``y`` (and remembers its fit)."""

    def __init__(self, c: float = 1.0) -> None:
        self.c = c

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {"c": self.c}

    def set_params(self, **params: Any) -> Constant:
        self.c = params.get("c", self.c)
        return self

    def fit(self, X: Any, y: Any) -> Constant:
        self.mean_ = float(np.mean(y))
        self.rows_ = len(X)
        return self

    def predict(self, X: Any) -> NDArray[Any]:
        return np.full(len(X), self.c * self.mean_)


def linear_data() -> tuple[NDArray[Any], NDArray[Any]]:
    rng = np.random.default_rng(8)
    X = rng.normal(size=(40, 3)) + 5.0
    return X, X @ [1.0, -2.0, 0.5] + 3.0 + 0.1 * rng.normal(size=40)


def test_voting_weights_and_fitted_bases() -> None:
    X, y = linear_data()
    bases = [("a", Constant(1.0)), ("b", Constant(3.0)), ("c", Constant(-1.0))]
    vote = VotingRegressor(bases).fit(X, y)
    np.testing.assert_allclose(vote.weights_, [1 / 3] * 3)
    np.testing.assert_allclose(vote.predict(X), np.full(40, y.mean()))
    assert list(vote.named_estimators_) == ["a", "b", "c"]
    assert vote.named_estimators_["b"] is vote.estimators_[1] and vote.estimators_[1].c == 3.0
    assert all(e is not b for e, (_, b) in zip(vote.estimators_, bases, strict=True))  # clones
    assert not hasattr(bases[0][1], "mean_")
    np.testing.assert_allclose(vote.transform(X[:2]), [[y.mean(), 3 * y.mean(), -y.mean()]] * 2)
    weighted = VotingRegressor(bases, weights=[0.0, 1.0, 3.0]).fit(X, y)
    np.testing.assert_allclose(weighted.weights_, [0.0, 0.25, 0.75])
    np.testing.assert_allclose(weighted.predict(X), np.full(40, 0.0 * y.mean()), atol=1e-12)
    assert VotingRegressor(bases, weights=np.array([1, 1, 2])).fit(X, y).weights_.tolist() == [
        0.25,
        0.25,
        0.5,
    ]


@pytest.mark.parametrize(
    "weights",
    [
        [1.0, 2.0],
        [1.0, 1.0, 1.0, 1.0],
        [1.0, -1.0, 1.0],
        [0.0, 0.0, 0.0],
        [1.0, np.nan, 1.0],
        [1.0, np.inf, 1.0],
        [[1.0, 1.0, 1.0]],
    ],
)
def test_voting_refuses_bad_weights_whole(weights: Any) -> None:
    X, y = linear_data()
    bases = [("a", Constant()), ("b", Constant()), ("c", Constant())]
    message = (
        "weights must be 3 non-negative numbers (one per estimator) with a positive sum, "
        f"got {weights!r}"
    )
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        VotingRegressor(bases, weights=weights).fit(X, y)


@pytest.mark.parametrize("cls", [VotingRegressor, StackingRegressor])
@pytest.mark.parametrize(
    ("estimators", "message"),
    [
        ([], "{owner}: estimators must be a non-empty list of (name, estimator)"),
        ((), "{owner}: estimators must be a non-empty list of (name, estimator)"),
        ("ab", "{owner}: estimators must be a non-empty list of (name, estimator)"),
        (None, "{owner}: estimators must be a non-empty list of (name, estimator)"),
        ([["a", Constant()]], "{owner}: each estimator must be (name, estimator), got ['a', <C>]"),
        ([("a",)], "{owner}: each estimator must be (name, estimator), got ('a',)"),
        (
            [("a", Constant(), 1)],
            "{owner}: each estimator must be (name, estimator), got ('a', <C>, 1)",
        ),
        ([("a", 3.0)], "{owner}: each estimator must be (name, estimator), got ('a', 3.0)"),
        (
            [("a", Constant()), ("a", Constant())],
            "{owner} estimator names must be unique; 'a' appears twice",
        ),
        (
            [("a__b", Constant())],
            "{owner} estimator name 'a__b' must be a non-empty string without '__'",
        ),
    ],
)
def test_estimator_lists_are_refused_whole(cls: Any, estimators: Any, message: str) -> None:
    X, y = linear_data()
    pattern = re.escape(message.format(owner=cls.__name__)).replace(re.escape("<C>"), "<.+>")
    with pytest.raises(ValueError, match="^" + pattern + "$"):
        cls(estimators).fit(X, y)


def test_unfitted_combinations_say_so() -> None:
    X, _ = linear_data()
    for model in (VotingRegressor([("a", Constant())]), StackingRegressor([("a", Constant())])):
        with pytest.raises(
            NotFittedError, match=f"^this {type(model).__name__} instance is not fitted yet"
        ):
            model.predict(X)


def test_stacking_uses_consecutive_folds_and_a_ridge_by_default() -> None:
    from model.linear import LinearRegression, Ridge

    X, y = linear_data()
    bases = [("lin", LinearRegression()), ("mean", Constant(2.0))]
    stack = StackingRegressor(bases, cv=4).fit(X, y)
    oof = np.zeros((40, 2))
    for k in range(4):  # consecutive folds of 10 rows
        test = np.arange(10 * k, 10 * k + 10)
        train = np.setdiff1d(np.arange(40), test)
        oof[test, 0] = LinearRegression().fit(X[train], y[train]).predict(X[test])
        oof[test, 1] = 2.0 * y[train].mean()
    final = Ridge(alpha=1.0).fit(oof, y)
    assert type(stack.final_estimator_) is Ridge and stack.final_estimator_.alpha == 1.0
    np.testing.assert_allclose(stack.final_estimator_.coef_, final.coef_, rtol=1e-10)
    full = np.column_stack([LinearRegression().fit(X, y).predict(X), np.full(40, 2 * y.mean())])
    np.testing.assert_allclose(stack.transform(X), full, rtol=1e-12)
    np.testing.assert_allclose(stack.predict(X), final.predict(full), rtol=1e-12)
    assert stack.predict(X).dtype == np.float64
    assert stack.estimators_[1].rows_ == 40  # refitted on every row
    assert list(stack.named_estimators_) == ["lin", "mean"]
    five = StackingRegressor(bases).fit(X, y)  # cv=5: folds of 8 rows
    oof5 = np.zeros((40, 2))
    for k in range(5):
        test = np.arange(8 * k, 8 * k + 8)
        train = np.setdiff1d(np.arange(40), test)
        oof5[test, 0] = LinearRegression().fit(X[train], y[train]).predict(X[test])
        oof5[test, 1] = 2.0 * y[train].mean()
    np.testing.assert_allclose(
        five.final_estimator_.coef_, Ridge(alpha=1.0).fit(oof5, y).coef_, rtol=1e-10
    )
    given = StackingRegressor(bases, final_estimator=LinearRegression(), cv=2).fit(X, y)
    assert type(given.final_estimator_) is LinearRegression


@pytest.mark.parametrize(("cv", "shown"), [(1, "1"), (2.0, "2.0"), (True, "True")])
def test_stacking_refuses_too_few_folds_whole(cv: Any, shown: str) -> None:
    X, y = linear_data()
    message = f"cv must be an integer in [2, inf), got {shown}"
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        StackingRegressor([("a", Constant())], cv=cv).fit(X, y)


@pytest.mark.parametrize("cls", [VotingRegressor, StackingRegressor])
def test_combinations_check_y_by_name(cls: Any) -> None:
    X, y = linear_data()
    model = cls([("a", Constant())])
    with pytest.raises(ValueError, match=r"^y: expected a 1-D array, got shape \(40, 1\)$"):
        model.fit(X, y[:, None])
    bad = y.copy()
    bad[3] = np.nan
    with pytest.raises(ValueError, match=r"^y: "):
        model.fit(X, bad)
    assert model.fit(X, y.tolist()).predict(X).shape == (40,)


def test_voting_weights_are_read_as_numbers() -> None:
    from fractions import Fraction

    X, y = linear_data()
    bases = [("a", Constant(1.0)), ("b", Constant(2.0))]
    vote = VotingRegressor(bases, weights=[Fraction(1, 3), Fraction(2, 3)]).fit(X, y)
    assert vote.weights_.dtype == np.float64
    np.testing.assert_allclose(vote.weights_, [1 / 3, 2 / 3])
    small_sum = VotingRegressor(bases, weights=[0.1, 0.3]).fit(X, y)  # any positive sum
    np.testing.assert_allclose(small_sum.weights_, [0.25, 0.75])
    np.testing.assert_allclose(vote.predict(X), np.full(40, 5 / 3 * y.mean()))


class Whole:
    """A final model that predicts whole numbers (an integer array)."""

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {}

    def set_params(self, **params: Any) -> Whole:
        return self

    def fit(self, X: Any, y: Any) -> Whole:
        self.coef_ = np.linalg.lstsq(X, y, rcond=None)[0]
        return self

    def predict(self, X: Any) -> NDArray[Any]:
        return np.rint(np.asarray(X) @ self.coef_).astype(np.int64)


def test_stacking_takes_a_splitter_and_returns_floats() -> None:
    from model.linear import LinearRegression
    from model.selection import KFold

    X, y = linear_data()
    cv = KFold(3, shuffle=True, random_state=5)
    bases = [("lin", LinearRegression()), ("mean", Constant(1.0))]
    stack = StackingRegressor(bases, final_estimator=Whole(), cv=cv).fit(X, y)
    oof = np.zeros((40, 2))
    for train, test in cv.split(X):
        oof[test, 0] = LinearRegression().fit(X[train], y[train]).predict(X[test])
        oof[test, 1] = y[train].mean()
    np.testing.assert_allclose(stack.final_estimator_.coef_, Whole().fit(oof, y).coef_, rtol=1e-10)
    pred = stack.predict(X)
    assert pred.dtype == np.float64
    np.testing.assert_array_equal(pred, Whole().fit(oof, y).predict(stack.transform(X)))


class Broken(Constant):
    """A base model whose fit fails."""

    def fit(self, X: Any, y: Any) -> Constant:
        raise RuntimeError("no fit")


def test_base_predictions_are_floats_and_a_failed_fit_leaves_it_unfitted() -> None:
    X, y = linear_data()
    vote = VotingRegressor([("whole", Whole()), ("mean", Constant())]).fit(X, y)
    out = vote.transform(X)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out[:, 0], Whole().fit(X, y).predict(X))
    whole = VotingRegressor([("whole", Whole())]).fit(X, y)  # integer predictions only
    assert whole.transform(X).dtype == np.float64
    failed = VotingRegressor([("a", Constant()), ("b", Broken())])
    with pytest.raises(RuntimeError, match=r"^no fit$"):
        failed.fit(X, y)
    assert hasattr(failed, "weights_")  # set before the bases fail
    with pytest.raises(NotFittedError, match=r"^this VotingRegressor instance is not fitted yet"):
        failed.predict(X)


def test_defaults_and_parameters_are_kept_as_given() -> None:
    assert HistGradientBoostingRegressor().get_params() == {
        "loss": "squared_error",
        "learning_rate": 0.1,
        "max_iter": 100,
        "max_leaf_nodes": 31,
        "max_depth": None,
        "min_samples_leaf": 20,
        "l2_regularization": 0.0,
        "max_features": 1.0,
        "subsample": 1.0,
        "max_bins": 255,
        "categorical_features": None,
        "early_stopping": "auto",
        "validation_fraction": 0.1,
        "n_iter_no_change": 10,
        "tol": 1e-7,
        "alpha": 0.9,
        "random_state": None,
    }
    assert RandomForestRegressor().get_params() == {
        "n_estimators": 100,
        "max_depth": None,
        "min_samples_leaf": 1,
        "max_features": 1.0,
        "max_leaf_nodes": None,
        "bootstrap": True,
        "oob_score": False,
        "max_bins": 255,
        "categorical_features": None,
        "random_state": None,
    }
    given: dict[str, Any] = {
        "n_estimators": 7,
        "max_depth": 3,
        "min_samples_leaf": 2,
        "max_features": 0.5,
        "max_leaf_nodes": 9,
        "bootstrap": False,
        "oob_score": True,
        "max_bins": 17,
        "categorical_features": [3],
        "random_state": 4,
    }
    assert RandomForestRegressor(**given).get_params() == given
    boost: dict[str, Any] = {
        "loss": "huber",
        "learning_rate": 0.2,
        "max_iter": 3,
        "max_leaf_nodes": 4,
        "max_depth": 2,
        "min_samples_leaf": 5,
        "l2_regularization": 1.0,
        "max_features": 0.5,
        "subsample": 0.5,
        "max_bins": 9,
        "categorical_features": [1],
        "early_stopping": True,
        "validation_fraction": 0.2,
        "n_iter_no_change": 3,
        "tol": 0.1,
        "alpha": 0.5,
        "random_state": 2,
    }
    assert HistGradientBoostingRegressor(**boost).get_params() == boost
    bases = [("a", Constant())]
    assert VotingRegressor(bases).get_params(deep=False) == {"estimators": bases, "weights": None}
    assert StackingRegressor(bases).get_params(deep=False) == {
        "estimators": bases,
        "final_estimator": None,
        "cv": 5,
    }


def test_forest_splits_categories_natively() -> None:
    X, y = small(200, seed=9)
    model = RandomForestRegressor(
        n_estimators=3, categorical_features=[3], max_depth=3, random_state=0
    ).fit(X, y)
    np.testing.assert_array_equal(model.is_categorical_, [False, False, False, True])
    np.testing.assert_array_equal(model.forest_.categorical, model.is_categorical_)
    assert any(t.cat_row.max() >= 0 for t in model.trees_)  # a categorical split was made


def test_forest_importances_are_the_normalised_gain_per_feature() -> None:
    X, y = small(150, seed=13)
    model = RandomForestRegressor(n_estimators=3, max_depth=3, random_state=1).fit(X, y)
    np.testing.assert_allclose(
        model.feature_importances_, _importances(model.trees_, 4), rtol=1e-12
    )
    assert model.feature_importances_.sum() == pytest.approx(1.0)
