"""Model selection: hold-out split, k-fold cross-validation and an exhaustive grid search.

The one idea behind all of it: a score measured on rows the model was fitted on says how well
it remembers, not how well it predicts. So every score here comes from rows held out of the fit:

* ``train_test_split`` keeps one random share of the rows aside, once;
* ``KFold`` cuts the rows into ``k`` folds; fold ``i`` is scored by a model fitted on the others,
  so every row is scored exactly once and the ``k`` scores give a mean *and* a spread;
* ``GridSearchCV`` runs that cross-validation for every point of a hyperparameter grid, keeps
  the point with the best mean score, and refits it on all the rows.

Data may be a 2-D array or a table (``model.base.Columns``: column name -> 1-D array); a table
is indexed row-wise by indexing each of its columns with the same row indices.
"""

from __future__ import annotations

import itertools
import math
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from model import metrics
from model.base import BaseEstimator, FloatArray, NotFittedError, check_is_fitted, clone

IntArray = NDArray[np.intp]
RandomState = int | np.random.Generator | None
Metric = Callable[[Any, Any], float]

# ---------------------------------------------------------------------------------------------
# Row indexing shared by arrays and tables


def _n_rows(data: Any) -> int:
    """Number of rows of an array, a list or a table (every column must agree)."""
    if isinstance(data, Mapping):
        if not data:
            raise ValueError("table has no columns")
        lengths = {k: len(v) for k, v in data.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"table columns have different lengths: {lengths}")
        return next(iter(lengths.values()))
    arr = np.asarray(data) if not isinstance(data, np.ndarray) else data
    if arr.ndim == 0:
        raise ValueError(f"expected an array or a table, got a scalar {data!r}")
    return int(arr.shape[0])


def _take(data: Any, rows: IntArray) -> Any:
    """The given rows of an array (as an array) or of a table (as a table of the same columns)."""
    if isinstance(data, Mapping):
        return {k: np.asarray(v)[rows] for k, v in data.items()}
    return np.asarray(data)[rows]


def _rng(random_state: RandomState) -> np.random.Generator:
    if isinstance(random_state, np.random.Generator):
        return random_state
    return np.random.default_rng(random_state)


# ---------------------------------------------------------------------------------------------
# Hold-out split


def train_test_split(
    *arrays: Any,
    test_size: float | int = 0.25,
    random_state: RandomState = None,
    shuffle: bool = True,
) -> list[Any]:
    """Split arrays or tables into train and test rows: ``[a_train, a_test, b_train, b_test, ...]``.

    The test part holds ``ceil(test_size * n)`` rows when ``test_size`` is a fraction (as in
    scikit-learn), or ``test_size`` rows when it is an integer. Without shuffling the last rows
    are the test rows, which is what a time-ordered data set needs; with shuffling the rows are
    drawn by a permutation seeded by ``random_state``, so a seed gives the same split every time.
    """
    if not arrays:
        raise ValueError("train_test_split: at least one array or table is required")
    lengths = [_n_rows(a) for a in arrays]
    if len(set(lengths)) > 1:
        raise ValueError(f"train_test_split: inputs have different numbers of rows: {lengths}")
    n = lengths[0]
    if isinstance(test_size, bool) or not isinstance(test_size, int | float | np.integer):
        raise ValueError(f"test_size must be a fraction or a row count, got {test_size!r}")
    if isinstance(test_size, int | np.integer):
        n_test = int(test_size)
    elif 0.0 < test_size < 1.0:
        n_test = math.ceil(test_size * n)
    else:
        raise ValueError(f"test_size as a fraction must be in (0, 1), got {test_size!r}")
    n_train = n - n_test
    if n_test < 1 or n_train < 1:
        raise ValueError(
            f"train_test_split: test_size={test_size!r} on {n} rows leaves {n_train} train and "
            f"{n_test} test rows; both must be at least 1"
        )
    order = _rng(random_state).permutation(n) if shuffle else np.arange(n)
    train, test = order[:n_train], order[n_train:]
    out: list[Any] = []
    for a in arrays:
        out += [_take(a, train), _take(a, test)]
    return out


# ---------------------------------------------------------------------------------------------
# K-fold cross-validation splits


class KFold:
    """``k`` consecutive folds (after an optional seeded shuffle); each is the test set once.

    The first ``n % k`` folds get one extra row, as in scikit-learn, so without shuffling the
    folds are exactly scikit-learn's. With ``shuffle`` and an integer seed every call of
    ``split`` gives the same folds, so all the candidates of a search are compared on the
    same rows.
    """

    def __init__(
        self, n_splits: int = 5, shuffle: bool = False, random_state: RandomState = None
    ) -> None:
        if isinstance(n_splits, bool) or not isinstance(n_splits, int | np.integer):
            raise ValueError(f"n_splits must be an integer, got {n_splits!r}")
        if n_splits < 2:
            raise ValueError(f"n_splits must be at least 2, got {n_splits}")
        if not shuffle and random_state is not None:
            raise ValueError(
                "random_state has no effect without shuffle=True; leave it None or set shuffle"
            )
        self.n_splits = int(n_splits)
        self.shuffle = shuffle
        self.random_state = random_state

    def get_n_splits(self, X: Any = None, y: Any = None) -> int:
        return self.n_splits

    def split(self, X: Any, y: Any = None) -> Iterator[tuple[IntArray, IntArray]]:
        """Yield ``(train_rows, test_rows)`` index arrays, one pair per fold."""
        n = _n_rows(X)
        if self.n_splits > n:
            raise ValueError(f"KFold: n_splits={self.n_splits} is greater than the {n} samples")
        order = _rng(self.random_state).permutation(n) if self.shuffle else np.arange(n)
        sizes = np.full(self.n_splits, n // self.n_splits, dtype=np.intp)
        sizes[: n % self.n_splits] += 1
        start = 0
        for size in sizes:
            in_test = np.zeros(n, dtype=bool)
            in_test[order[start : start + size]] = True
            # Sorted row numbers: the same rows in the same order whatever the shuffle did.
            yield np.flatnonzero(~in_test), np.flatnonzero(in_test)
            start += int(size)

    def __repr__(self) -> str:
        return (
            f"KFold(n_splits={self.n_splits}, shuffle={self.shuffle}, "
            f"random_state={self.random_state!r})"
        )


CV = KFold | int | Iterable[tuple[ArrayLike, ArrayLike]]


def _folds(cv: Any, X: Any, y: Any) -> list[tuple[IntArray, IntArray]]:
    """Materialise the folds once, so every candidate sees the same rows."""
    if isinstance(cv, bool):
        raise ValueError(f"cv must be a splitter, a number of folds or a list of folds, got {cv}")
    if isinstance(cv, int | np.integer):
        cv = KFold(n_splits=int(cv))
    raw = cv.split(X, y) if hasattr(cv, "split") else cv
    n = _n_rows(X)
    folds = [
        (_fold_rows(tr, n, k, "train"), _fold_rows(te, n, k, "test"))
        for k, (tr, te) in enumerate(raw)
    ]
    if not folds:
        raise ValueError("cv gave no folds")
    return folds


def _fold_rows(part: Any, n: int, k: int, name: str) -> IntArray:
    """One part of fold ``k`` as row numbers, refused unless each is an integer in ``[0, n)``:
    a boolean mask or float positions would otherwise be cast to other rows, and a negative
    number would count from the end."""
    rows = np.asarray(part)
    if rows.ndim != 1:
        raise ValueError(f"fold {k}: {name} rows must be one-dimensional, got shape {rows.shape}")
    if rows.size and not np.issubdtype(rows.dtype, np.integer):
        raise ValueError(f"fold {k}: {name} rows must be integer row numbers, got {rows.dtype}")
    rows = rows.astype(np.intp)
    if rows.size and (rows.min() < 0 or rows.max() >= n):
        bad = int(rows[(rows < 0) | (rows >= n)][0])
        raise ValueError(f"fold {k}: {name} row {bad} is outside 0..{n - 1}")
    return rows


# ---------------------------------------------------------------------------------------------
# Scoring


@dataclass(frozen=True)
class Scorer:
    """A metric ``metric(y_true, y_pred)`` applied to an estimator's predictions.

    ``greater_is_better`` tells a search which way is up; scores are reported in the metric's
    own units (an RMSE stays a positive number of dollars), never negated. ``metric=None``
    means the estimator's own ``score`` (R² for regressors, accuracy for classifiers).
    """

    name: str
    metric: Metric | None
    greater_is_better: bool = True

    def __call__(self, estimator: Any, X: Any, y: Any) -> float:
        if self.metric is None:
            return float(estimator.score(X, y))
        return float(self.metric(y, estimator.predict(X)))


def rmse_log(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """√mean((log y − log ŷ)²): a relative error, so a cheap and a dear house weigh the same."""
    yt = np.asarray(y_true, dtype=np.float64)
    yp = np.asarray(y_pred, dtype=np.float64)
    if (yt <= 0).any() or (yp <= 0).any():
        raise ValueError("rmse_log needs positive targets and predictions")
    return metrics.root_mean_squared_error(np.log(yt), np.log(yp))


def _f1_macro(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    return metrics.f1_score(y_true, y_pred, average="macro")


#: name -> (metric, greater_is_better)
_SCORERS: dict[str, tuple[Metric, bool]] = {
    "mse": (metrics.mean_squared_error, False),
    "rmse": (metrics.root_mean_squared_error, False),
    "rmse_log": (rmse_log, False),
    "mae": (metrics.mean_absolute_error, False),
    "mape": (metrics.mean_absolute_percentage_error, False),
    "r2": (metrics.r2_score, True),
    "accuracy": (metrics.accuracy_score, True),
    "precision": (metrics.precision_score, True),
    "recall": (metrics.recall_score, True),
    "f1": (metrics.f1_score, True),
    "f1_macro": (_f1_macro, True),
}

SCORER_NAMES = tuple(sorted(_SCORERS))


def get_scorer(scoring: str | Metric | Scorer | None) -> Scorer:
    """A :class:`Scorer` from a metric name, a ``metric(y_true, y_pred)`` callable or ``None``.

    A bare callable is taken as greater-is-better (as in scikit-learn); wrap an error metric in
    ``Scorer(name, metric, greater_is_better=False)``. ``None`` uses the estimator's ``score``.
    """
    if isinstance(scoring, Scorer):
        return scoring
    if scoring is None:
        return Scorer("score", None, True)
    if isinstance(scoring, str):
        if scoring not in _SCORERS:
            raise ValueError(f"unknown scoring {scoring!r}; known: {list(SCORER_NAMES)}")
        metric, greater = _SCORERS[scoring]
        return Scorer(scoring, metric, greater)
    if callable(scoring):
        return Scorer(getattr(scoring, "__name__", "score"), scoring, True)
    raise ValueError(f"scoring must be a name, a callable or a Scorer, got {scoring!r}")


def _scorers(scoring: Any) -> list[Scorer]:
    items = (
        list(scoring) if isinstance(scoring, list | tuple) else [scoring]  # one or several
    )
    if not items:
        raise ValueError("scoring is an empty list")
    scorers = [get_scorer(s) for s in items]
    names = [s.name for s in scorers]
    if len(set(names)) != len(names):
        raise ValueError(f"scoring has repeated names: {names}")
    return scorers


# ---------------------------------------------------------------------------------------------
# Cross-validation


class Progress(NamedTuple):
    """What a progress callback receives after each fitted fold."""

    done: int  # fits finished so far, over the whole run
    total: int  # fits the run will make
    candidate: int  # index of the parameter setting (0 in cross_validate)
    fold: int
    params: dict[str, Any]
    scores: dict[str, float]  # this fold's scores by scorer name


ProgressCallback = Callable[[Progress], None]


def _fit_and_score(
    estimator: Any,
    X: Any,
    y: Any,
    train: IntArray,
    test: IntArray,
    scorers: Sequence[Scorer],
) -> tuple[dict[str, float], float, Any]:
    """Fit a clone on the train rows, score it on the test rows.

    Returns the scores, the fit time and the fitted clone.
    """
    fitted = clone(estimator)
    start = time.perf_counter()
    fitted.fit(_take(X, train), _take(y, train))
    fit_time = time.perf_counter() - start
    X_test, y_test = _take(X, test), _take(y, test)
    return {s.name: s(fitted, X_test, y_test) for s in scorers}, fit_time, fitted


def _partitions(folds: Sequence[tuple[IntArray, IntArray]], n: int) -> bool:
    """Whether the folds' test parts cover every one of ``n`` rows exactly once."""
    seen = np.concatenate([test for _, test in folds])
    return bool(seen.size == n and np.unique(seen).size == n)


def _summary(values: Sequence[float]) -> dict[str, Any]:
    folds = np.asarray(values, dtype=np.float64)
    return {"folds": folds, "mean": float(folds.mean()), "std": float(folds.std())}


def cross_validate(
    estimator: Any,
    X: Any,
    y: Any,
    *,
    cv: CV = 5,
    scoring: Any = None,
    callback: ProgressCallback | None = None,
) -> dict[str, dict[str, Any]]:
    """Score ``estimator`` on each fold: ``{name: {"folds": array, "mean": m, "std": s}}``.

    ``scoring`` is one or a list of metric names (see ``SCORER_NAMES``), callables
    ``metric(y_true, y_pred)`` or :class:`Scorer` objects. The standard deviation is the
    population one (``ddof=0``) of the fold scores, as scikit-learn's search reports it.
    """
    scorers = _scorers(scoring)
    if _n_rows(X) != _n_rows(y):
        raise ValueError(f"X and y have different numbers of rows: {_n_rows(X)} vs {_n_rows(y)}")
    folds = _folds(cv, X, y)
    per_fold: dict[str, list[float]] = {s.name: [] for s in scorers}
    for k, (train, test) in enumerate(folds):
        scores, _, _ = _fit_and_score(estimator, X, y, train, test, scorers)
        for name, value in scores.items():
            per_fold[name].append(value)
        if callback is not None:
            callback(Progress(k + 1, len(folds), 0, k, {}, scores))
    return {name: _summary(values) for name, values in per_fold.items()}


def cross_val_predict(estimator: Any, X: Any, y: Any, *, cv: CV = 5) -> FloatArray:
    """Out-of-fold predictions: row i predicted by the clone fitted on the folds without it.

    The folds must cover every row exactly once (a partition, as :class:`KFold` gives), so
    each row gets one prediction from a model that never saw it.
    """
    n = _n_rows(X)
    if n != _n_rows(y):
        raise ValueError(f"X and y have different numbers of rows: {n} vs {_n_rows(y)}")
    folds = _folds(cv, X, y)
    if not _partitions(folds, n):
        raise ValueError("cross_val_predict needs folds whose test parts partition the rows")
    out = np.empty(n, dtype=np.float64)
    for train, test in folds:
        fitted = clone(estimator).fit(_take(X, train), _take(y, train))
        out[test] = np.asarray(fitted.predict(_take(X, test)), dtype=np.float64)
    return out


# ---------------------------------------------------------------------------------------------
# Grid search


def parameter_grid(
    param_grid: Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Any]],
) -> list[dict[str, Any]]:
    """Every combination of the values of a grid (a dict), or of each grid of a list of dicts.

    Keys are taken in sorted order so the candidates come in a fixed order (scikit-learn's).
    """
    grids = [param_grid] if isinstance(param_grid, Mapping) else list(param_grid)
    if not grids:
        raise ValueError("param_grid is empty: nothing to search")
    out: list[dict[str, Any]] = []
    for grid in grids:
        if not isinstance(grid, Mapping) or not grid:
            raise ValueError(f"param_grid: each grid must be a non-empty dict, got {grid!r}")
        keys = sorted(grid)
        for key in keys:
            values = grid[key]
            if isinstance(values, str | bytes) or not isinstance(values, Sequence | np.ndarray):
                raise ValueError(f"param_grid[{key!r}] must be a list of values, got {values!r}")
            if len(values) == 0:
                raise ValueError(f"param_grid[{key!r}] is empty: give at least one value")
        for combo in itertools.product(*(grid[k] for k in keys)):
            out.append(dict(zip(keys, combo, strict=True)))
    return out


def _ranks(means: NDArray[np.float64], greater_is_better: bool) -> NDArray[np.intp]:
    """Rank 1 for the best mean; equal means share the lowest rank ("min" method)."""
    key = -means if greater_is_better else means
    key = np.where(np.isnan(key), np.inf, key)
    sorted_key = np.sort(key)
    return np.searchsorted(sorted_key, key, side="left").astype(np.intp) + 1


class GridSearchCV(BaseEstimator):
    """Cross-validate every point of ``param_grid``; keep and (with ``refit``) refit the best.

    ``param_grid`` names parameters as ``get_params(deep=True)`` does, so nested settings such
    as ``"regressor__alpha"`` reach inside pipelines. With several scorers the first one ranks
    the candidates; the others are reported in ``cv_results_``. ``callback`` receives a
    :class:`Progress` after every fitted fold (for a progress bar); ``verbose > 0`` prints one
    line per candidate to stderr.

    When the folds partition the rows (as :class:`KFold`'s do), ``oof_predictions_`` holds the
    best candidate's out-of-fold predictions, row i from the fold model that did not see it
    (what :func:`cross_val_predict` would give for ``best_params_``, without fitting again);
    otherwise it is None. scikit-learn's search keeps no such attribute.
    """

    def __init__(
        self,
        estimator: Any,
        param_grid: Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Any]],
        *,
        scoring: Any = None,
        cv: CV = 5,
        refit: bool = True,
        verbose: int = 0,
        callback: ProgressCallback | None = None,
    ) -> None:
        self.estimator = estimator
        self.param_grid = param_grid
        self.scoring = scoring
        self.cv = cv
        self.refit = refit
        self.verbose = verbose
        self.callback = callback

    def _check_names(self, candidates: list[dict[str, Any]]) -> None:
        valid = set(self.estimator.get_params(deep=True))
        for params in candidates:
            for key in params:
                if key not in valid:
                    raise ValueError(
                        f"param_grid: invalid parameter {key!r} for "
                        f"{type(self.estimator).__name__}; valid parameters: {sorted(valid)}"
                    )

    def fit(self, X: Any, y: Any) -> GridSearchCV:
        candidates = parameter_grid(self.param_grid)
        self._check_names(candidates)
        scorers = _scorers(self.scoring)
        if _n_rows(X) != _n_rows(y):
            raise ValueError(
                f"X and y have different numbers of rows: {_n_rows(X)} vs {_n_rows(y)}"
            )
        folds = _folds(self.cv, X, y)
        total = len(candidates) * len(folds)
        scores = {s.name: np.empty((len(candidates), len(folds))) for s in scorers}
        fit_times = np.empty((len(candidates), len(folds)))
        keep_oof = _partitions(folds, _n_rows(X))
        primary = scorers[0]
        best_key = np.inf
        oof: FloatArray | None = None
        done = 0
        for c, params in enumerate(candidates):
            candidate = clone(self.estimator).set_params(**params)
            fitted = []
            for k, (train, test) in enumerate(folds):
                fold_scores, fit_times[c, k], model = _fit_and_score(
                    candidate, X, y, train, test, scorers
                )
                fitted.append(model)
                for name, value in fold_scores.items():
                    scores[name][c, k] = value
                done += 1
                if self.callback is not None:
                    self.callback(Progress(done, total, c, k, params, fold_scores))
            # The same key and tie rule as the ranks below: the first of the best means wins.
            mean = scores[primary.name][c].mean()
            key = -mean if primary.greater_is_better else mean
            key = np.inf if np.isnan(key) else key
            if keep_oof and (c == 0 or key < best_key):
                best_key = key
                oof = np.empty(_n_rows(X), dtype=np.float64)
                for model, (_, test) in zip(fitted, folds, strict=True):
                    oof[test] = np.asarray(model.predict(_take(X, test)), dtype=np.float64)
            if self.verbose > 0:
                first = scorers[0].name
                print(
                    f"[{c + 1}/{len(candidates)}] {params} "
                    f"{first}={scores[first][c].mean():.6g} ± {scores[first][c].std():.2g}",
                    file=sys.stderr,
                )

        results: dict[str, Any] = {"params": candidates}
        for key in sorted({k for p in candidates for k in p}):
            column = np.empty(len(candidates), dtype=object)
            column[:] = [p.get(key) for p in candidates]
            results[f"param_{key}"] = column
        for s in scorers:
            table = scores[s.name]
            for k in range(len(folds)):
                results[f"split{k}_test_{s.name}"] = table[:, k].copy()
            results[f"mean_test_{s.name}"] = table.mean(axis=1)
            results[f"std_test_{s.name}"] = table.std(axis=1)
            results[f"rank_test_{s.name}"] = _ranks(table.mean(axis=1), s.greater_is_better)
        results["mean_fit_time"] = fit_times.mean(axis=1)

        ranks = results[f"rank_test_{primary.name}"]
        self.cv_results_ = results
        self.oof_predictions_ = oof
        self.scorer_ = primary
        self.n_splits_ = len(folds)
        self.best_index_ = int(np.flatnonzero(ranks == ranks.min())[0])
        self.best_params_ = dict(candidates[self.best_index_])
        self.best_score_ = float(results[f"mean_test_{primary.name}"][self.best_index_])
        if self.refit:
            self.best_estimator_ = clone(self.estimator).set_params(**self.best_params_)
            self.best_estimator_.fit(X, y)
        return self

    def _best(self) -> Any:
        check_is_fitted(self, "cv_results_")
        if not hasattr(self, "best_estimator_"):
            raise NotFittedError("GridSearchCV was fitted with refit=False; no best_estimator_")
        return self.best_estimator_

    def predict(self, X: Any) -> Any:
        return self._best().predict(X)

    def score(self, X: Any, y: Any) -> float:
        """The first scorer on ``(X, y)``, in the metric's own units."""
        best = self._best()
        return self.scorer_(best, X, y)
