"""The quality floors of the tree models on Ames, on the project's split and folds.

Both are the 5-fold CV RMSE of log(price) over the training part of ``configs/ames-full.toml``'s
rows (the figure the grid search selects on, as in ``tests/test_quality.py``):

- the boosting model alone, with the settings ``configs/ames-best.toml`` gives its ``gbdt``
  base model (the Huber loss included), on the 79 columns of ``ames-full.toml``: <= 0.113
  (LightGBM tuned reaches 0.1134 on the same folds);
- ``configs/ames-best.toml`` itself (a Huber regression, the boosting model and a kernel
  ridge averaged, with its derived features and its quality scales as ranks): <= 0.106.

Each is scored as the grid search scores a candidate (five CV fits, not a whole run with its
refit, intervals and learning curve). Measured: 0.1108 (floor met) and 0.1066 (short of
its floor; the three rounds of the race in docs/PERFORMANCE.md found nothing below ~0.1065).
Each test fails hard if the model gets worse than what was measured (a regression), and is
reported as an expected failure, with its figure, while it sits between that and the floor.
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


@pytest.mark.slow
def test_boosting_alone_meets_the_floor() -> None:
    best = _config("ames-best.toml")
    params = {k.removeprefix("gbdt__"): v for k, v in best.params.items() if k.startswith("gbdt__")}
    cfg = _config("ames-full.toml").with_overrides(estimator="gbdt", params=params, grid={})
    regressor = build_pipeline(cfg).named_steps["regressor"].regressor
    assert type(regressor).__name__ == "HistGradientBoostingRegressor"
    check_floor(cv_rmse_log(cfg), floor=0.113, reached=0.1108)


@pytest.mark.slow
def test_best_config_meets_the_floor() -> None:
    check_floor(cv_rmse_log(_config("ames-best.toml")), floor=0.106, reached=0.1066)
