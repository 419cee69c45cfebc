"""The quality floors of the tree models on Ames, on the project's split and folds.

Both are the 5-fold CV RMSE of log(price) over the training part of ``configs/ames-full.toml``'s
rows (the figure the grid search selects on, as in ``tests/test_quality.py``):

- the boosting model alone, with the settings ``configs/ames-best.toml`` gives its ``gbdt``
  base model: <= 0.113 (LightGBM tuned reaches 0.1134 on the same folds);
- ``configs/ames-best.toml`` itself (ridge and boosting averaged): <= 0.106.

Measured: 0.1128 (floor met) and 0.1089 (short of its floor). Each test fails hard if the model
gets worse than what was measured (a regression), and is reported as an expected failure, with
its figure, while it sits between that and the floor.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_quality import _config  # tests/test_quality.py

from model.workflow.train import train


def check_floor(cv: dict[str, Any], floor: float, reached: float) -> None:
    assert len(cv["folds"]) == 5
    assert cv["mean"] <= reached + 0.001, cv  # no worse than measured (and rounding)
    if cv["mean"] > floor:
        pytest.xfail(f"CV RMSE(log) {cv['mean']:.4f}: short of the {floor} floor")


@pytest.mark.slow
def test_boosting_alone_meets_the_floor(tmp_path: Path) -> None:
    best = _config("ames-best.toml")
    params = {k.removeprefix("gbdt__"): v for k, v in best.params.items() if k.startswith("gbdt__")}
    cfg = _config("ames-full.toml").with_overrides(estimator="gbdt", params=params, grid={})
    meta = train(cfg, tmp_path / "model.joblib", tmp_path / "runs", plots=False).metadata
    assert meta["model"]["estimator"] == "HistGradientBoostingRegressor"
    check_floor(meta["cv"]["rmse_log"], floor=0.113, reached=0.1128)


@pytest.mark.slow
def test_best_config_meets_the_floor(tmp_path: Path) -> None:
    cfg = _config("ames-best.toml")
    meta = train(cfg, tmp_path / "model.joblib", tmp_path / "runs", plots=False).metadata
    check_floor(meta["cv"]["rmse_log"], floor=0.106, reached=0.1089)
