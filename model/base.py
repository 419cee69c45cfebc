"""Estimator base class, input validation and errors shared by every model in ``model/``.

The conventions are scikit-learn's, so that a reader who knows one knows the other:

* hyperparameters are set only in ``__init__`` and stored unchanged under the same names,
  so ``get_params``/``set_params``/``clone`` can work by introspection;
* ``fit`` returns ``self`` and stores what it learned in attributes ending in ``_``;
* input is checked once, at the public boundary, by the helpers below, which name the
  column or the shape that is wrong.
"""

from __future__ import annotations

import copy
import inspect
import math
from collections.abc import Iterable, Mapping, Sequence
from numbers import Integral, Real
from typing import Any, Self

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]
#: A table given by column: API feature name -> the column's values (numbers, strings, None).
Columns = dict[str, NDArray[Any]]


class NotFittedError(ValueError, AttributeError):
    """Raised when an estimator is used before ``fit``."""


class BaseEstimator:
    """Parameter handling by introspection of ``__init__``, as in scikit-learn."""

    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [
            p.name
            for p in sig.parameters.values()
            if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Hyperparameters by name; with ``deep``, nested estimators' as ``step__param``."""
        out: dict[str, Any] = {}
        for name in self._param_names():
            value = getattr(self, name)
            out[name] = value
            if deep and isinstance(value, BaseEstimator):
                for key, sub in value.get_params(deep=True).items():
                    out[f"{name}__{key}"] = sub
        return out

    def set_params(self, **params: Any) -> Self:
        """Set hyperparameters; ``a__b=v`` sets ``b`` on the nested estimator ``a``."""
        valid = self.get_params(deep=True)
        nested: dict[str, dict[str, Any]] = {}
        for key, value in params.items():
            name, _, sub = key.partition("__")
            if name not in valid:
                raise ValueError(
                    f"invalid parameter {name!r} for {type(self).__name__}; "
                    f"valid parameters: {sorted(self._param_names())}"
                )
            if sub:
                nested.setdefault(name, {})[sub] = value
            else:
                setattr(self, name, value)
        for name, sub_params in nested.items():
            getattr(self, name).set_params(**sub_params)
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params(deep=False).items())
        return f"{type(self).__name__}({args})"


def clone(estimator: Any) -> Any:
    """A new unfitted estimator with the same hyperparameters (nested estimators cloned too)."""
    if isinstance(estimator, list | tuple):
        return type(estimator)(clone(e) for e in estimator)
    if not isinstance(estimator, BaseEstimator):
        return copy.deepcopy(estimator)
    params = {k: clone(v) for k, v in estimator.get_params(deep=False).items()}
    return type(estimator)(**params)


def check_is_fitted(estimator: BaseEstimator, attribute: str | None = None) -> None:
    """Raise :class:`NotFittedError` unless ``fit`` has run (some attribute ends in ``_``)."""
    if attribute is not None:
        fitted = hasattr(estimator, attribute)
    else:
        fitted = any(k.endswith("_") and not k.startswith("__") for k in vars(estimator))
    if not fitted:
        raise NotFittedError(
            f"this {type(estimator).__name__} instance is not fitted yet; call 'fit' first"
        )


def check_n_features(est: BaseEstimator, X: NDArray[Any]) -> None:
    """Raise ``ValueError`` unless ``X`` has as many columns as ``est`` was fitted with."""
    n_in: int = getattr(est, "n_features_in_")  # noqa: B009 - set by fit
    if X.shape[1] != n_in:
        raise ValueError(
            f"X has {X.shape[1]} features, but {type(est).__name__} was fitted with {n_in}"
        )


def check_int(name: str, value: Any, low: int, high: float = np.inf, none: bool = False) -> None:
    """Raise ``ValueError`` naming ``name`` unless ``value`` is an integer in ``[low, high]``."""
    if none and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, Integral) or not low <= int(value) <= high:
        top = "inf)" if high == np.inf else f"{int(high)}]"
        extra = " or None" if none else ""
        raise ValueError(f"{name} must be an integer in [{low}, {top}{extra}, got {value!r}")


def check_real(
    name: str, value: Any, low: float, high: float, *, low_open: bool, high_open: bool
) -> None:
    """Raise ``ValueError`` naming ``name`` unless ``value`` is a number in the interval."""
    ok = isinstance(value, Real) and not isinstance(value, bool) and np.isfinite(float(value))
    if ok:
        ok = (value > low if low_open else value >= low) and (
            value < high if high_open else value <= high
        )
    if not ok:
        interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise ValueError(f"{name} must be a number in {interval}, got {value!r}")


def _column_label(names: Sequence[str] | None, j: int) -> str:
    return f"column {names[j]!r}" if names is not None else f"column {j}"


def check_array(
    X: ArrayLike,
    *,
    allow_nan: bool = False,
    ensure_2d: bool = True,
    min_samples: int = 1,
    name: str = "X",
    feature_names: Sequence[str] | None = None,
) -> FloatArray:
    """Return ``X`` as a float64 array, or raise a ``ValueError`` naming the shape or column.

    A 1-D input where 2-D is expected is refused (as scikit-learn does): a single feature
    must be given as a column, ``x.reshape(-1, 1)``, so that a row is never taken for a column.
    """
    try:
        arr = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError):
        raw = np.asarray(X, dtype=object)
        if raw.ndim == 2:
            for j in range(raw.shape[1]):
                for v in raw[:, j]:
                    try:
                        float(v if v is not None else math.nan)
                    except (TypeError, ValueError):
                        label = _column_label(feature_names, j)
                        raise ValueError(
                            f"{name}: {label} holds a non-numeric value {v!r}"
                        ) from None
        raise ValueError(f"{name}: expected numbers, got values that are not numeric") from None
    if ensure_2d:
        if arr.ndim != 2:
            hint = " (reshape a single feature with x.reshape(-1, 1))" if arr.ndim == 1 else ""
            raise ValueError(f"{name}: expected a 2-D array, got shape {arr.shape}{hint}")
        if arr.shape[1] == 0:
            raise ValueError(f"{name}: expected at least one feature, got shape {arr.shape}")
    elif arr.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array, got shape {arr.shape}")
    if arr.shape[0] < min_samples:
        raise ValueError(
            f"{name}: expected at least {min_samples} sample(s), got shape {arr.shape}"
        )
    bad = ~np.isfinite(arr) if not allow_nan else np.isinf(arr)
    if bad.any():
        if arr.ndim == 2:
            j = int(np.flatnonzero(bad.any(axis=0))[0])
            what = "infinite" if allow_nan else "missing or infinite"
            raise ValueError(
                f"{name}: {_column_label(feature_names, j)} holds {what} values "
                f"({int(bad[:, j].sum())} of {arr.shape[0]}); impute them first"
            )
        raise ValueError(f"{name}: holds {int(bad.sum())} non-finite value(s)")
    return arr


def check_X_y(X: ArrayLike, y: ArrayLike, **kwargs: Any) -> tuple[FloatArray, FloatArray]:
    """Validate a feature matrix and a finite 1-D target of the same length."""
    Xa = check_array(X, **kwargs)
    ya = check_array(y, ensure_2d=False, name="y")
    if ya.shape[0] != Xa.shape[0]:
        raise ValueError(f"X and y have different numbers of samples: X {Xa.shape}, y {ya.shape}")
    return Xa, ya


def check_target(y: ArrayLike, n_samples: int) -> NDArray[Any]:
    """Validate a 1-D label vector (any dtype) for classifiers."""
    ya = np.asarray(y)
    if ya.ndim != 1:
        raise ValueError(f"y: expected a 1-D array, got shape {ya.shape}")
    if ya.shape[0] != n_samples:
        raise ValueError(f"X and y have different numbers of samples: {n_samples} vs {ya.shape[0]}")
    if ya.dtype.kind == "f" and not np.isfinite(ya).all():
        raise ValueError("y: holds missing or infinite labels")
    return ya


def _is_missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def as_column(values: Iterable[Any], name: str) -> NDArray[Any]:
    """One column as float64 when every present value is a number, else as object.

    Missing values (``None``, NaN, ``""``) become NaN in a numeric column and ``None`` in a
    categorical one. Booleans are not numbers here: ``True`` for a size is an error upstream,
    and a column of booleans is categorical.
    """
    raw = list(values)
    numeric = all(
        _is_missing(v)
        or (isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool))
        for v in raw
    )
    if numeric:
        return np.array([math.nan if _is_missing(v) else float(v) for v in raw], dtype=np.float64)
    out = np.empty(len(raw), dtype=object)
    for i, v in enumerate(raw):
        out[i] = None if _is_missing(v) or v == "" else (v if isinstance(v, str) else str(v))
    return out


def as_columns(X: Any) -> Columns:
    """Accept a mapping of column -> values or a sequence of row dicts; return columns.

    Every column has the same length; a column already given as a NumPy array is kept as it is
    (no copy), so the serving path pays nothing for the conversion.
    """
    if isinstance(X, Mapping):
        cols: Columns = {}
        for k, v in X.items():
            cols[str(k)] = v if isinstance(v, np.ndarray) and v.ndim == 1 else as_column(v, k)
    elif (
        isinstance(X, Sequence)
        and not isinstance(X, str | bytes)
        and all(isinstance(r, Mapping) for r in X)
    ):
        if not X:
            raise ValueError("X: expected at least one row, got none")
        names = list(X[0].keys())
        for i, row in enumerate(X):
            if set(row.keys()) != set(names):
                raise ValueError(
                    f"X: row {i} has columns {sorted(row)} but row 0 has {sorted(names)}"
                )
        cols = {str(k): as_column([row[k] for row in X], str(k)) for k in names}
    else:
        raise ValueError(
            f"X: expected a mapping of column name to values or a list of row dicts, "
            f"got {type(X).__name__}"
        )
    lengths = {k: len(v) for k, v in cols.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"X: columns have different lengths: {lengths}")
    return cols


class TransformerMixin:
    """``fit_transform`` as ``fit(...).transform(...)``."""

    def fit_transform(self, X: Any, y: Any = None) -> Any:
        return self.fit(X, y).transform(X)  # type: ignore[attr-defined]


class RegressorMixin:
    """``score`` is R², as in scikit-learn."""

    _estimator_type = "regressor"

    def score(self, X: Any, y: ArrayLike) -> float:
        from model.metrics import r2_score

        return r2_score(y, self.predict(X))  # type: ignore[attr-defined]


class ClassifierMixin:
    """``score`` is accuracy, as in scikit-learn."""

    _estimator_type = "classifier"

    def score(self, X: Any, y: ArrayLike) -> float:
        from model.metrics import accuracy_score

        return accuracy_score(y, self.predict(X))  # type: ignore[attr-defined]
