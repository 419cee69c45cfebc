"""The scikit-learn model that does the same work as ``model.workflow.train.build_pipeline``.

One reference for the quality test (``tests/test_quality.py``: our CV error within 2 % of
it), the training benchmark (``benchmarks/bench_train.py``: its ``GridSearchCV`` time) and
the serving benchmark (``benchmarks/bench_service.py``: the tutorial app). Built from a
training config, feature by feature:

- plain numeric ``x``: median impute, then ``(x - mean) / std``;
- logged numeric ``x``: median impute, ``log1p(x)``, then scale;
- categorical: one-hot, unseen categories all zeros (``handle_unknown="ignore"``); a missing
  value (``None``) is its own category, which scikit-learn's encoder supports directly (ours:
  all zeros; the same work, a near-identical price);
- Ridge on ``log(price)``, predictions mapped back with ``exp``, so the squared error the
  fit minimises is the one on log price that ``rmse_log`` reports.

The Ridge step is named ``ridge`` inside the ``regressor`` of the target transform: the grid
search parameter is ``regressor__ridge__alpha``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer, TransformedTargetRegressor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from model.workflow.config import Config

ALPHA_PARAM = "regressor__ridge__alpha"


def sklearn_pipeline(cfg: Config, alpha: float = 1.0) -> TransformedTargetRegressor:
    """The unfitted reference model for the features of ``cfg``, Ridge with ``alpha``."""
    plain = [f.name for f in cfg.features if f.kind == "numeric" and f.transform is None]
    logged = [f.name for f in cfg.features if f.kind == "numeric" and f.transform == "log"]
    cats = [f.name for f in cfg.features if f.kind == "categorical"]
    pre = ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), plain),
            (
                "log",
                make_pipeline(
                    SimpleImputer(strategy="median"),
                    FunctionTransformer(np.log1p),
                    StandardScaler(),
                ),
                logged,
            ),
            ("cat", OneHotEncoder(handle_unknown="ignore"), cats),
        ]
    )
    return TransformedTargetRegressor(
        make_pipeline(pre, Ridge(alpha=alpha)), func=np.log, inverse_func=np.exp
    )


def frame(table: Mapping[str, Any]) -> pd.DataFrame:
    """A column table (``name -> 1-D array``, ``None`` for a missing category) as a DataFrame."""
    return pd.DataFrame({k: np.asarray(v) for k, v in table.items()})
