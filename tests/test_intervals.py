"""Split-conformal prediction intervals: the quantile rule, out-of-fold predictions against
scikit-learn, the coverage they promise, and the record every artifact carries."""

from __future__ import annotations

import math

import numpy as np
import pytest
import sklearn.linear_model as sl
import sklearn.model_selection as sms

from model.linear import Ridge
from model.selection import GridSearchCV, KFold, cross_val_predict
from model.workflow.artifact import load_artifact
from model.workflow.intervals import (
    LEVELS,
    IntervalRule,
    bounds,
    calibrate,
    conformal_halfwidth,
    coverage,
)


def test_halfwidth_is_the_finite_sample_order_statistic() -> None:
    r = np.array([5.0, -1.0, 3.0, 2.0, -4.0, 0.5, 6.0, -7.0, 8.0])  # |r| sorted: .5 1 2 3 4 5 6 7 8
    assert conformal_halfwidth(r, 0.5) == 4.0  # ceil(10 * 0.5) = 5th smallest
    assert conformal_halfwidth(r, 0.8) == 7.0  # ceil(10 * 0.8) = 8th
    assert conformal_halfwidth(r, 0.9) == 8.0  # 9th: the largest
    assert conformal_halfwidth(r, 0.95) == math.inf  # 10th of 9: no finite guarantee
    with pytest.raises(ValueError, match="level must be in"):
        conformal_halfwidth(r, 1.0)


def test_bounds_and_coverage_on_each_scale() -> None:
    p = np.array([100.0, 200.0])
    low, high = bounds(p, math.log(2.0), "log")
    np.testing.assert_allclose(low, [50.0, 100.0])
    np.testing.assert_allclose(high, [200.0, 400.0])
    low, high = bounds(p, 10.0, "price")
    np.testing.assert_allclose(low, [90.0, 190.0])
    assert coverage(np.array([150.0, 401.0]), p, math.log(2.0), "log") == 0.5


def test_a_rule_gives_a_house_the_bounds_of_its_scale() -> None:
    """What the service serves: ``of`` one price is ``around`` of a list of one, and both are
    ``bounds``' figures."""
    for space, q in (("log", math.log(2.0)), ("price", 10.0)):
        rule = IntervalRule(0.9, q, space)  # type: ignore[arg-type]
        low, high = bounds(np.array([100.0, 250.0]), q, space)  # type: ignore[arg-type]
        assert rule.around([100.0, 250.0]) == [
            {"level": 0.9, "low": low[i], "high": high[i]} for i in range(2)
        ]
        assert rule.of(250.0) == rule.around([250.0])[0]


def test_cross_val_predict_matches_sklearn() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 4))
    y = X @ [1.0, -2.0, 0.5, 3.0] + rng.normal(0, 0.3, 120)
    folds = list(KFold(5, shuffle=True, random_state=3).split(X))
    ours = cross_val_predict(Ridge(alpha=2.0), X, y, cv=folds)
    ref = sms.cross_val_predict(sl.Ridge(alpha=2.0), X, y, cv=folds)
    np.testing.assert_allclose(ours, ref, rtol=1e-10)
    with pytest.raises(ValueError, match="partition"):
        cross_val_predict(Ridge(), X, y, cv=folds[:4])


def test_search_keeps_the_best_candidates_out_of_fold_predictions() -> None:
    rng = np.random.default_rng(2)
    X = rng.normal(size=(90, 5))
    y = X @ [2.0, 0.0, -1.0, 0.5, 0.0] + rng.normal(0, 1.0, 90)
    folds = list(KFold(5, shuffle=True, random_state=1).split(X))
    # Ties break to the first of the best, as the ranks do: 1e6 and 1e7 both predict ~mean(y).
    grid = {"alpha": [1e7, 1e6, 0.01, 3.0, 30.0]}
    for scoring in ["mse", "r2", "mae"]:
        search = GridSearchCV(Ridge(), grid, scoring=scoring, cv=folds).fit(X, y)
        expected = cross_val_predict(Ridge(**search.best_params_), X, y, cv=folds)
        np.testing.assert_array_equal(search.oof_predictions_, expected)
        assert search.best_params_["alpha"] < 1e6
    tie = GridSearchCV(Ridge(), {"alpha": [1e12, 1e13]}, cv=folds).fit(X, y)
    assert tie.best_index_ == 0
    np.testing.assert_array_equal(
        tie.oof_predictions_, cross_val_predict(Ridge(alpha=1e12), X, y, cv=folds)
    )
    # Folds that leave rows out give no out-of-fold predictions, not a half-filled array.
    assert GridSearchCV(Ridge(), grid, cv=folds[:3]).fit(X, y).oof_predictions_ is None


def test_intervals_cover_new_exchangeable_rows_at_their_level() -> None:
    rng = np.random.default_rng(1)
    n = 4000
    X = rng.normal(size=(2 * n, 3))
    log_y = 12.0 + X @ [0.3, -0.2, 0.1] + rng.normal(0, 0.15, 2 * n)
    y = np.exp(log_y)
    model = Ridge(alpha=1.0)
    folds = KFold(5, shuffle=True, random_state=0)
    oof = np.exp(cross_val_predict(model, X[:n], log_y[:n], cv=folds))
    p_new = np.exp(model.fit(X[:n], log_y[:n]).predict(X[n:]))
    rec = calibrate(y[:n], oof, y[n:], p_new, "log")
    assert [lv["level"] for lv in rec["levels"]] == list(LEVELS)
    for lv in rec["levels"]:
        assert abs(lv["coverage_test"] - lv["level"]) < 0.02, lv  # 4,000 new rows: sd < 0.7 pt


def test_the_default_artifact_carries_calibrated_intervals(artifact_path: str) -> None:
    rec = load_artifact(artifact_path).metadata["intervals"]
    assert rec["space"] == "log" and rec["residuals"] > 2000
    by_level = {lv["level"]: lv for lv in rec["levels"]}
    assert abs(by_level[0.9]["coverage_test"] - 0.9) <= 0.03  # issue 15's target on the data
    widths = [lv["halfwidth"] for lv in rec["levels"]]
    assert widths == sorted(widths) and all(math.isfinite(w) for w in widths)


def test_too_few_residuals_give_no_interval_rather_than_an_infinite_one() -> None:
    y = np.array([100.0, 110.0, 90.0, 105.0, 95.0])
    rec = calibrate(y, y * 1.02, y, y, "log")
    by_level = {lv["level"]: lv for lv in rec["levels"]}
    assert by_level[0.8]["halfwidth"] == pytest.approx(math.log(1.02))  # ceil(6 * 0.8) = 5th
    assert by_level[0.9] == {"level": 0.9, "halfwidth": None, "coverage_test": None}
