"""Column-wise transformers: imputation, scaling, one-hot encoding, derived features.

Every transformer follows one template (:class:`Transformer`): ``fit``/``transform`` check
their input once with the shared validators in :mod:`model.base`, then hand a clean 2-D
array to ``_fit``/``_transform``, which do the maths only. Composites (``ColumnTransformer``,
``Pipeline``) validate once at their own boundary and call ``_transform`` directly, so a
single-row prediction does not re-check the same array at every nested step.

Missing values are NaN in numeric arrays and ``None`` (or NaN) in object arrays. Scalers
ignore NaN when learning and let it through when transforming (as scikit-learn's do), so
the order "impute, then scale" or "scale, then impute" both work.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import chain, combinations, combinations_with_replacement, repeat
from typing import Any, Literal, Self

import numpy as np
from numpy.typing import NDArray

from model.base import BaseEstimator, FloatArray, TransformerMixin, check_array, check_is_fitted

_EPS = float(np.finfo(np.float64).eps)


def check_object_array(X: Any, *, name: str = "X") -> NDArray[Any]:
    """``X`` as a 2-D array of Python objects (strings, ``None``) or, if numeric, float64."""
    arr = np.asarray(X)
    if arr.dtype.kind in "biuf":
        arr = arr.astype(np.float64, copy=False)
    elif arr.dtype != object:
        arr = arr.astype(object)
    if arr.ndim != 2:
        hint = " (reshape a single feature with x.reshape(-1, 1))" if arr.ndim == 1 else ""
        raise ValueError(f"{name}: expected a 2-D array, got shape {arr.shape}{hint}")
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"{name}: expected at least one sample and one feature, got {arr.shape}")
    return arr


def missing_mask(X: NDArray[Any]) -> NDArray[np.bool_]:
    """True where a value is missing: NaN in a float array, ``None`` or NaN in an object one.

    ``x != x`` is the vectorised NaN test that also works on objects (only NaN differs
    from itself), so no Python loop runs per value.
    """
    if X.dtype == object:
        none = np.asarray(None, dtype=object)
        return np.asarray(np.equal(X, none) | np.not_equal(X, X), dtype=np.bool_)
    return np.isnan(X)


def _refuse_all_missing(missing: NDArray[np.bool_], what: str) -> None:
    empty = np.flatnonzero(missing.all(axis=0))
    if empty.size:
        raise ValueError(
            f"X: column {int(empty[0])} is entirely missing at fit; {what} cannot learn from it"
        )


def default_feature_names(n: int, input_features: Sequence[str] | None) -> list[str]:
    """The names of ``n`` input columns: the given ones, else ``x0 .. x{n-1}`` as sklearn."""
    if input_features is None:
        return [f"x{j}" for j in range(n)]
    names = [str(f) for f in input_features]
    if len(names) != n:
        raise ValueError(f"input_features has {len(names)} names, but the fit saw {n} columns")
    return names


class ValidatedTransform:
    """Marker: ``_transform(X)`` accepts input its caller has already validated.

    Composites call :func:`transform_validated` on their children, which takes this
    fast path for our own transformers and the public ``transform`` for anything else.
    """

    def _transform(self, X: Any) -> NDArray[Any]:
        raise NotImplementedError


def transform_validated(est: Any, X: Any) -> NDArray[Any]:
    """``est.transform(X)`` without re-validating ``X`` when ``est`` allows it."""
    if isinstance(est, ValidatedTransform) and isinstance(X, np.ndarray) and X.ndim == 2:
        return est._transform(X)
    return np.asarray(est.transform(X))


class Transformer(ValidatedTransform, TransformerMixin, BaseEstimator):
    """Template: validate at the public boundary, compute in ``_fit``/``_transform``.

    Subclasses implement ``_validate`` (input -> clean 2-D array), ``_fit`` (learn from a
    clean array, return ``self``) and ``_transform`` (clean array -> float or object array).
    Callers that have already validated (composites) may call ``_transform`` directly.
    """

    def _validate(self, X: Any) -> NDArray[Any]:
        return check_array(X, allow_nan=True)

    def _fit(self, X: NDArray[Any]) -> Self:
        raise NotImplementedError

    def fit(self, X: Any, y: Any = None) -> Self:
        Xv = self._validate(X)
        self._fit(Xv)
        self.n_features_in_ = Xv.shape[1]
        return self

    def transform(self, X: Any) -> NDArray[Any]:
        check_is_fitted(self, "n_features_in_")
        Xv = self._validate(X)
        if Xv.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {Xv.shape[1]} columns, but {type(self).__name__} was fitted "
                f"on {self.n_features_in_}"
            )
        return self._transform(Xv)

    def fit_transform(self, X: Any, y: Any = None) -> NDArray[Any]:
        Xv = self._validate(X)
        self._fit(Xv)
        self.n_features_in_ = Xv.shape[1]
        return self._transform(Xv)

    def get_feature_names_out(self, input_features: Sequence[str] | None = None) -> list[str]:
        """One output per input column, same names (overridden where that is not so)."""
        check_is_fitted(self, "n_features_in_")
        return default_feature_names(self.n_features_in_, input_features)


class SimpleImputer(Transformer):
    """Replace missing values by a per-column statistic learned at fit.

    ``mean``/``median`` need numbers; ``most_frequent`` and ``constant`` also work on object
    columns of strings. Ties in ``most_frequent`` go to the smallest value, as in
    scikit-learn, so the same data gives the same fill. ``constant`` fills ``fill_value``
    (default 0 for numbers, ``"missing_value"`` for strings) and learns nothing, so an
    all-missing column is only an error for the other strategies.
    """

    def __init__(
        self,
        strategy: Literal["mean", "median", "most_frequent", "constant"] = "mean",
        fill_value: Any = None,
    ) -> None:
        self.strategy = strategy
        self.fill_value = fill_value

    def _validate(self, X: Any) -> NDArray[Any]:
        if self.strategy not in ("mean", "median", "most_frequent", "constant"):
            raise ValueError(
                f"strategy must be 'mean', 'median', 'most_frequent' or 'constant', "
                f"got {self.strategy!r}"
            )
        if self.strategy in ("mean", "median"):
            return check_array(X, allow_nan=True)
        return check_object_array(X)

    def _fit(self, X: NDArray[Any]) -> Self:
        missing = missing_mask(X)
        if self.strategy != "constant":
            _refuse_all_missing(missing, f"strategy={self.strategy!r}")
        if self.strategy == "mean":
            stats: NDArray[Any] = np.nanmean(X, axis=0)
        elif self.strategy == "median":
            stats = np.nanmedian(X, axis=0)
        elif self.strategy == "most_frequent":
            stats = np.empty(X.shape[1], dtype=X.dtype)
            for j in range(X.shape[1]):
                stats[j] = _most_frequent(X[~missing[:, j], j], j)
        else:
            fill = self.fill_value
            if fill is None:
                fill = "missing_value" if X.dtype == object else 0.0
            if X.dtype != object and not isinstance(fill, int | float | np.number):
                raise ValueError(f"fill_value={fill!r} is not a number but the columns are numeric")
            stats = np.full(X.shape[1], fill, dtype=X.dtype)
        self.statistics_ = stats
        return self

    def fold_columns(self, width: int) -> list[tuple[tuple[Any, ...], ...]]:
        """``("fill", statistic)`` per column (``model/fold.py``); numbers only."""
        check_is_fitted(self, "statistics_")
        stats = np.asarray(self.statistics_)
        if stats.dtype.kind != "f" or stats.shape != (width,):
            raise ValueError(
                f"SimpleImputer(strategy={self.strategy!r}) holds no number per column"
            )
        return [(("fill", float(v)),) for v in stats.tolist()]

    @classmethod
    def from_statistics(
        cls, statistics: Any, strategy: Literal["mean", "median", "most_frequent", "constant"]
    ) -> SimpleImputer:
        """A fitted imputer whose fill values ``statistics_`` were computed elsewhere (from
        statistics accumulated chunk by chunk over data that never sat in memory at once)."""
        imp = cls(strategy=strategy)
        imp.statistics_ = np.asarray(statistics)
        imp.n_features_in_ = int(imp.statistics_.shape[0])
        return imp

    def _transform(self, X: NDArray[Any]) -> NDArray[Any]:
        stats = self.statistics_
        if X.dtype != stats.dtype:
            # fitted on numbers, given objects (or the reverse): convert, naming a bad column
            X = X.astype(object) if stats.dtype == object else check_array(X, allow_nan=True)
        missing = missing_mask(X)
        if not missing.any():
            return X.copy()  # never hand the caller's own array back
        return np.where(missing, stats, X)


def _most_frequent(values: NDArray[Any], j: int) -> Any:
    """The most frequent value; among ties the smallest (``np.unique`` sorts)."""
    try:
        uniques, counts = np.unique(values, return_counts=True)
    except TypeError:
        raise ValueError(f"X: column {j} mixes values that cannot be compared") from None
    return uniques[int(np.argmax(counts))]


class StandardScaler(Transformer):
    """``z = (x - mean) / std`` with the population std (``ddof=0``), as scikit-learn.

    A column whose variance is within rounding error of zero gets scale 1, not a division
    by ~0 that would blow noise up to unit size; the bound is scikit-learn's
    ``n·eps·var + (n·mean·eps)²``.
    """

    def __init__(self, with_mean: bool = True, with_std: bool = True) -> None:
        self.with_mean = with_mean
        self.with_std = with_std

    def _fit(self, X: NDArray[Any]) -> Self:
        missing = np.isnan(X)
        _refuse_all_missing(missing, "StandardScaler")
        n = (~missing).sum(axis=0)
        return self._set_moments(n, np.nanmean(X, axis=0), np.nanvar(X, axis=0))

    def _set_moments(self, n: NDArray[Any], mean: FloatArray, var: FloatArray) -> Self:
        self.n_samples_seen_ = n
        self.mean_: FloatArray = mean
        self.var_: FloatArray = var
        constant = self.var_ <= n * _EPS * self.var_ + (n * self.mean_ * _EPS) ** 2
        std = np.sqrt(self.var_)
        self.scale_: FloatArray = np.where(constant | (std < 10 * _EPS), 1.0, std)
        return self

    def fold_columns(self, width: int) -> list[tuple[tuple[Any, ...], ...]]:
        """``x - mean`` then ``/ scale`` per column, as ``_transform`` (``model/fold.py``)."""
        check_is_fitted(self, "mean_")
        steps: list[list[tuple[Any, ...]]] = [[] for _ in range(width)]
        for j in range(width):
            if self.with_mean:
                steps[j].append(("sub", float(self.mean_[j])))
            if self.with_std:
                steps[j].append(("div", float(self.scale_[j])))
        return [tuple(s) for s in steps]

    @classmethod
    def from_moments(cls, n: Any, mean: Any, var: Any) -> StandardScaler:
        """A fitted scaler from per-column counts, means and population variances computed
        elsewhere (e.g. from sums over chunks), with the same near-constant rule as ``fit``."""
        mean_ = np.asarray(mean, dtype=np.float64)
        scaler = cls()
        scaler._set_moments(np.broadcast_to(np.asarray(n), mean_.shape).copy(), mean_, var)
        scaler.var_ = np.asarray(scaler.var_, dtype=np.float64)
        scaler.n_features_in_ = int(mean_.shape[0])
        return scaler

    def _transform(self, X: NDArray[Any]) -> FloatArray:
        Z = X - self.mean_ if self.with_mean else np.array(X, dtype=np.float64)
        return Z / self.scale_ if self.with_std else Z


class MinMaxScaler(Transformer):
    """``x' = lo + (x - min) · (hi - lo) / (max - min)``, written as ``x·scale + min_``.

    A constant column (range 0) keeps range 1, so it maps to ``lo`` rather than NaN.
    """

    def __init__(self, feature_range: tuple[float, float] = (0.0, 1.0)) -> None:
        self.feature_range = feature_range

    def _fit(self, X: NDArray[Any]) -> Self:
        lo, hi = self.feature_range
        if not lo < hi:
            raise ValueError(f"feature_range must be (lo, hi) with lo < hi, got {(lo, hi)}")
        _refuse_all_missing(np.isnan(X), "MinMaxScaler")
        self.data_min_: FloatArray = np.nanmin(X, axis=0)
        self.data_max_: FloatArray = np.nanmax(X, axis=0)
        self.data_range_: FloatArray = self.data_max_ - self.data_min_
        safe_range = np.where(self.data_range_ < 10 * _EPS, 1.0, self.data_range_)
        self.scale_: FloatArray = (hi - lo) / safe_range
        self.min_: FloatArray = lo - self.data_min_ * self.scale_
        return self

    def fold_columns(self, width: int) -> list[tuple[tuple[Any, ...], ...]]:
        """``x · scale`` then ``+ min_`` per column, as ``_transform`` (``model/fold.py``)."""
        check_is_fitted(self, "scale_")
        return [
            (("mul", float(s)), ("add", float(m)))
            for s, m in zip(self.scale_.tolist(), self.min_.tolist(), strict=True)
        ]

    def _transform(self, X: NDArray[Any]) -> FloatArray:
        return np.asarray(X * self.scale_ + self.min_, dtype=np.float64)


class _BaseEncoder(Transformer):
    """The categories seen at fit, per column, sorted as scikit-learn, and a ``value -> index``
    dict over all columns (``category_index_``); the encoders below differ only in what they
    write for the index. It describes no columns to ``model/fold.py``: only one-hot's output
    is an indicator per category, so only :class:`OneHotEncoder` does."""

    def __init__(self, categories: Literal["auto"] | Sequence[Sequence[Any]] = "auto") -> None:
        self.categories = categories

    def _validate(self, X: Any) -> NDArray[Any]:
        return check_object_array(X)

    def _fit(self, X: NDArray[Any]) -> Self:
        missing = missing_mask(X)
        cats: list[NDArray[Any]] = []
        for j in range(X.shape[1]):
            if self.categories == "auto":
                present = X[~missing[:, j], j]
                try:
                    uniq = np.unique(present)
                except TypeError:
                    raise ValueError(
                        f"X: column {j} mixes values that cannot be compared "
                        f"(e.g. strings and numbers)"
                    ) from None
            else:
                if len(self.categories) != X.shape[1]:
                    raise ValueError(
                        f"categories has {len(self.categories)} lists for {X.shape[1]} columns"
                    )
                uniq = np.array(list(self.categories[j]), dtype=X.dtype)
            cats.append(uniq)
        return self._set_categories(cats)

    def _set_categories(self, cats: list[NDArray[Any]]) -> Self:
        self.categories_ = cats
        sizes = [len(c) for c in cats]
        self.offsets_ = np.concatenate(([0], np.cumsum(sizes))).astype(np.intp)
        # value -> its output column (offset of the input column + rank of the category)
        self.category_index_: list[dict[Any, int]] = [
            {v: int(start) + i for i, v in enumerate(c.tolist())}
            for start, c in zip(self.offsets_, cats, strict=False)
        ]
        return self

    @classmethod
    def from_categories(cls, categories: Sequence[Sequence[Any]]) -> Self:
        """A fitted encoder whose ``categories_`` (sorted, per column) were found elsewhere."""
        enc = cls()
        enc._set_categories([np.array(list(c), dtype=object) for c in categories])
        enc.n_features_in_ = len(categories)
        return enc


class OneHotEncoder(_BaseEncoder):
    """One indicator column per category seen at fit, categories sorted as scikit-learn.

    A value never seen at fit, and a missing value, encode as all zeros: a house from a new
    neighbourhood is priced as the average (baseline) one instead of being refused, which
    is scikit-learn's ``handle_unknown="ignore"``. The value -> column lookup is a dict
    built at fit, so encoding a row costs one hash lookup per column.
    """

    def fold_columns(self, width: int) -> list[dict[Any, int]]:
        """Each column's ``category -> output offset`` (``model/fold.py``); a category absent
        from it encodes as all zeros."""
        check_is_fitted(self, "category_index_")
        return [dict(index) for index in self.category_index_]

    def _transform(self, X: NDArray[Any]) -> FloatArray:
        n, k = X.shape
        # map() runs the dict lookups in C, column by column; -1 marks unknown or missing.
        lookups = chain.from_iterable(
            map(index.get, X[:, j], repeat(-1, n)) for j, index in enumerate(self.category_index_)
        )
        codes = np.fromiter(lookups, dtype=np.intp, count=n * k).reshape(k, n)
        col, row = np.nonzero(codes >= 0)
        out = np.zeros((n, int(self.offsets_[-1])), dtype=np.float64)
        out[row, codes[col, row]] = 1.0
        return out

    def get_feature_names_out(self, input_features: Sequence[str] | None = None) -> list[str]:
        """``<input>_<category>``, as scikit-learn."""
        check_is_fitted(self, "categories_")
        names = default_feature_names(len(self.categories_), input_features)
        return [
            f"{name}_{c}" for name, cats in zip(names, self.categories_, strict=True) for c in cats
        ]


class PolynomialFeatures(Transformer):
    """All monomials of the inputs up to ``degree``, in scikit-learn's column order.

    For degree 2 and inputs ``a, b``: ``[1,] a, b, a², ab, b²`` — degree by degree, each
    degree's index tuples in ``combinations_with_replacement`` order (``combinations``
    when ``interaction_only``, which drops the powers ``a²``). A linear model on these
    fits curvature and pairwise interactions while staying linear in its weights.
    """

    def __init__(
        self, degree: int = 2, interaction_only: bool = False, include_bias: bool = False
    ) -> None:
        self.degree = degree
        self.interaction_only = interaction_only
        self.include_bias = include_bias

    def _validate(self, X: Any) -> NDArray[Any]:
        return check_array(X)

    def _fit(self, X: NDArray[Any]) -> Self:
        if not isinstance(self.degree, int | np.integer) or self.degree < 0:
            raise ValueError(f"degree must be a non-negative integer, got {self.degree!r}")
        choose = combinations if self.interaction_only else combinations_with_replacement
        n = X.shape[1]
        terms: list[tuple[int, ...]] = [()] if self.include_bias else []
        for d in range(1, int(self.degree) + 1):
            terms.extend(choose(range(n), d))
        self.terms_ = terms
        powers = np.zeros((len(terms), n), dtype=np.intp)
        for t, term in enumerate(terms):
            for j in term:
                powers[t, j] += 1
        self.powers_ = powers
        self.n_output_features_ = len(terms)
        return self

    def _transform(self, X: NDArray[Any]) -> FloatArray:
        out = np.empty((X.shape[0], self.n_output_features_), dtype=np.float64)
        for t, term in enumerate(self.terms_):
            col = np.ones(X.shape[0])
            for j in term:
                col = col * X[:, j]
            out[:, t] = col
        return out

    def get_feature_names_out(self, input_features: Sequence[str] | None = None) -> list[str]:
        """``1``, ``a``, ``a^2``, ``a b`` — scikit-learn's spelling."""
        check_is_fitted(self, "powers_")
        names = default_feature_names(self.n_features_in_, input_features)
        out = []
        for row in self.powers_:
            parts = [names[j] if p == 1 else f"{names[j]}^{p}" for j, p in enumerate(row) if p]
            out.append(" ".join(parts) if parts else "1")
        return out


class LogTransformer(Transformer):
    """``x' = log(1 + x)`` on the chosen columns (all by default), NaN passing through.

    Prices, areas and lot sizes are right-skewed; log1p makes multiplicative effects
    additive and keeps 0 at 0. Values <= -1 have no log1p and are refused, naming the column.
    """

    def __init__(self, columns: Sequence[int] | None = None) -> None:
        self.columns = columns

    def _fit(self, X: NDArray[Any]) -> Self:
        n = X.shape[1]
        cols = list(range(n)) if self.columns is None else [int(c) for c in self.columns]
        bad = [c for c in cols if not -n <= c < n]
        if bad:
            raise ValueError(f"columns {bad} out of range for X with {n} columns")
        self.columns_ = np.array(sorted({c % n for c in cols}), dtype=np.intp)
        self._check_domain(X)
        return self

    def fold_columns(self, width: int) -> list[tuple[tuple[Any, ...], ...]]:
        """``log1p`` on the logged columns, nothing on the others (``model/fold.py``)."""
        check_is_fitted(self, "columns_")
        logged = set(self.columns_.tolist())
        return [(("log1p",),) if j in logged else () for j in range(width)]

    def _check_domain(self, X: NDArray[Any]) -> None:
        block = X if self.columns_.size == X.shape[1] else X[:, self.columns_]
        bad = block <= -1.0
        if bad.any():
            j = int(self.columns_[np.flatnonzero(bad.any(axis=0))[0]])
            raise ValueError(
                f"X: column {j} holds values <= -1 (min {np.nanmin(X[:, j])}); "
                f"log1p is undefined there"
            )

    def _transform(self, X: NDArray[Any]) -> FloatArray:
        self._check_domain(X)
        if self.columns_.size == X.shape[1]:
            return np.log1p(X)
        out = np.array(X, dtype=np.float64, copy=True)
        out[:, self.columns_] = np.log1p(X[:, self.columns_])
        return out

    def get_feature_names_out(self, input_features: Sequence[str] | None = None) -> list[str]:
        """``log1p(<name>)`` for transformed columns, the name unchanged for the others."""
        check_is_fitted(self, "columns_")
        names = default_feature_names(self.n_features_in_, input_features)
        logged = set(self.columns_.tolist())
        return [f"log1p({n})" if j in logged else n for j, n in enumerate(names)]


class AgeFromYear(Transformer):
    """``age = reference_year - year`` for every input column (a year built, remodelled...).

    A year is an awkward feature for a linear model (its zero is 2000 years ago); an age
    is a small number with a meaning. ``reference_year=None`` uses the latest year seen at
    fit (stored as ``reference_year_``), so training ages are >= 0 and the value is frozen
    into the model, not read from the clock at serving time. NaN passes through.
    """

    def __init__(self, reference_year: float | None = None) -> None:
        self.reference_year = reference_year

    def _fit(self, X: NDArray[Any]) -> Self:
        if self.reference_year is not None:
            self.reference_year_ = float(self.reference_year)
        else:
            _refuse_all_missing(np.isnan(X), "AgeFromYear(reference_year=None)")
            self.reference_year_ = float(np.nanmax(X))
        return self

    def fold_columns(self, width: int) -> list[tuple[tuple[Any, ...], ...]]:
        """``reference_year - x`` per column (``model/fold.py``)."""
        check_is_fitted(self, "reference_year_")
        return [(("rsub", self.reference_year_),) for _ in range(width)]

    def _transform(self, X: NDArray[Any]) -> FloatArray:
        return np.asarray(self.reference_year_ - X, dtype=np.float64)

    def get_feature_names_out(self, input_features: Sequence[str] | None = None) -> list[str]:
        """``age(<name>)``."""
        check_is_fitted(self, "reference_year_")
        return [f"age({n})" for n in default_feature_names(self.n_features_in_, input_features)]


class OrdinalEncoder(_BaseEncoder):
    """Each category as its rank among those seen at fit (``0 .. k−1``), in one column.

    A missing value and a value never seen at fit encode as NaN, which the histogram trees
    (:mod:`model.ensemble`) send to their missing bin, with its learned direction: the codes
    are for models that take categories natively, not for linear ones (the ranks are not
    an order).
    """

    def _transform(self, X: NDArray[Any]) -> FloatArray:
        n, k = X.shape
        # one-hot's column lookup, all columns in one pass; a column's offset then gives the rank
        lookups = chain.from_iterable(
            map(index.get, X[:, j], repeat(-1, n)) for j, index in enumerate(self.category_index_)
        )
        codes = np.fromiter(lookups, dtype=np.intp, count=n * k).reshape(k, n)
        ranks = (codes - self.offsets_[:-1, None]).astype(np.float64)
        return np.where(codes >= 0, ranks, np.nan).T

    def get_feature_names_out(self, input_features: Sequence[str] | None = None) -> list[str]:
        check_is_fitted(self, "categories_")
        return default_feature_names(len(self.categories_), input_features)
