"""A fitted linear pipeline folded into per-feature terms, to price one row in microseconds.

The served pipeline is ``table -> ColumnTransformer -> [f⁻¹ ∘] linear model``, and every
transformer in front of the linear model acts on one column at a time. So the prediction is
a sum of one term per input column::

    ŷ = f⁻¹( b + Σ_numeric w_j · g_j(x_j) + Σ_categorical w[c_k] )

where ``g_j`` is the column's chain of elementwise steps (fill a missing value with the
learned statistic, ``log1p``, ``(x - mean) / scale``) and ``w[c]`` is the coefficient of the
one-hot column of category ``c`` (0 for a missing or never-seen category, whose one-hot row is
all zeros). Computed in plain Python floats for one row, this is the same arithmetic as the
general path — the same operations in the same order per feature; only the order of the final
sum differs, so the results agree to rounding (~1e-15 relative) — without the dozen NumPy
calls of a few microseconds each that dominate a one-row ``Pipeline.predict``.

:func:`fold` accepts only what it can reproduce exactly and raises :class:`CannotFoldError`,
saying why, for anything else (a tree, polynomial features, a foreign transformer): the caller
then keeps the general path. :meth:`FoldedLinear.predict_row` returns ``None`` for a row the
general path would refuse or treat specially (an infinite value, ``log1p`` of a value <= -1,
a non-finite result), so the general path answers — or raises its usual error — for it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from model.base import check_is_fitted
from model.compose import ColumnTransformer, TransformedTargetRegressor, _as_category
from model.linear import ElasticNet, LinearRegression
from model.pipeline import PASSTHROUGH, Pipeline
from model.preprocessing import LogTransformer, OneHotEncoder, SimpleImputer, StandardScaler

#: One elementwise step of a numeric column: ("fill", v), ("log1p",) or ("affine", mean, scale).
Step = tuple[Any, ...]

_INVERSE: dict[str | None, Callable[[float], float] | None] = {
    None: None,
    "log": math.exp,
    "log1p": math.expm1,
}
_LINEAR_PREDICTS = (LinearRegression.predict, ElasticNet.predict)


class CannotFoldError(ValueError):
    """The pipeline is not a chain of per-column steps ending in a linear model."""


@dataclass(frozen=True)
class NumericTerm:
    """``w · g(x)`` for one numeric input column; ``g`` is ``steps`` applied in order."""

    name: str
    steps: tuple[Step, ...]
    w: float


@dataclass(frozen=True)
class CategoricalTerm:
    """``w[c]`` for one categorical input column; unknown and missing categories add 0."""

    name: str
    w: Mapping[Any, float]


@dataclass(frozen=True)
class FoldedLinear:
    """``f⁻¹(b + Σ terms)`` for one row; see the module docstring."""

    numeric: tuple[NumericTerm, ...]
    categorical: tuple[CategoricalTerm, ...]
    b: float
    inverse: Callable[[float], float] | None

    def predict_row(self, row: Mapping[str, Any]) -> float | None:
        """The price of one row given as ``{column: value}`` (``None`` = missing), or ``None``
        when the general path must answer.

        A value reads as the same value in a one-row table would: a number where a category
        is expected is converted as the ``ColumnTransformer`` converts a numeric column.
        """
        terms: list[float] = []
        for term in self.numeric:
            v = row[term.name]
            try:
                x = math.nan if v is None else float(v)
            except (TypeError, ValueError):
                return None  # not a number: the general path names the column
            if math.isinf(x):
                return None
            for step in term.steps:
                op = step[0]
                if op == "fill":
                    if x != x:  # NaN
                        x = step[1]
                elif op == "log1p":
                    if x <= -1.0:
                        return None
                    x = math.log1p(x)
                else:
                    x = (x - step[1]) / step[2]
            terms.append(x * term.w)
        for cat in self.categorical:
            v = row[cat.name]
            if v is not None and type(v) is not str:
                v = _as_category(v)
            terms.append(cat.w.get(v, 0.0))
        s = self.b + sum(terms)
        if not math.isfinite(s):
            return None  # a NaN left unfilled: the general path refuses it
        if self.inverse is None:
            return s
        try:
            return self.inverse(s)
        except OverflowError:  # math.exp past 1e308: the general path's inf, then refused
            return None


def _numeric_steps(est: Any, width: int, block: str) -> list[list[Step]]:
    """The elementwise steps of each of ``width`` columns, from a fitted transformer chain."""
    chain = list(est.steps) if isinstance(est, Pipeline) else [(block, est)]
    steps: list[list[Step]] = [[] for _ in range(width)]
    for name, step in chain:
        if step is None or (isinstance(step, str) and step == PASSTHROUGH):
            continue
        if type(step) is SimpleImputer and step.strategy in ("mean", "median", "constant"):
            stats = np.asarray(step.statistics_)
            if stats.dtype.kind != "f" or stats.shape != (width,):
                raise CannotFoldError(
                    f"block {block!r}: imputer {name!r} holds no number per column"
                )
            for j in range(width):
                steps[j].append(("fill", float(stats[j])))
        elif type(step) is LogTransformer:
            for j in step.columns_.tolist():
                steps[j].append(("log1p",))
        elif type(step) is StandardScaler:
            mean = step.mean_ if step.with_mean else np.zeros(width)
            scale = step.scale_ if step.with_std else np.ones(width)
            for j in range(width):
                steps[j].append(("affine", float(mean[j]), float(scale[j])))
        else:
            raise CannotFoldError(
                f"block {block!r}: step {name!r} ({type(step).__name__}) is not elementwise"
            )
    return steps


def fold(pipeline: Any) -> FoldedLinear:
    """Fold ``Pipeline([(_, ColumnTransformer), (_, [TransformedTargetRegressor of] linear)])``.

    Raises :class:`CannotFoldError`, naming the part, for any other shape.
    """
    if type(pipeline) is not Pipeline or len(pipeline.steps) != 2:
        raise CannotFoldError("not a two-step Pipeline (ColumnTransformer, regressor)")
    pipeline._check_fitted()
    (_, ct), (_, last) = pipeline.steps
    if type(ct) is not ColumnTransformer:
        raise CannotFoldError(f"first step is {type(ct).__name__}, not a ColumnTransformer")
    check_is_fitted(ct, "transformers_")
    inverse = None
    reg = last
    if type(last) is TransformedTargetRegressor:
        check_is_fitted(last, "regressor_")
        if last.func not in _INVERSE:
            raise CannotFoldError(f"target transform {last.func!r} has no known inverse")
        inverse = _INVERSE[last.func]
        reg = last.regressor_
    if not isinstance(reg, LinearRegression | ElasticNet) or type(reg).predict not in (
        _LINEAR_PREDICTS
    ):
        raise CannotFoldError(f"final estimator {type(reg).__name__} is not a linear model")
    check_is_fitted(reg, "coef_")
    w = np.asarray(reg.coef_, dtype=np.float64)
    if w.shape != (ct.n_features_out_,):
        raise CannotFoldError(f"coef_ has shape {w.shape}, not ({ct.n_features_out_},)")

    numeric: list[NumericTerm] = []
    categorical: list[CategoricalTerm] = []
    for (name, est, names), (start, stop), is_numeric in zip(
        ct.transformers_, ct.output_slices_, ct.numeric_blocks_, strict=True
    ):
        if type(est) is OneHotEncoder and not is_numeric:
            for index, col in zip(est.category_index_, names, strict=True):
                weights = {v: float(w[start + k]) for v, k in index.items()}
                categorical.append(CategoricalTerm(col, weights))
            continue
        if not is_numeric:
            raise CannotFoldError(f"block {name!r} is categorical but not one-hot encoded")
        per_col = (
            [[] for _ in names] if est == PASSTHROUGH else _numeric_steps(est, len(names), name)
        )
        if stop - start != len(names):
            raise CannotFoldError(f"block {name!r} does not output one column per input")
        for j, col in enumerate(names):
            numeric.append(NumericTerm(col, tuple(per_col[j]), float(w[start + j])))
    return FoldedLinear(tuple(numeric), tuple(categorical), float(reg.intercept_), inverse)
