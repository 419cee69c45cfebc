"""The quality floors of the tree models on Ames, on the project's split and folds.

Both are the 5-fold CV RMSE of log(price) over the training part of ``configs/ames-full.toml``'s
rows (the figure the grid search selects on, as in ``tests/test_quality.py``):

- the boosting model alone, with the settings below (``BOOSTING``: the Huber loss, 3,000
  trees of 5 leaves), on the 79 columns of ``ames-full.toml``: <= 0.113 (LightGBM tuned
  reaches 0.1134 on the same folds);
- ``configs/ames-best.toml`` itself (a Huber regression with boosting fitted to its
  residuals, boosting on its own and a kernel ridge averaged, with its derived features and
  its quality scales as ranks): <= 0.106.

Each is scored as the grid search scores a candidate (five CV fits, not a whole run with its
refit, intervals and learning curve). Measured: 0.1108 and 0.10595 (the fourth round of the
race in docs/PERFORMANCE.md; with the vote's weights chosen fold by fold on the other folds
it would be 0.1061, so the second floor is met without margin). The boosting test fails if
the model gets worse than measured (a regression) and is an expected failure, with its
figure, while it sits between that and its floor.
"""

from __future__ import annotations

from typing import Any

import pytest
from test_quality import _config  # tests/test_quality.py

from model.selection import KFold, cross_validate, train_test_split
from model.workflow.config import Config
from model.workflow.train import build_pipeline, prepare_data


def cv_rmse_log(cfg: Config) -> dict[str, Any]:
    """The config's model (its fixed params, one candidate) scored on the project's training
    part and folds, as the grid search scores it: only the five CV fits, not a whole run."""
    data = prepare_data(cfg)
    X_train, _, y_train, _ = train_test_split(
        data.table, data.y, test_size=cfg.test_size, random_state=cfg.seed
    )
    model = build_pipeline(cfg)  # no grid: its fixed params are the one candidate
    folds = KFold(cfg.folds, shuffle=True, random_state=cfg.seed)
    scores = cross_validate(model, X_train, y_train, cv=folds, scoring="rmse_log")["rmse_log"]
    return {"mean": scores["mean"], "folds": list(scores["folds"])}


def check_floor(cv: dict[str, Any], floor: float, reached: float) -> None:
    assert len(cv["folds"]) == 5
    assert cv["mean"] <= reached + 0.001, cv  # no worse than measured (and rounding)
    if cv["mean"] > floor:
        pytest.xfail(f"CV RMSE(log) {cv['mean']:.4f}: short of the {floor} floor")


#: The boosting model the floor was measured with (``ames-best.toml``'s before it chained
#: boosting to a Huber regression's residuals; its own boosting base has other settings now).
BOOSTING: dict[str, Any] = {
    "loss": "huber",
    "alpha": 0.9,
    "max_iter": 3000,
    "learning_rate": 0.015,
    "max_leaf_nodes": 5,
    "min_samples_leaf": 5,
    "l2_regularization": 1.0,
    "max_features": 0.3,
    "subsample": 0.7,
    "early_stopping": False,
    "random_state": 0,
}


@pytest.mark.slow
def test_boosting_alone_meets_the_floor() -> None:
    cfg = _config("ames-full.toml").with_overrides(estimator="gbdt", params=BOOSTING, grid={})
    regressor = build_pipeline(cfg).named_steps["regressor"].regressor
    assert type(regressor).__name__ == "HistGradientBoostingRegressor"
    check_floor(cv_rmse_log(cfg), floor=0.113, reached=0.1108)


@pytest.mark.slow
@pytest.mark.timeout(1800)  # five fits of three models; the suite's 600 s hang guard is too tight
def test_best_config_meets_the_floor() -> None:
    cv = cv_rmse_log(_config("ames-best.toml"))
    assert len(cv["folds"]) == 5
    assert cv["mean"] <= 0.106, cv
