"""The boosting model's robust losses (``loss="absolute_error"`` and ``"huber"``) against
scikit-learn and against the leaf values model.ensemble's docstring states."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray
from sklearn import ensemble as sk_ensemble
from test_ensemble import SAME, interactions, rmse  # tests/test_ensemble.py
from threadpoolctl import threadpool_limits

from model.ensemble import HistGradientBoostingRegressor


def with_outliers(n: int, seed: int) -> tuple[NDArray[Any], NDArray[Any]]:
    """:func:`interactions` with 5 % of the targets thrown far off (one side more than the
    other, so a squared-error fit is also pulled off centre)."""
    X, y = interactions(n, seed=seed)
    rng = np.random.default_rng(seed + 100)
    bad = rng.random(n) < 0.05
    y = y.copy()
    y[bad] += rng.choice([-4.0, 12.0], size=int(bad.sum()), p=[0.3, 0.7])
    return X, y


def median_abs(a: NDArray[Any], b: NDArray[Any]) -> float:
    return float(np.median(np.abs(a - b)))


def test_absolute_error_within_2_percent_of_sklearn() -> None:
    X, y = with_outliers(1200, seed=1)
    tr, te = slice(0, 900), slice(900, None)
    ours = HistGradientBoostingRegressor(loss="absolute_error", **SAME).fit(X[tr], y[tr])
    with threadpool_limits(1):
        ref = sk_ensemble.HistGradientBoostingRegressor(loss="absolute_error", **SAME)
        ref.fit(X[tr], y[tr])
    assert ours.baseline_ == pytest.approx(np.median(y[tr]))
    ref_mae = float(np.mean(np.abs(ref.predict(X[te]) - y[te])))
    assert float(np.mean(np.abs(ours.predict(X[te]) - y[te]))) <= 1.02 * ref_mae


def test_huber_within_2_percent_of_sklearns_gradient_boosting() -> None:
    """scikit-learn's histogram boosting has no Huber loss; its exact-split boosting does,
    with the same δ rule and leaf values. Scored on the clean signal (the outliers are
    noise), where a robust fit shows."""
    X, y = with_outliers(1200, seed=2)
    clean = interactions(1200, seed=2)[1]
    tr, te = slice(0, 900), slice(900, None)
    kw = {"learning_rate": 0.1, "max_leaf_nodes": 31, "min_samples_leaf": 20}
    ours = HistGradientBoostingRegressor(
        loss="huber", alpha=0.9, max_iter=200, early_stopping=False, **kw
    ).fit(X[tr], y[tr])
    Xs = np.nan_to_num(X, nan=-9.0)  # scikit-learn's exact trees refuse NaN: a far value
    ref = sk_ensemble.GradientBoostingRegressor(
        loss="huber", alpha=0.9, n_estimators=200, random_state=0, **kw
    ).fit(Xs[tr], y[tr])
    assert ours.baseline_ == pytest.approx(ref.init_.constant_[0][0])
    assert rmse(ours.predict(X[te]), clean[te]) <= 1.02 * rmse(ref.predict(Xs[te]), clean[te])


@pytest.mark.parametrize("loss", ["absolute_error", "huber"])
def test_robust_losses_ignore_outliers_that_move_squared_error(loss: str) -> None:
    X, y = with_outliers(1500, seed=3)
    clean = interactions(1500, seed=3)[1]
    tr, te = slice(0, 1000), slice(1000, None)
    kw = {"max_iter": 200, "early_stopping": False, "random_state": 0}
    robust = HistGradientBoostingRegressor(loss=loss, **kw).fit(X[tr], y[tr])
    squared = HistGradientBoostingRegressor(**kw).fit(X[tr], y[tr])
    assert rmse(robust.predict(X[te]), clean[te]) < 0.8 * rmse(squared.predict(X[te]), clean[te])


@pytest.mark.parametrize("loss", ["absolute_error", "huber"])
def test_one_tree_has_the_stated_leaf_values(loss: str) -> None:
    """One tree, η = 0.5: each leaf is η × the location of its rows' residuals y − F₀."""
    X, y = with_outliers(400, seed=4)
    model = HistGradientBoostingRegressor(
        loss=loss, max_iter=1, learning_rate=0.5, max_leaf_nodes=4, early_stopping=False
    ).fit(X, y)
    tree = model.trees_[0]
    r = y - np.median(y)
    delta = float(np.percentile(np.abs(r), 90.0))
    leaf_of_row = tree.apply_binned(model.bin_mapper_.transform(X), model.bin_mapper_.missing_bin)
    assert np.unique(leaf_of_row).size == 4
    for leaf in np.unique(leaf_of_row):
        rl = r[leaf_of_row == leaf]
        m = np.median(rl)
        expected = m if loss == "absolute_error" else m + np.clip(rl - m, -delta, delta).mean()
        assert tree.value[leaf] == pytest.approx(0.5 * expected)
    np.testing.assert_allclose(model.predict(X), np.median(y) + tree.value[leaf_of_row])


@pytest.mark.parametrize("loss", ["absolute_error", "huber"])
def test_early_stopping_scores_the_loss(loss: str) -> None:
    X, y = with_outliers(600, seed=5)
    model = HistGradientBoostingRegressor(
        loss=loss, max_iter=300, early_stopping=True, n_iter_no_change=5, random_state=0
    ).fit(X, y)
    assert model.n_iter_ < 300
    scores = model.validation_score_
    assert scores.shape == (model.n_iter_ + 1,) and scores.max() > scores[0]


@pytest.mark.parametrize(
    ("param", "value", "message"),
    [
        ("loss", "quantile", r"loss must be one of \['squared_error', 'absolute_error', 'huber'\]"),
        ("alpha", 1.0, r"alpha must be a number in \(0, 1\)"),
        ("alpha", 0.0, r"alpha must be a number in \(0, 1\)"),
    ],
)
def test_invalid_loss_parameters_name_the_parameter(param: str, value: Any, message: str) -> None:
    X, y = interactions(50, seed=6)
    with pytest.raises(ValueError, match=message):
        HistGradientBoostingRegressor(**{param: value}).fit(X, y)
