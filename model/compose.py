"""Composition: route named columns of a table to transformers; transform the target.

``ColumnTransformer`` is the boundary between a table (``dict`` of column name -> 1-D array,
or a list of row dicts, see :func:`model.base.as_columns`) and the float matrix the models
take: ``X = [T_1(table[cols_1]) | T_2(table[cols_2]) | ...]``. It validates each block once
and then calls the fitted transformers on the clean arrays without re-checking them.

``TransformedTargetRegressor`` fits ``regressor`` on ``f(y)`` and predicts
``f⁻¹(regressor.predict(X))``. With ``f = log`` a linear model of log-price fits
multiplicative effects (an extra bathroom adds a percentage, not a fixed amount) and its
errors are relative, which is how house-price errors behave.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from typing import Any, Literal, Self

import numpy as np
from numpy.typing import NDArray

from model.base import (
    BaseEstimator,
    Columns,
    FloatArray,
    RegressorMixin,
    TransformerMixin,
    as_columns,
    check_array,
    check_is_fitted,
    clone,
)
from model.fold import ColumnFold, fold_block
from model.pipeline import PASSTHROUGH, NamedEstimatorsMixin, check_names
from model.preprocessing import transform_validated

NUMERIC, CATEGORICAL = "numeric", "categorical"
_DROP = "drop"


def _as_category(v: Any) -> Any:
    """A number given where a category is expected: ``60.0 -> "60"``, NaN -> ``None``."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    if isinstance(v, float | np.floating) and float(v).is_integer():
        return str(int(v))
    return str(v)


def _as_categories(col: NDArray[Any]) -> NDArray[Any]:
    out = np.empty(len(col), dtype=object)
    out[:] = [_as_category(v) for v in col.tolist()]
    return out


def _kind(col: NDArray[Any]) -> str:
    return NUMERIC if col.dtype.kind in "biuf" else CATEGORICAL


def _rename_columns(message: str, names: Sequence[str]) -> str:
    """Turn ``column 2`` in a nested transformer's message into ``column 'lot_area'``."""

    def sub(m: re.Match[str]) -> str:
        j = int(m.group(1))
        return f"column {names[j]!r}" if 0 <= j < len(names) else m.group(0)

    return re.sub(r"\bcolumn (\d+)\b", sub, message)


def _source(output: str, names: Sequence[str]) -> str:
    """The longest of ``names`` that ``output`` is or starts with followed by ``_``; ``""``."""
    found = [n for n in names if output == n or output.startswith(n + "_")]
    return max(found, key=len, default="")


class ColumnTransformer(TransformerMixin, NamedEstimatorsMixin):
    """``transformers = [(name, transformer, [column, ...]), ...]`` applied side by side.

    A block goes in as a 2-D float64 array (NaN for missing) when its columns were numeric
    at fit, else as a 2-D object array of strings and ``None``; the kind is frozen at fit,
    so a serving row whose categorical value is missing (and so looks numeric) is still
    routed as a category. ``transformer`` may be ``"passthrough"`` (numeric columns as they
    are) or ``"drop"``. Columns named by no transformer are dropped, or passed through
    with ``remainder="passthrough"`` (numeric only). The output is always float64.
    """

    _items_attr = "transformers"

    def __init__(
        self,
        transformers: Sequence[tuple[str, Any, Sequence[str]]],
        remainder: Literal["drop", "passthrough"] = "drop",
    ) -> None:
        self.transformers = transformers
        self.remainder = remainder

    def _check_spec(self) -> None:
        for item in self.transformers:
            if not isinstance(item, tuple) or len(item) != 3:
                raise ValueError(
                    f"ColumnTransformer: each transformer must be (name, transformer, "
                    f"[columns]), got {item!r}"
                )
            name, _, columns = item
            if isinstance(columns, str) or not all(isinstance(c, str) for c in columns):
                raise ValueError(
                    f"ColumnTransformer: transformer {name!r} needs a list of column names, "
                    f"got {columns!r}"
                )
        check_names([item[0] for item in self.transformers], "ColumnTransformer transformer")
        if self.remainder not in (_DROP, PASSTHROUGH):
            raise ValueError(f"remainder must be 'drop' or 'passthrough', got {self.remainder!r}")

    @staticmethod
    def _require(cols: Columns, names: Sequence[str]) -> None:
        missing = [c for c in names if c not in cols]
        if missing:
            raise ValueError(f"X: missing required column(s) {missing}; got {sorted(cols)}")

    @staticmethod
    def _block(cols: Columns, names: Sequence[str], numeric: bool) -> NDArray[Any]:
        """The 2-D input of one transformer, validated once here."""
        if numeric:
            # float columns stack without conversion; anything else is converted (or
            # refused, naming the column) by the validator
            return check_array(
                np.array([cols[c] for c in names]).T, allow_nan=True, feature_names=names
            )
        parts = [cols[c] if cols[c].dtype == object else _as_categories(cols[c]) for c in names]
        return np.array(parts, dtype=object).T

    def fit(self, X: Any, y: Any = None) -> Self:
        self.fit_transform(X, y)
        return self

    def fit_transform(self, X: Any, y: Any = None) -> FloatArray:
        self._check_spec()
        cols = as_columns(X)
        self.feature_names_in_ = list(cols)
        self._require(cols, [c for _, _, names in self.transformers for c in names])
        used = {c for _, _, names in self.transformers for c in names}
        rest = [c for c in cols if c not in used]
        spec = [(name, est, list(names)) for name, est, names in self.transformers]
        if self.remainder == PASSTHROUGH and rest:
            spec.append(("remainder", PASSTHROUGH, rest))
        self.column_kinds_ = {c: _kind(cols[c]) for _, _, names in spec for c in names}
        n_rows = len(next(iter(cols.values()))) if cols else 0

        fitted: list[tuple[str, Any, list[str]]] = []
        outputs: list[FloatArray] = []
        for name, est, names in spec:
            if est == _DROP or not names:
                continue
            kinds = [self.column_kinds_[c] for c in names]
            if est == PASSTHROUGH:
                categorical = [c for c, k in zip(names, kinds, strict=True) if k != NUMERIC]
                if categorical:
                    raise ValueError(
                        f"ColumnTransformer: {name!r} passes through categorical column(s) "
                        f"{categorical}; encode them (e.g. OneHotEncoder) to get numbers"
                    )
                out = self._block(cols, names, numeric=True)
                fitted.append((name, PASSTHROUGH, names))
            else:
                block = self._block(cols, names, all(k == NUMERIC for k in kinds))
                est = clone(est)
                try:
                    out = est.fit_transform(block, y)
                except ValueError as exc:
                    raise ValueError(
                        f"ColumnTransformer: transformer {name!r}: "
                        f"{_rename_columns(str(exc), names)}"
                    ) from exc
                fitted.append((name, est, names))
            out = np.asarray(out, dtype=np.float64)
            if out.ndim != 2 or out.shape[0] != n_rows:
                raise ValueError(
                    f"ColumnTransformer: transformer {name!r} returned shape {out.shape}; "
                    f"expected a 2-D array with one row per input row"
                )
            outputs.append(out)
        if not outputs:
            raise ValueError("ColumnTransformer: every column was dropped; nothing to output")
        self._set_layout(fitted, [o.shape[1] for o in outputs])
        return np.hstack(outputs)

    @classmethod
    def from_fitted(
        cls,
        fitted: Sequence[tuple[str, Any, Sequence[str]]],
        column_kinds: dict[str, str],
        widths: Sequence[int],
    ) -> ColumnTransformer:
        """A fitted ColumnTransformer from blocks fitted elsewhere (e.g. built from statistics
        accumulated over chunks): ``(name, fitted transformer, columns)``, each column's kind
        (``"numeric"``/``"categorical"``) and each block's output width."""
        spec = [(name, est, list(names)) for name, est, names in fitted]
        ct = cls(spec)
        ct.feature_names_in_ = [c for _, _, names in spec for c in names]
        ct.column_kinds_ = dict(column_kinds)
        ct._set_layout(spec, widths)
        return ct

    def _set_layout(self, fitted: list[tuple[str, Any, list[str]]], widths: Sequence[int]) -> None:
        self.transformers_ = fitted
        self.numeric_blocks_ = [
            all(self.column_kinds_[c] == NUMERIC for c in names) for _, _, names in fitted
        ]
        stops = np.cumsum(widths).tolist()
        self.output_slices_ = [
            (int(stop - w), int(stop)) for stop, w in zip(stops, widths, strict=True)
        ]
        self.n_features_out_ = int(stops[-1])
        self.required_columns_ = [c for _, _, names in fitted for c in names]

    def transform(self, X: Any) -> FloatArray:
        check_is_fitted(self, "transformers_")
        return self._transform_columns(as_columns(X))

    def _transform_columns(self, cols: Columns) -> FloatArray:
        """Each block checked once here; the fitted transformers then skip their checks."""
        self._require(cols, self.required_columns_)
        n = len(cols[self.required_columns_[0]])
        out = np.empty((n, self.n_features_out_), dtype=np.float64)
        for (name, est, names), (start, stop), numeric in zip(
            self.transformers_, self.output_slices_, self.numeric_blocks_, strict=True
        ):
            block = self._block(cols, names, numeric)
            if est == PASSTHROUGH:
                out[:, start:stop] = block
                continue
            try:
                out[:, start:stop] = transform_validated(est, block)
            except ValueError as exc:
                raise ValueError(
                    f"ColumnTransformer: transformer {name!r}: {_rename_columns(str(exc), names)}"
                ) from exc
        return out

    def fold_terms(self) -> list[tuple[str, ColumnFold, int, Callable[[Any], Any] | None]]:
        """``(input column, what its block does to it, output, category conversion)`` per
        input column, for :func:`model.fold.fold`. A numeric block's columns must each fold to
        elementwise steps (``output`` is the column's own), a categorical block's to a one-hot
        index whose offsets count from ``output``, the block's first output."""
        check_is_fitted(self, "transformers_")
        out: list[tuple[str, ColumnFold, int, Callable[[Any], Any] | None]] = []
        for (name, est, names), (start, stop), numeric in zip(
            self.transformers_, self.output_slices_, self.numeric_blocks_, strict=True
        ):
            columns = fold_block(est, len(names), name)
            width = 0
            for j, (col, column) in enumerate(zip(names, columns, strict=True)):
                if numeric != isinstance(column, tuple):
                    kind = "numeric" if numeric else "categorical"
                    raise ValueError(
                        f"block {name!r}: {kind} column {col!r} folds as the other kind"
                    )
                if numeric:  # one output per column, in order
                    out.append((col, column, start + j, None))
                    width += 1
                else:  # the offsets of a one-hot index count from the block's first output
                    out.append((col, column, start, _as_category))
                    width += len(column)
            if width != stop - start:
                raise ValueError(
                    f"block {name!r}: its columns fold to {width} outputs, not {stop - start}"
                )
        return out

    def output_columns(self) -> list[str]:
        """The input column each output column comes from (``model/explain.py``).

        A block with one output per input maps them in order; a one-hot block, by its
        category index (``fold_columns``) or else by its output names ``<input>_<category>``
        (the longest input name that prefixes it). Any other block raises ``ValueError``.
        """
        check_is_fitted(self, "transformers_")
        out: list[str] = []
        for (name, est, names), (start, stop) in zip(
            self.transformers_, self.output_slices_, strict=True
        ):
            if stop - start == len(names):
                out.extend(names)
                continue
            try:
                source = [""] * (stop - start)
                for col, column in zip(names, fold_block(est, len(names), name), strict=True):
                    if isinstance(column, tuple):
                        raise ValueError(f"block {name!r}: column {col!r} has no one-hot index")
                    for k in column.values():
                        source[k] = col
            except ValueError:
                source = [_source(f, names) for f in est.get_feature_names_out(names)]
            if "" in source or len(source) != stop - start:
                raise ValueError(
                    f"block {name!r} ({type(est).__name__}): its {stop - start} outputs do not "
                    f"each come from one of its input columns {list(names)}"
                )
            out.extend(source)
        return out

    def get_feature_names_out(self, input_features: Sequence[str] | None = None) -> list[str]:
        """``<transformer>__<feature>``, as scikit-learn's default."""
        check_is_fitted(self, "transformers_")
        out: list[str] = []
        for name, est, names in self.transformers_:
            inner = names if est == PASSTHROUGH else list(est.get_feature_names_out(names))
            out.extend(f"{name}__{f}" for f in inner)
        return out


_FUNCS: dict[str, tuple[Callable[[FloatArray], FloatArray], Callable[[FloatArray], FloatArray]]] = {
    "log": (np.log, np.exp),
    "log1p": (np.log1p, np.expm1),
}
_DOMAIN = {"log": 0.0, "log1p": -1.0}


class TransformedTargetRegressor(RegressorMixin, BaseEstimator):
    """Fit ``regressor`` (cloned) on ``f(y)``; predict ``f⁻¹(regressor.predict(X))``.

    ``func`` is ``"log"`` (needs y > 0), ``"log1p"`` (needs y > -1) or ``None`` (identity).
    ``score`` is R² on the original scale, the scale the predictions are used on.
    """

    def __init__(self, regressor: Any, func: Literal["log", "log1p"] | None = None) -> None:
        self.regressor = regressor
        self.func = func

    def _check_func(self) -> None:
        if self.func is not None and self.func not in _FUNCS:
            raise ValueError(f"func must be 'log', 'log1p' or None, got {self.func!r}")

    def fit(self, X: Any, y: Any) -> Self:
        self._check_func()
        ya = check_array(y, ensure_2d=False, name="y")
        if self.func is None:
            fy = ya
        else:
            low = _DOMAIN[self.func]
            bad = ya <= low
            if bad.any():
                raise ValueError(
                    f"y: func={self.func!r} needs every target > {low:g}; "
                    f"{int(bad.sum())} value(s) are not (min {ya.min():g})"
                )
            fy = _FUNCS[self.func][0](ya)
        self.regressor_ = clone(self.regressor).fit(X, fy)
        return self

    def fold_target(self) -> tuple[Any, str | None]:
        """The fitted inner regressor and ``func``, for :func:`model.fold.fold`."""
        check_is_fitted(self, "regressor_")
        return self.regressor_, self.func

    def predict(self, X: Any) -> FloatArray:
        check_is_fitted(self, "regressor_")
        pred = np.asarray(self.regressor_.predict(X), dtype=np.float64)
        return pred if self.func is None else _FUNCS[self.func][1](pred)
