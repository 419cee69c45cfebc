"""A model fitted from a sum of parts' ``S``: its preprocessing statistics, the estimators' own
solver on the resulting ``XᵀX``, ``Xᵀy`` (:meth:`model.linear.LinearRegression.fit_stats`), and
the fitted pipeline built from those statistics."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from model.base import FloatArray, clone
from model.linear import ElasticNet, LinearRegression, SufficientStats
from model.workflow.config import Config, ConfigError
from model.workflow.data import DataError
from model.workflow.stream.sample import Sample, medians
from model.workflow.stream.sums import Layout


@dataclass
class FoldFit:
    """A model fitted on a sum of parts, as a linear map of ``u``, and its preprocessing."""

    beta: FloatArray  # prediction of f(y) = u @ beta
    estimator: Any
    fills: FloatArray  # imputer statistics (raw scale), per numeric feature
    mean: FloatArray  # scaler mean_ per numeric feature (transformed scale)
    var: FloatArray
    n: int
    categories: list[list[str]]  # per categorical feature, the ones seen in the training rows
    counts: list[FloatArray]


def fit_from_sums(
    cfg: Config, lay: Layout, S: FloatArray, sample: Sample | None, estimator: Any
) -> FoldFit:
    """Fit ``estimator`` (unfitted) on the rows whose augmented sums are ``S``."""
    from model.preprocessing import StandardScaler

    one = lay.one
    n = float(S[one, one])
    m = lay.n_num
    count = n - np.array([S[lay.miss(j), one] for j in range(m)])
    for j, f in enumerate(lay.numeric):
        if count[j] <= 0:
            raise DataError(
                f"{cfg.data_path}: feature {f.name!r} is missing in every training row of a "
                f"fold; {cfg.impute} imputation cannot learn from it"
            )
    logged = lay.logged
    if cfg.impute == "mean":
        fills = np.array(
            [
                (lay.raw_shift[j] + S[lay.raw(j), one] / count[j])
                if logged[j]
                else (lay.shift[j] + S[lay.num(j), one] / count[j])
                for j in range(m)
            ]
        )
    else:
        assert sample is not None
        fills = medians(sample)[:m]  # the sample's last column is the target
    tfill = np.where(logged, np.log1p(np.where(logged, fills, 0.0)), fills) - lay.shift
    # W maps u to v = [z - c (imputed, transformed, shifted), one-hot kept columns, f(y) - c_y]
    cats: list[list[str]] = []
    counts: list[FloatArray] = []
    onehot_cols: list[int] = []
    for off, names in zip(lay.cat_offsets(), lay.categories, strict=True):
        c = np.array([S[off + i, one] for i in range(len(names))])
        seen = np.flatnonzero(c > 0)
        cats.append([names[i] for i in seen])
        counts.append(c[seen])
        onehot_cols.extend((off + seen).tolist())
    q = m + len(onehot_cols)
    W = np.zeros((q + 1, lay.width))
    for j in range(m):
        W[j, lay.num(j)] = 1.0
        W[j, lay.miss(j)] = tfill[j]
    for i, col in enumerate(onehot_cols):
        W[m + i, col] = 1.0
    W[q, lay.y] = 1.0
    Sv = W @ S @ W.T
    sv = W @ S[:, one]
    mean_v = sv / n
    C = Sv - np.outer(sv, sv) / n
    C = (C + C.T) / 2
    var = np.maximum(np.diag(C)[:m] / n, 0.0)
    scaler = StandardScaler.from_moments(int(n), lay.shift + mean_v[:m], var)
    scale = np.concatenate([scaler.scale_, np.ones(q - m)])
    D = np.concatenate([1.0 / scale, [1.0]])
    Cx = C * D[:, None] * D[None, :]
    x_mean = np.concatenate([np.zeros(m), mean_v[m:q]])
    y_mean = float(lay.y_shift + mean_v[q])
    fit_intercept = bool(getattr(estimator, "fit_intercept", True))
    G, qv, yy = Cx[:q, :q], Cx[:q, q], float(Cx[q, q])
    if fit_intercept:
        stats = SufficientStats(int(n), x_mean, y_mean, G, qv, yy)
    else:
        ym = float(mean_v[q]) + lay.y_shift
        xm = x_mean
        stats = SufficientStats(
            int(n),
            np.zeros(q),
            0.0,
            G + n * np.outer(xm, xm),
            qv + n * xm * ym,
            yy + n * ym * ym,
        )
    est = clone(estimator)
    if not isinstance(est, LinearRegression | ElasticNet):
        raise ConfigError(f"{type(est).__name__} cannot be fitted from sums")
    est.fit_stats(stats)
    w = np.asarray(est.coef_, dtype=np.float64)
    # prediction = b + Σ w_j x_j, x_j = (v_j - mean_v_j) / scale_j for numeric, v_j for one-hot
    coef_v = w / scale
    b0 = float(est.intercept_) - float(coef_v[:m] @ mean_v[:m])
    beta = W[:q].T @ coef_v
    beta[one] += b0
    return FoldFit(beta, est, fills, scaler.mean_, var, int(n), cats, counts)


def pipeline_from_fit(cfg: Config, lay: Layout, fit: FoldFit, params: dict[str, Any]) -> Any:
    """The fitted pipeline of :func:`model.workflow.train.build_pipeline`, from statistics."""
    from model.compose import CATEGORICAL, NUMERIC, ColumnTransformer
    from model.pipeline import Pipeline
    from model.preprocessing import LogTransformer, OneHotEncoder, SimpleImputer, StandardScaler
    from model.workflow.train import build_pipeline

    pipe = build_pipeline(cfg).set_params(**params)
    ct_spec = pipe.named_steps["features"]
    kinds: dict[str, str] = {}
    fitted: list[tuple[str, Any, list[str]]] = []
    widths: list[int] = []
    logged = lay.logged
    for name, est, names in ct_spec.transformers:
        if name == "categorical":
            idx = [
                lay.categorical.index(next(f for f in cfg.features if f.name == c)) for c in names
            ]
            enc = OneHotEncoder.from_categories([fit.categories[i] for i in idx])
            fitted.append((name, enc, list(names)))
            widths.append(sum(len(fit.categories[i]) for i in idx))
            kinds.update({c: CATEGORICAL for c in names})
            continue
        js = [next(j for j, f in enumerate(lay.numeric) if f.name == c) for c in names]
        steps: list[tuple[str, Any]] = []
        for step, _ in est.steps:
            if step == "impute":
                steps.append((step, SimpleImputer.from_statistics(fit.fills[js], cfg.impute)))
            elif step == "log":
                assert logged[js].all()
                steps.append((step, LogTransformer().fit(np.zeros((1, len(js))))))
            elif step == "scale":
                steps.append((step, StandardScaler.from_moments(fit.n, fit.mean[js], fit.var[js])))
        block = Pipeline(steps)
        block.fitted_steps_ = tuple(e for _, e in steps)
        fitted.append((name, block, list(names)))
        widths.append(len(names))
        kinds.update({c: NUMERIC for c in names})
    ct = ColumnTransformer.from_fitted(fitted, kinds, widths)
    reg = pipe.named_steps["regressor"]
    reg.regressor_ = fit.estimator
    out = Pipeline([("features", ct), ("regressor", reg)])
    out.fitted_steps_ = (ct, reg)
    return out
