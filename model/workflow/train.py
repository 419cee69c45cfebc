"""One training run: data -> rows kept -> split -> grid search with k-fold CV -> test -> artifact.

The steps and why they are in this order:

1. Load the CSV, keep the rows the config's filters allow (each filter states its reason
   in the config), and rename source columns to the API names, so the fitted pipeline
   takes exactly what a client sends.
2. Hold out ``test_size`` of the rows with a seeded permutation. They are touched once, at
   the end: a score on rows used to choose the model would flatter it.
3. On the training part, score each grid point by k-fold CV (the same folds for every
   candidate) and refit the best on the whole training part. The CV spread across folds is
   recorded with the mean, because 0.125 ± 0.02 and 0.125 ± 0.002 are different claims.
4. Evaluate on the test part; write plots, the run record, the model card and the
   artifact (via :func:`model.workflow.artifact.save_artifact`) into ``runs/<id>/``; verify
   that stored artifact and install a copy of it as the served one (``--out``, via
   :func:`model.workflow.registry.install`, recorded in ``runs/promotions.jsonl``), and
   last write the one-line entry in ``runs/index.jsonl``.

Failure safety: nothing is written before the model is fitted and evaluated; the run
directory is built under a temporary name and renamed into place; the artifact is replaced
atomically; the index is rewritten whole and renamed (see
:func:`model.workflow.runs.append_index`). An error or an interrupt at any point leaves the
previous artifact and the index as they were.
"""

from __future__ import annotations

import json
import math
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from model import ensemble, kernel, linear, metrics, robust, tree
from model.base import Columns, FloatArray, clone
from model.compose import ColumnTransformer, TransformedTargetRegressor
from model.derived import DerivedFeatures, expression_names
from model.drift import build_reference
from model.ensemble import StackingRegressor, VotingRegressor, report_trees
from model.pipeline import Pipeline
from model.preprocessing import (
    LogTransformer,
    OneHotEncoder,
    OrdinalEncoder,
    SimpleImputer,
    StandardScaler,
)
from model.residual import ResidualRegressor
from model.selection import GridSearchCV, KFold, train_test_split
from model.workflow.atomic import atomic_write_text
from model.workflow.checks import check_features, check_row_count, grid_edge_warnings
from model.workflow.config import COMBINERS, INFO_KEYS, Config, ConfigError, Feature, RowFilter
from model.workflow.data import DataError, first_non_number, load_csv
from model.workflow.explore import category_signal, target_scale
from model.workflow.intervals import calibrate
from model.workflow.progress import ProgressBar
from model.workflow.registry import install, read_run_artifact, record_promotion
from model.workflow.runs import RUN_ARTIFACT, append_index, locked, new_run_id

#: Metrics reported for the test part and, across folds, for the CV.
METRICS = ("rmse_log", "rmse", "mae", "r2", "mape", "mse")


# --- data ------------------------------------------------------------------------------------


def _as_category_column(col: NDArray[Any]) -> NDArray[Any]:
    """Numeric codes read from the CSV (``MS.SubClass = 20``) as category strings ``"20"``."""
    if col.dtype == object:
        return col
    out = np.empty(col.size, dtype=object)
    out[:] = [None if math.isnan(v) else (f"{v:g}") for v in col.tolist()]
    return out


def _filter_mask(rule: RowFilter, col: NDArray[Any]) -> NDArray[np.bool_]:
    """Rows where ``col op value`` holds; a missing value never satisfies a filter."""
    if rule.op in ("<", "<=", ">", ">="):
        if col.dtype == object:
            raise DataError(
                f"filter on {rule.column!r}: {rule.op!r} needs a numeric column, but it holds text"
            )
        with np.errstate(invalid="ignore"):
            ops: dict[str, Callable[[Any, Any], Any]] = {
                "<": np.less,
                "<=": np.less_equal,
                ">": np.greater,
                ">=": np.greater_equal,
            }
            return np.asarray(ops[rule.op](col, float(rule.value)), dtype=bool)
    values = rule.value if isinstance(rule.value, list) else [rule.value]
    if col.dtype == object:
        wanted = {str(v) for v in values}
        hit = np.array([v is not None and v in wanted for v in col], dtype=bool)
        present = np.array([v is not None for v in col], dtype=bool)
    else:
        hit = np.isin(col, [float(v) for v in values])
        present = ~np.isnan(col)
    keep = hit if rule.op in ("==", "in") else ~hit & present
    return np.asarray(keep, dtype=bool)


@dataclass
class PreparedData:
    """The rows kept, keyed by API feature name, with the target and where they came from."""

    table: Columns
    y: FloatArray
    path: str
    sha256: str
    rows_read: int
    dropped: dict[str, int] = field(default_factory=dict)
    lines: NDArray[np.int64] = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    delimiter: str = ","
    encoding: str = "utf-8-sig"


def prepare_data(cfg: Config) -> PreparedData:
    """Load ``cfg.data_path``, apply the row filters, rename columns to API names, and check
    the config's promises against the rows kept (:mod:`model.workflow.checks`).

    A feature declared numeric whose column holds text is a config error naming the line and
    the word (the model would have to guess); one declared categorical whose column holds
    numbers (codes such as the dwelling class) is turned into strings, as a client would send
    them.
    """
    wanted = [f.column for f in cfg.features]
    extra = [r.column for r in cfg.filters if r.column not in wanted and r.column != cfg.target]
    ds = load_csv(
        cfg.data_path,
        target=cfg.target,
        features=wanted + list(dict.fromkeys(extra)),
        fmt=cfg.csv,
    )
    assert ds.target is not None
    keep = np.ones(ds.n_rows, dtype=bool)
    dropped: dict[str, int] = {}
    for rule in cfg.filters:
        col = ds.target if rule.column == cfg.target else ds.columns[rule.column]
        mask = _filter_mask(rule, col)
        dropped[f"{rule.column} {rule.op} {rule.value}"] = int((keep & ~mask).sum())
        keep &= mask
    kept = " (after the filters)" if cfg.filters else ""
    check_row_count(cfg, int(keep.sum()), f"{cfg.data_path}{kept}")
    table: Columns = {}
    for f in cfg.features:
        col = ds.columns[f.column]
        if f.numeric and ds.kinds[f.column] != "numeric":
            i = first_non_number(col)
            assert i is not None
            raise ConfigError(
                f"{cfg.data_path}: line {ds.lines[i]}, column {f.column!r}: {col[i]!r} is not a "
                f"number, but feature {f.name!r} is declared {f.kind} in {cfg.source} (fix the "
                "value, list it in data.na_values if it means missing, or declare the feature "
                "categorical)"
            )
        if f.kind == "categorical":
            col = _as_category_column(col)
        table[f.name] = col[keep]
    y = ds.target[keep]
    lines = ds.lines[keep]
    # Checked here, naming the file, rather than deep in fit: a missing or (for a log target)
    # non-positive price is bad data, not a bug.
    bad = ~np.isfinite(y) | (~(y > 0) if cfg.target_transform == "log" else False)
    if bad.any():
        need = (
            "a number > 0 (the target is log-transformed)" if cfg.target_transform else "a number"
        )
        k = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{cfg.data_path}: target {cfg.target!r} must be {need} in every row kept; "
            f"{int(bad.sum())} row(s) are not (first at line {lines[k]}: {float(y[k])!r})"
        )
    check_features(cfg, table, lines.tolist())
    return PreparedData(
        table, y, ds.path, ds.sha256, ds.n_rows, dropped, lines, ds.delimiter, ds.encoding
    )


# --- the model ------------------------------------------------------------------------------


def make_estimator(cfg: Config) -> Any:
    """The regressor named by the config, with its fixed ``params``."""

    if cfg.estimator in COMBINERS:
        return combined_estimator(cfg)
    classes: dict[str, Any] = {
        "linear": linear.LinearRegression,
        "ridge": linear.Ridge,
        "lasso": linear.Lasso,
        "elasticnet": linear.ElasticNet,
        "huber": robust.HuberRegressor,
        "kernelridge": kernel.KernelRidge,
        "tree": tree.DecisionTreeRegressor,
        "gbdt": ensemble.HistGradientBoostingRegressor,
        "forest": ensemble.RandomForestRegressor,
    }
    cls = classes[cfg.estimator]
    try:
        return cls().set_params(**cfg.params)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{cfg.source}: model.params: {exc}") from None


def build_pipeline(cfg: Config) -> Any:
    """``table -> ColumnTransformer -> TransformedTargetRegressor(estimator)``.

    Numeric features: median (or, with ``model.impute = "mean"``, mean) imputation (an
    optional field left empty is priced as the typical house), ``log1p`` for the skewed
    sizes marked ``transform = "log"``, then
    standardisation so one penalty ``alpha`` treats every coefficient alike. Categorical
    features: one-hot, where missing and never-seen categories are all zeros, i.e. the
    baseline. The ``[[derived]]`` features, if any, are one more block (:func:`derived_block`).
    The target is fitted on the log scale and predicted back in dollars.
    """

    if cfg.estimator in NATIVE or cfg.estimator in COMBINERS:
        return ensemble_pipeline(cfg)
    plain = [f.name for f in cfg.features if f.numeric and f.transform is None]
    logged = [f.name for f in cfg.features if f.numeric and f.transform == "log"]
    cats = [f.name for f in cfg.features if f.kind == "categorical"]
    blocks: list[tuple[str, Any, list[str]]] = []
    if plain:
        steps = [("impute", SimpleImputer(strategy=cfg.impute)), ("scale", StandardScaler())]
        blocks.append(("numeric", Pipeline(steps), plain))
    if logged:
        steps = [
            ("impute", SimpleImputer(strategy=cfg.impute)),
            ("log", LogTransformer()),
            ("scale", StandardScaler()),
        ]
        blocks.append(("log_numeric", Pipeline(steps), logged))
    blocks += derived_block(cfg, scaled=True)
    if cats:
        blocks.append(("categorical", OneHotEncoder(), cats))
    blocks += ordered_block(cfg)
    func: Literal["log"] | None = "log" if cfg.target_transform == "log" else None
    regressor = TransformedTargetRegressor(make_estimator(cfg), func=func)
    return Pipeline([("features", ColumnTransformer(blocks)), ("regressor", regressor)])


def ordered_block(cfg: Config) -> list[tuple[str, Any, list[str]]]:
    """The ``ColumnTransformer`` block of the categorical features that declare an ``order``
    (none without them), for the linear models: each one's rank on its scale (lowest 0), a
    missing or undeclared category one below the lowest (a missing grade usually means the
    thing graded is absent), standardised. It comes in addition to the one-hot
    block, which keeps each category's own coefficient; the rank lets a model use the scale
    as a number (and a kernel multiply it with other features).
    """

    ordered = [f for f in cfg.features if f.order is not None]
    if not ordered:
        return []
    steps = [
        ("encode", OrdinalEncoder(categories=[list(f.order or ()) for f in ordered])),
        ("impute", SimpleImputer(strategy="constant", fill_value=-1.0)),
        ("scale", StandardScaler()),
    ]
    return [("ordered", Pipeline(steps), [f.name for f in ordered])]


def derived_block(cfg: Config, scaled: bool) -> list[tuple[str, Any, list[str]]]:
    """The ``ColumnTransformer`` block of the ``[[derived]]`` features (none without them).

    Its input is every feature the expressions read; its output the derived values, in the
    config's order. ``scaled`` (the linear models): imputed, ``log1p`` where the config says
    ``transform = "log"``, standardised, as the declared features are. Otherwise (the trees)
    as computed, a missing operand left missing.
    """

    if not cfg.derived:
        return []
    own = {d.name for d in cfg.derived}
    read = [n for d in cfg.derived for n in expression_names(d.expr) if n not in own]
    inputs = list(dict.fromkeys(read))
    derive: Any = DerivedFeatures(inputs, [(d.name, d.expr) for d in cfg.derived])
    if scaled:
        logged = [i for i, d in enumerate(cfg.derived) if d.transform == "log"]
        steps = [("derive", derive), ("impute", SimpleImputer(strategy=cfg.impute))]
        if logged:
            steps.append(("log", LogTransformer(columns=logged)))
        derive = Pipeline([*steps, ("scale", StandardScaler())])
    return [("derived", derive, inputs)]


#: How the pipeline addresses the estimator's hyperparameters (``alpha`` in the config).
PARAM_PREFIX = "regressor__regressor__"


def search_grid(cfg: Config) -> dict[str, list[Any]]:
    """The config's grid in pipeline parameter names.

    Without a grid there is one candidate, the fixed ``params`` (or the estimator's first
    default): the search then only cross-validates it, so every run reports a CV spread.
    """
    if cfg.estimator in COMBINERS:
        return combined_grid(cfg)
    defaults = make_estimator(cfg).get_params(deep=False)
    if cfg.grid:
        unknown = sorted(set(cfg.grid) - set(defaults))
        if unknown:
            raise ConfigError(
                f"{cfg.source}: model.grid: invalid parameter(s) {unknown} for "
                f"{cfg.estimator}; valid parameters: {sorted(defaults)}"
            )
        return {PARAM_PREFIX + k: list(v) for k, v in cfg.grid.items()}
    name, value = next(iter(cfg.params.items()), next(iter(defaults.items())))
    return {PARAM_PREFIX + name: [value]}


# --- tree ensembles and combined models ---------------------------------------------------------

#: Estimators that take missing values and categories natively (no imputation, no one-hot).
NATIVE = ("gbdt", "forest")


def native_features(cfg: Config) -> tuple[Any, list[int]]:
    """``ColumnTransformer`` for the tree ensembles, and the indices of its category columns.

    Numbers pass through as they are, NaN included (the trees learn where missing goes);
    categories become their rank among those seen at fit, missing and never-seen ones NaN,
    which the trees send to their missing bin. No scaling: a tree's splits do not care.
    """

    numbers = [f.name for f in cfg.features if f.kind != "categorical"]
    cats = [f.name for f in cfg.features if f.kind == "categorical"]
    blocks: list[tuple[str, Any, list[str]]] = []
    if numbers:
        blocks.append(("numeric", "passthrough", numbers))
    blocks += derived_block(cfg, scaled=False)
    if cats:
        blocks.append(("categorical", OrdinalEncoder(), cats))
    first = len(numbers) + len(cfg.derived)
    return ColumnTransformer(blocks), list(range(first, first + len(cats)))


def _base_pipeline(cfg: Config, name: str) -> Any:
    """One base model of a stack or a vote: its own features step, then the estimator. A
    chain (``"huber+gbdt"``) is a :class:`ResidualRegressor` over one such pipeline a model."""

    if "+" in name:
        return ResidualRegressor([(part, _base_pipeline(cfg, part)) for part in name.split("+")])
    sub = replace(cfg, estimator=name, params={}, grid={}, base=())
    if name in NATIVE:
        features, cats = native_features(sub)
        est = make_estimator(sub).set_params(categorical_features=cats)
    else:
        features, est = build_pipeline(sub).named_steps["features"], make_estimator(sub)
    return Pipeline([("features", features), ("model", est)])


def _combined_key(cfg: Config, key: str) -> str:
    """``gbdt__max_iter`` in the config -> ``gbdt__model__max_iter`` in the combined model;
    in a chain, ``huber+gbdt__gbdt__max_iter`` -> ``huber+gbdt__gbdt__model__max_iter``."""
    name, sep, rest = key.partition("__")
    if not sep or name not in cfg.base:
        return key
    if "+" in name:
        part, sep, rest = rest.partition("__")
        return f"{name}__{part}__model__{rest}" if sep else key
    return f"{name}__model__{rest}"


def combined_estimator(cfg: Config) -> Any:
    """``StackingRegressor`` or ``VotingRegressor`` over the base models of ``model.base``.

    ``params`` address a base model's hyperparameters as ``<base>__<param>``
    (``ridge__alpha``) and the combiner's own directly (``cv``, ``weights``).
    """

    bases = [(name, _base_pipeline(cfg, name)) for name in cfg.base]
    est = StackingRegressor(bases) if cfg.estimator == "stack" else VotingRegressor(bases)
    try:
        return est.set_params(**{_combined_key(cfg, k): v for k, v in cfg.params.items()})
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{cfg.source}: model.params: {exc}") from None


def combined_grid(cfg: Config) -> dict[str, list[Any]]:
    """:func:`search_grid` for a stack or a vote, in the config's ``<base>__<param>`` names."""
    est = make_estimator(cfg)
    valid = est.get_params(deep=True)
    if cfg.grid:
        unknown = sorted(k for k in cfg.grid if _combined_key(cfg, k) not in valid)
        if unknown:
            own = [k for k in est.get_params(deep=False) if k != "estimators"]
            raise ConfigError(
                f"{cfg.source}: model.grid: invalid parameter(s) {unknown} for "
                f"{cfg.estimator}; use <base>__<param> with a base in {list(cfg.base)} "
                f"or one of {own}"
            )
        return {PARAM_PREFIX + _combined_key(cfg, k): list(v) for k, v in cfg.grid.items()}
    if cfg.params:
        key, value = next(iter(cfg.params.items()))
        return {PARAM_PREFIX + _combined_key(cfg, key): [value]}
    name: str = next(k for k in est.get_params(deep=False) if k != "estimators")
    return {PARAM_PREFIX + name: [getattr(est, name)]}


def ensemble_pipeline(cfg: Config) -> Any:
    """:func:`build_pipeline` for the tree ensembles and the combined models.

    A tree ensemble: ``table -> native_features -> TransformedTargetRegressor(model)``. A
    stack or a vote takes the table as it is (``"passthrough"``): each base model is a
    pipeline with the features step its estimator needs.
    """

    func: Literal["log"] | None = "log" if cfg.target_transform == "log" else None
    if cfg.estimator in COMBINERS:
        regressor = TransformedTargetRegressor(make_estimator(cfg), func=func)
        return Pipeline([("features", "passthrough"), ("regressor", regressor)])
    features, cats = native_features(cfg)
    est = make_estimator(cfg).set_params(categorical_features=cats)
    return Pipeline(
        [("features", features), ("regressor", TransformedTargetRegressor(est, func=func))]
    )


# --- metrics --------------------------------------------------------------------------------


def regression_metrics(y: FloatArray, p: FloatArray) -> dict[str, float]:
    """mse, rmse, mae, r2, mape in dollars, and rmse_log = sqrt(mean((log y - log p)^2))."""

    mse = metrics.mean_squared_error(y, p)
    out = {
        "mse": mse,
        "rmse": math.sqrt(mse),
        "mae": metrics.mean_absolute_error(y, p),
        "r2": metrics.r2_score(y, p),
        "mape": metrics.mean_absolute_percentage_error(y, p),
    }
    if (y > 0).all() and (p > 0).all():
        d = np.log(y) - np.log(p)
        out["rmse_log"] = math.sqrt(float(d @ d) / d.size)
    else:
        out["rmse_log"] = math.nan
    return {k: float(out[k]) for k in METRICS}


def learning_curve(
    pipeline: Any,
    table: Columns,
    y: FloatArray,
    folds: list[tuple[NDArray[np.intp], NDArray[np.intp]]],
    fractions: tuple[float, ...] = (0.1, 0.2, 0.35, 0.5, 0.75, 1.0),
) -> dict[str, list[float]]:
    """RMSE of log price on the first fold's training rows and its held-out rows, for growing
    shares of the training rows: a gap that stays wide says variance, two high curves bias."""

    train, valid = folds[0]
    sizes: list[float] = []
    tr_err: list[float] = []
    va_err: list[float] = []

    def take(idx: NDArray[np.intp]) -> Columns:
        return {k: v[idx] for k, v in table.items()}

    for frac in fractions:
        idx = train[: max(10, int(frac * train.size))]
        try:
            model = clone(pipeline).fit(take(idx), y[idx])
        except ValueError:
            continue  # too few rows for a category or an imputer: skip this point
        sizes.append(float(idx.size))
        tr_err.append(regression_metrics(y[idx], model.predict(take(idx)))["rmse_log"])
        va_err.append(regression_metrics(y[valid], model.predict(take(valid)))["rmse_log"])
    return {"sizes": sizes, "train_rmse_log": tr_err, "valid_rmse_log": va_err}


# --- metadata --------------------------------------------------------------------------------


def _json_value(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    try:  # a nested estimator (a stack's base models) is recorded by its repr
        json.dumps(v)
    except (TypeError, ValueError):
        return repr(v)
    return v


def declared_record(f: Feature) -> dict[str, Any]:
    """A feature's Contract 1 record as the config declares it; the engines fill in what the
    training rows showed (``categories``, ``min``, ``max``, a missing ``example``)."""
    return {
        "name": f.name,
        "column": f.column,
        "kind": f.kind,
        "unit": f.unit,
        "description": f.description,
        "required": f.required,
        "categories": None,
        "min": None,
        "max": None,
        "bounds": list(f.bounds) if f.bounds is not None else None,
        "example": f.example,
    }


def feature_records(cfg: Config, table: Columns) -> list[dict[str, Any]]:
    """Contract 1's ``features`` list: declared facts plus what the training rows showed."""
    out = []
    for f in cfg.features:
        col = table[f.name]
        rec = declared_record(f)
        if f.numeric:
            present = col[~np.isnan(col)]
            rec["min"] = float(present.min()) if present.size else None
            rec["max"] = float(present.max()) if present.size else None
            if rec["example"] is None and present.size:
                rec["example"] = float(np.median(present))
        else:
            cats = sorted({v for v in col if v is not None})
            rec["categories"] = cats
            if rec["example"] is None and cats:
                values, counts = np.unique(
                    np.array([v for v in col if v is not None]), return_counts=True
                )
                rec["example"] = str(values[int(np.argmax(counts))])
        out.append(rec)
    return out


def _versions() -> dict[str, str]:
    from importlib import metadata

    try:
        hp = metadata.version("houseprice")
    except metadata.PackageNotFoundError:
        hp = "unknown"
    return {"houseprice": hp, "python": platform.python_version(), "numpy": np.__version__}


def model_terms(pipeline: Any) -> tuple[list[str], FloatArray, str] | None:
    """Names and coefficients (or importances) of the fitted regressor, when it has them."""
    est = pipeline.named_steps["regressor"].regressor_
    try:
        names = list(pipeline.named_steps["features"].get_feature_names_out())
    except (AttributeError, ValueError):
        return None
    if hasattr(est, "coef_"):
        coef = np.asarray(est.coef_, dtype=np.float64).ravel()
        title = "Coefficients: log price per sd (numeric), per category (one-hot)"
        return names, coef, title
    if hasattr(est, "feature_importances_"):
        return names, np.asarray(est.feature_importances_, dtype=np.float64), "Importances"
    return None


# --- the run ------------------------------------------------------------------------------


@dataclass
class TrainResult:
    """What a run produced: where it wrote, its id and its scores."""

    run_id: str
    artifact: Path
    run_dir: Path
    metadata: dict[str, Any]
    seconds: float


def _cv_summary(search: Any, scoring: list[str]) -> dict[str, dict[str, Any]]:
    """The best candidate's fold scores per metric: ``{metric: {mean, std, folds}}``."""
    res, i = search.cv_results_, search.best_index_
    return {
        m: {
            "mean": float(res[f"mean_test_{m}"][i]),
            "std": float(res[f"std_test_{m}"][i]),
            "folds": [float(res[f"split{k}_test_{m}"][i]) for k in range(search.n_splits_)],
        }
        for m in scoring
    }


def _short_params(params: dict[str, Any]) -> dict[str, Any]:
    """Pipeline parameter names back to the config's (``alpha``)."""
    return {k.removeprefix(PARAM_PREFIX): _json_value(v) for k, v in params.items()}


#: Price bands of the per-segment evaluation: quintiles of the test rows' actual prices.
PRICE_BANDS = 5


def _segment_scores(y: FloatArray, p: FloatArray) -> dict[str, Any]:
    """The errors of one segment's rows: ``rows``, ``rmse_log``, ``rmse``, ``mae``, ``mape``
    and ``bias`` = mean(predicted - actual) (no R²: within a segment the target's variance is
    cut short by construction, so R² says little)."""
    e = p - y
    log_ok = bool((y > 0).all() and (p > 0).all())
    d = np.log(p) - np.log(y) if log_ok else e
    return {
        "rows": int(y.size),
        "rmse_log": math.sqrt(float(d @ d) / d.size) if log_ok else math.nan,
        "rmse": math.sqrt(float(e @ e) / e.size),
        "mae": float(np.abs(e).mean()),
        "mape": float(np.mean(np.abs(e) / np.abs(y))) if (y != 0).all() else math.nan,
        "bias": float(e.mean()),
    }


def segment_metrics(
    cfg: Config,
    X_train: Columns,
    y_train: FloatArray,
    X_test: Columns,
    y_test: FloatArray,
    p_test: FloatArray,
) -> dict[str, Any]:
    """Contract 1's ``segments``: the test errors by category and by price band.

    ``by_category`` splits the test rows by the categorical feature with the most signal:
    the largest epsilon² of the target (its log when positive) grouped by the feature's
    categories on the *training* rows (:func:`model.workflow.explore.category_signal`, the
    variance share the categories explain, adjusted for their number); ``None`` without a
    categorical feature. ``by_price`` splits them by quintile of their actual price. A model
    good on average can be poor on one neighbourhood-like group or on the dearest houses.
    """

    scale = target_scale(y_train)
    signals = {
        f.name: category_signal(X_train[f.name], scale)
        for f in cfg.features
        if f.kind == "categorical"
    }
    signals = {k: round(v, 6) for k, v in signals.items() if not math.isnan(v)}
    by_category = None
    if signals:
        name = max(signals, key=lambda k: signals[k])
        train_counts: dict[str | None, int] = {}
        for v in X_train[name].tolist():
            train_counts[v] = train_counts.get(v, 0) + 1
        labels = np.array(X_test[name].tolist(), dtype=object)
        groups = []
        for label in dict.fromkeys(labels.tolist()):
            rows = np.array([v == label for v in labels.tolist()], dtype=bool)
            groups.append(
                {
                    "category": label,
                    "rows_train": train_counts.get(label, 0),
                    **_segment_scores(y_test[rows], p_test[rows]),
                }
            )
        groups.sort(key=lambda g: (-g["rows"], str(g["category"])))
        by_category = {
            "feature": name,
            "signal": signals[name],
            "signals": signals,
            "groups": groups,
        }
    edges = np.quantile(y_test, np.arange(1, PRICE_BANDS) / PRICE_BANDS)
    band = np.searchsorted(edges, y_test, side="right")
    bands = []
    for b in range(PRICE_BANDS):
        rows = band == b
        if rows.any():
            scores = _segment_scores(y_test[rows], p_test[rows])
            lo, hi = float(y_test[rows].min()), float(y_test[rows].max())
            bands.append({"band": b + 1, "min": lo, "max": hi, **scores})
    return {"by_category": by_category, "by_price": bands}


def _target_range(y: FloatArray) -> dict[str, float | None]:
    """The target's min, median and max on the training rows (``None`` without rows); the
    streamed engines compute theirs from their own statistics."""
    if y.size == 0:
        return {"min": None, "median": None, "max": None}
    return {"min": float(y.min()), "median": float(np.median(y)), "max": float(y.max())}


def build_metadata(
    cfg: Config,
    data: PreparedData,
    search: Any,
    X_train: Columns,
    y_train: FloatArray,
    test: dict[str, float],
    run_id: str,
    created: datetime,
    segments: dict[str, Any] | None = None,
    streamed: Any = None,
) -> dict[str, Any]:
    """Contract 1's metadata record (docs/ARCHITECTURE.md) for a fitted search.

    The drift reference profiles the *training* rows and the model's predictions on them:
    that is the distribution the model was fitted to, which live traffic is compared with.
    ``segments`` is :func:`segment_metrics`' record of the test errors by segment.
    An engine that never held the rows (``streamed``, a :class:`model.workflow.stream.StreamFit`)
    gives the feature records, the reference and the row counts it accumulated instead.
    """

    best = search.best_estimator_
    regressor = best.named_steps["regressor"].regressor_
    if streamed is not None:
        from model.workflow.stream import engine_metadata

        features, reference = streamed.features, streamed.reference
        rows, rows_train, engine = streamed.rows, streamed.rows_train, engine_metadata(streamed)
    else:
        features = feature_records(cfg, X_train)
        reference = build_reference(
            X_train,
            {f.name: "numeric" if f.numeric else "categorical" for f in cfg.features},
            best.predict(X_train),
            categories={r["name"]: r["categories"] for r in features if r["categories"]},
        )
        rows, rows_train, engine = int(data.y.size), int(y_train.size), {"name": "memory"}
    res = search.cv_results_
    return {
        "format_version": 1,
        "model_version": f"{Path(cfg.source).stem}-{run_id}",
        "created_at": created.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "run_id": run_id,
        "data": {
            "path": data.path,
            "sha256": data.sha256,
            "rows": rows,
            "rows_read": data.rows_read,
            "rows_train": rows_train,
            "rows_test": rows - rows_train,
            "dropped": data.dropped,
            **{k: getattr(cfg.info, k) for k in INFO_KEYS},
            "id_columns": list(cfg.id_columns),
            "format": {
                "delimiter": data.delimiter,
                "encoding": data.encoding,
                "na_values": sorted(cfg.csv.na_values),
            },
        },
        "target": {
            "column": cfg.target,
            "transform": cfg.target_transform,
            **(streamed.target if streamed is not None else _target_range(y_train)),
        },
        "features": features,
        "model": {
            "estimator": type(regressor).__name__,
            "params": {k: _json_value(v) for k, v in regressor.get_params(deep=False).items()},
        },
        "search": {
            "grid": cfg.grid,
            "best_params": _short_params(search.best_params_),
            "warnings": grid_edge_warnings(cfg.grid, _short_params(search.best_params_)),
            "scoring": cfg.scoring,
            "candidates": [
                {
                    "params": _short_params(p),
                    "mean": float(res[f"mean_test_{cfg.scoring}"][c]),
                    "std": float(res[f"std_test_{cfg.scoring}"][c]),
                }
                for c, p in enumerate(res["params"])
            ],
        },
        "split": {"test_size": cfg.test_size, "seed": cfg.seed, "folds": cfg.folds},
        "cv": _cv_summary(search, [cfg.scoring, *[m for m in METRICS if m != cfg.scoring]]),
        "test": test,
        "segments": segments if segments is not None else {"by_category": None, "by_price": []},
        "engine": engine,
        "versions": _versions(),
        "reference": reference,
    }


def write_run_dir(
    run_dir: Path,
    cfg: Config,
    metadata: dict[str, Any],
    curve: dict[str, list[float]],
    make_plots: Callable[[Path], list[Path]] | None,
    pipeline: Any = None,
    signing_key: bytes | None = None,
) -> Path:
    """Build ``run_dir`` under a temporary name, then rename it: it exists whole or not at all.

    Holds the config as given, ``metrics.json`` (the metadata without the drift reference,
    plus the learning curve), the plots, ``MODEL_CARD.md`` and, given a ``pipeline``, the
    run's own artifact ``model.joblib`` with its sidecars (Contract 1), which
    ``houseprice promote`` can serve again later.
    """
    from model.workflow import plots as plotting
    from model.workflow.artifact import save_artifact
    from model.workflow.card import render_model_card

    staging = Path(tempfile.mkdtemp(dir=run_dir.parent, prefix=f".{run_dir.name}."))
    try:
        written = make_plots(staging) if make_plots is not None else []
        if make_plots is None:
            note = "Plots were not requested (--no-plots)."
        elif not plotting.available():
            note = "Plots skipped: matplotlib is not installed (the `plots` extra)."
        else:
            note = ""
        names = [p.name for p in written]
        atomic_write_text(staging / "config.toml", cfg.text)
        summary = {k: v for k, v in metadata.items() if k != "reference"}
        summary.update(learning_curve=curve, plots=names)
        text = json.dumps(summary, indent=2, allow_nan=True) + "\n"
        atomic_write_text(staging / "metrics.json", text)
        atomic_write_text(staging / "MODEL_CARD.md", render_model_card(cfg, metadata, names, note))
        if pipeline is not None:
            save_artifact(staging / RUN_ARTIFACT, pipeline, metadata, signing_key=signing_key)
        os.replace(staging, run_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return run_dir


def train(
    cfg: Config,
    out: str | Path,
    runs_dir: str | Path = "runs",
    *,
    progress: ProgressBar | None = None,
    plots: bool = True,
    signing_key: bytes | None = None,
    promote: bool = True,
    tracker: Callable[[Path, dict[str, Any]], object] | None = None,
    engine: str = "memory",
    chunk_rows: int | None = None,
    scheduler: str | None = None,
) -> TrainResult:
    """Run the whole training (see the module docstring) and return what it wrote.

    ``promote=False`` keeps the model in ``runs/<id>/`` only (serve it later with
    ``houseprice promote``); ``tracker`` is called with the finished run directory and the
    metadata before anything is served (the MLflow logger of ``train --mlflow``).
    ``engine="stream"`` fits from sums over chunks of ``chunk_rows`` rows instead of loading
    the file (:mod:`model.workflow.stream`); ``"dask"`` computes the same sums on a Dask
    cluster (``scheduler``'s, else a local one: :mod:`model.workflow.dask_engine`). The
    artifact and the run are the same.
    """
    from model.workflow.stream import check_engine

    start = time.perf_counter()
    created = datetime.now(UTC)
    run_id = new_run_id(created)
    grid = search_grid(cfg)  # config mistakes first, before any data is read
    check_engine(cfg, engine)
    if engine != "memory":
        data, search, test, y_test, p_test, metadata, curve = _train_streamed(
            cfg, grid, run_id, created, engine, chunk_rows, scheduler, progress
        )
        best = search.best_estimator_
    else:
        # the CV fits and the trees of each ensemble fit on one bar
        trees_done = progress.trees if progress is not None else None
        with report_trees(trees_done):
            data = prepare_data(cfg)
            X_train, X_test, y_train, y_test = train_test_split(
                data.table, data.y, test_size=cfg.test_size, random_state=cfg.seed
            )
            kfold = KFold(cfg.folds, shuffle=True, random_state=cfg.seed)
            scoring = [cfg.scoring, *[m for m in METRICS if m != cfg.scoring]]
            search = GridSearchCV(
                build_pipeline(cfg), grid, scoring=scoring, cv=kfold, callback=progress
            )
            search.fit(X_train, y_train)
            best = search.best_estimator_
            p_test = best.predict(X_test)
            test = regression_metrics(y_test, p_test)
            segments = segment_metrics(cfg, X_train, y_train, X_test, y_test, p_test)
            metadata = build_metadata(
                cfg, data, search, X_train, y_train, test, run_id, created, segments
            )
            tuned = build_pipeline(cfg).set_params(**search.best_params_)
            space: Literal["log", "price"] = "log" if cfg.target_transform == "log" else "price"
            oof = search.oof_predictions_
            assert oof is not None  # KFold's test parts partition the training rows
            metadata["intervals"] = calibrate(y_train, oof, y_test, p_test, space)
            curve = learning_curve(tuned, X_train, y_train, list(kfold.split(X_train)))

    runs = Path(runs_dir)
    runs.mkdir(parents=True, exist_ok=True)
    make_plots = (lambda d: _write_plots(d, best, y_test, p_test, curve)) if plots else None
    run_dir = write_run_dir(
        runs / run_id, cfg, metadata, curve, make_plots, pipeline=best, signing_key=signing_key
    )
    try:
        # The served copy is made from the stored artifact after it verifies, like a promote.
        stored = read_run_artifact(runs, run_id, signing_key)
        if tracker is not None:
            tracker(run_dir, metadata)
        if promote:
            with locked(runs / "promote.lock"):
                install(stored, out)
                record_promotion(runs, run_id, stored.sha256, out, "train")
    except BaseException:
        shutil.rmtree(run_dir, ignore_errors=True)  # a run that failed to finish is not a run
        raise
    seconds = time.perf_counter() - start
    cv = metadata["cv"]
    append_index(
        runs,
        {
            "run_id": run_id,
            "created_at": metadata["created_at"],
            "config": cfg.source,
            "data": data.path,
            "data_sha256": data.sha256,
            "rows": metadata["data"]["rows"],
            "n_features": len(cfg.features),
            "estimator": metadata["model"]["estimator"],
            "params": metadata["search"]["best_params"],
            "cv": {m: {"mean": v["mean"], "std": v["std"]} for m, v in cv.items()},
            "test": test,
            "artifact": str(run_dir / RUN_ARTIFACT),
            "artifact_sha256": stored.sha256,
            "out": str(out) if promote else None,
            "seconds": round(seconds, 3),
        },
    )
    return TrainResult(
        run_id, Path(out) if promote else run_dir / RUN_ARTIFACT, run_dir, metadata, seconds
    )


def _train_streamed(
    cfg: Config,
    grid: dict[str, list[Any]],
    run_id: str,
    created: datetime,
    engine: str,
    chunk_rows: int | None,
    scheduler: str | None,
    progress: ProgressBar | None,
) -> tuple[Any, ...]:
    """The stream or dask engine's fit, in the shapes :func:`train` writes (no learning
    curve: it would refit on growing shares of rows held in memory)."""
    from model.workflow.stream import fit_stream

    shown = progress is not None and (progress.draw or progress.print_every > 0)
    say = progress.line if progress is not None and shown else None
    if engine == "dask":
        from model.workflow.dask_engine import fit_dask

        fit = fit_dask(cfg, grid, chunk_rows=chunk_rows, scheduler=scheduler, say=say)
    else:
        fit = fit_stream(cfg, grid, chunk_rows=chunk_rows, say=say)
    data = PreparedData(
        {},
        np.empty(0),
        cfg.data_path,
        fit.sha256,
        fit.rows_read,
        fit.dropped,
        delimiter=fit.delimiter,
        encoding=fit.encoding,
    )
    metadata = build_metadata(
        cfg,
        data,
        fit.search,
        {},
        np.empty(0),
        fit.test,
        run_id,
        created,
        segments=fit.segments,
        streamed=fit,
    )
    metadata["intervals"] = fit.intervals
    curve: dict[str, list[float]] = {"sizes": [], "train_rmse_log": [], "valid_rmse_log": []}
    return data, fit.search, fit.test, fit.y_test, fit.p_test, metadata, curve


def _write_plots(
    out: Path, best: Any, y_test: FloatArray, p_test: FloatArray, curve: dict[str, list[float]]
) -> list[Path]:
    from model.workflow import plots

    if not plots.available():
        return []
    written = [
        plots.predicted_vs_actual(y_test, p_test, out),
        plots.residuals(y_test, p_test, out),
    ]
    if curve["sizes"]:
        written.append(
            plots.learning_curve(
                [int(s) for s in curve["sizes"]],
                curve["train_rmse_log"],
                curve["valid_rmse_log"],
                "RMSE of log price",
                out,
            )
        )
    est = best.named_steps["regressor"].regressor_
    history = getattr(est, "cost_history_", None)
    if history is not None and len(history) > 1:
        written.append(plots.cost_history(list(history), out))
    terms = model_terms(best)
    if terms is not None:
        names, values, title = terms
        written.append(plots.coefficients(names, values, title, out))
    return written
