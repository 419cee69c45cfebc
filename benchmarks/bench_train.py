"""End-to-end training time of the default config, against scikit-learn measured in the same run.

Rows:

1. ``houseprice train --config configs/ames.toml`` in-process, with plots and without
   (target: < 30 s with plots on this machine);
2. its stages: load + filter + rename, the grid search (5 alphas x 5 folds + refit),
   everything else (test metrics, drift reference, learning curve, run dir, artifact);
3. the reference: the same features, rows, folds and grid through scikit-learn's
   ``ColumnTransformer`` + ``TransformedTargetRegressor(Ridge)`` + ``GridSearchCV``
   (``n_jobs=1``), so the ratio compares like with like.

Each timing is the best of ``REPEATS`` runs (the machine is shared; the best is the least
disturbed). Prints a table; asserts nothing. Run: ``.venv/bin/python benchmarks/bench_train.py``.
"""

from __future__ import annotations

import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from model.selection import GridSearchCV, KFold, train_test_split  # noqa: E402
from model.workflow.cli import main  # noqa: E402
from model.workflow.config import Config, load_config  # noqa: E402
from model.workflow.train import METRICS, PARAM_PREFIX, build_pipeline, prepare_data  # noqa: E402
from tests.reference import ALPHA_PARAM, frame, sklearn_pipeline  # noqa: E402

REPEATS = 3


def best_time(fn: Callable[[], object], repeats: int = REPEATS) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def sklearn_search(cfg: Config, X: dict[str, np.ndarray], y: np.ndarray) -> Callable[[], object]:
    from sklearn.model_selection import GridSearchCV as SkGridSearchCV

    folds = list(KFold(cfg.folds, shuffle=True, random_state=cfg.seed).split(X))
    grid = {ALPHA_PARAM: cfg.grid["alpha"]}
    search = SkGridSearchCV(
        sklearn_pipeline(cfg), grid, cv=folds, scoring="neg_root_mean_squared_error", n_jobs=1
    )
    X_frame = frame(X)
    return lambda: search.fit(X_frame, y)


def main_bench() -> None:
    os.chdir(ROOT)
    cfg = load_config("configs/ames.toml")
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    print(
        f"Python {platform.python_version()}, NumPy {np.__version__}; "
        f"cores {os.cpu_count()}; load avg {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}"
    )
    print(f"config {cfg.source}: {len(cfg.features)} features, grid {cfg.grid}, {cfg.folds} folds")

    with tempfile.TemporaryDirectory() as d:

        def cli(plots: bool) -> Callable[[], object]:
            args = ["train", "--config", "configs/ames.toml", "--quiet"]
            args += ["--out", f"{d}/m.joblib", "--runs-dir", f"{d}/runs"]
            return lambda: main(args if plots else [*args, "--no-plots"])

        t_cli_plots = best_time(cli(True))
        t_cli = best_time(cli(False))

    t_prep = best_time(lambda: prepare_data(cfg))
    data = prepare_data(cfg)
    X, _, y, _ = train_test_split(
        data.table, data.y, test_size=cfg.test_size, random_state=cfg.seed
    )
    kfold = KFold(cfg.folds, shuffle=True, random_state=cfg.seed)
    grid = {PARAM_PREFIX + k: v for k, v in cfg.grid.items()}
    scoring = [cfg.scoring, *[m for m in METRICS if m != cfg.scoring]]

    def ours() -> object:
        return GridSearchCV(build_pipeline(cfg), grid, scoring=scoring, cv=kfold).fit(X, y)

    def ours_one_metric() -> object:
        return GridSearchCV(build_pipeline(cfg), grid, scoring=cfg.scoring, cv=kfold).fit(X, y)

    t_search = best_time(ours)
    t_search_1 = best_time(ours_one_metric)
    t_sk = best_time(sklearn_search(cfg, X, y))

    rows = [
        ("houseprice train (with plots)", t_cli_plots, "target < 30 s"),
        ("houseprice train --no-plots", t_cli, ""),
        ("  load + filter + rename", t_prep, ""),
        ("  grid search, 6 metrics + refit", t_search, ""),
        ("  rest (test, drift ref, curve, files)", max(t_cli - t_prep - t_search, 0.0), ""),
        ("ours: grid search, 1 metric + refit", t_search_1, ""),
        ("sklearn GridSearchCV, 1 metric + refit", t_sk, "reference"),
    ]
    print()
    print(f"{'step':<42} {'seconds':>8} {'x sklearn':>10}  note")
    for name, t, note in rows:
        print(f"{name:<42} {t:>8.3f} {t / t_sk:>10.2f}  {note}")


if __name__ == "__main__":
    main_bench()
