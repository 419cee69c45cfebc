"""A fitted linear pipeline folded into per-column terms, to price a small table in microseconds.

The served pipeline is ``table -> ColumnTransformer -> [f⁻¹ ∘] linear model``, and every
transformer in front of the linear model acts on one column at a time. So the prediction is
a sum of one term per input column::

    ŷ = f⁻¹( b + Σ_numeric w_j · g_j(x_j) + Σ_categorical w[c_k] )

where ``g_j`` is the column's chain of elementwise steps (fill a missing value with the
learned statistic, ``log1p``, subtract a mean, divide by a scale...) and ``w[c]`` is the
coefficient of the one-hot column of category ``c`` (0 for a missing or never-seen category,
whose one-hot row is all zeros). Computed in plain Python floats, this is the same arithmetic
as the general path, the same operations in the same order per column; only the order of the
final sum differs, so the results agree to rounding (~1e-15 relative), without the dozen
NumPy calls that dominate ``Pipeline.predict`` on a few rows. The terms are compiled once, at
fold time, into one straight-line Python function (:func:`compile_terms`), so a request does
the arithmetic and nothing else: no step is looked up or dispatched per value.

This module is a generic walker: each transformer describes what it does to each of its
input columns through a ``fold_columns(width)`` method (``model/preprocessing.py``) that
returns, per column, either a tuple of :data:`Step` (elementwise, one output) or a mapping
``category -> output offset`` (one-hot); the ``ColumnTransformer`` names the columns and their
outputs (``fold_terms``) and a ``TransformedTargetRegressor`` names its inverse
(``fold_target``). Whatever lacks the method, or cannot describe itself exactly, raises
``ValueError`` saying why; :func:`fold` raises :class:`CannotFoldError` naming the block, and
the caller keeps the general path. :meth:`FoldedLinear.predict` returns ``None`` for a table
the general path would refuse or treat specially (an infinite value, ``log1p`` of a value
<= -1, a non-finite result), so the general path answers it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any, NamedTuple

import numpy as np

from model.linear import ElasticNet, LinearRegression
from model.pipeline import PASSTHROUGH, Pipeline

#: One elementwise operation, as NumPy applies it: ``("fill", v)`` (NaN -> v), ``("log1p",)``,
#: ``("sub", a)`` (x - a), ``("rsub", a)`` (a - x), ``("div", s)``, ``("mul", s)``, ``("add", a)``.
Step = tuple[Any, ...]

_INVERSE: dict[str | None, Callable[[float], float] | None] = {
    None: None,
    "log": math.exp,
    "log1p": math.expm1,
}
_LINEAR_PREDICTS = (LinearRegression.predict, ElasticNet.predict)
_STEPS = {"fill": 2, "log1p": 1, "sub": 2, "rsub": 2, "div": 2, "mul": 2, "add": 2}


class CannotFoldError(ValueError):
    """The pipeline is not a chain of per-column steps ending in a linear model."""


#: What a transformer does to one input column: elementwise steps, or a one-hot index.
ColumnFold = tuple[Step, ...] | Mapping[Any, int]


def fold_block(est: Any, width: int, block: str) -> list[ColumnFold]:
    """What a ColumnTransformer block does to each of its ``width`` input columns.

    ``"passthrough"`` is the identity; a :class:`~model.pipeline.Pipeline` chains its steps'
    elementwise descriptions; anything else describes itself with ``fold_columns(width)``.
    """
    if isinstance(est, str) and est == PASSTHROUGH:
        return [() for _ in range(width)]
    if isinstance(est, Pipeline):
        out: list[ColumnFold] = [() for _ in range(width)]
        for name, step in est.steps:
            if step is None or (isinstance(step, str) and step == PASSTHROUGH):
                continue
            nxt = fold_block(step, width, f"{block}/{name}")
            out = [_chain(a, b, f"{block}/{name}") for a, b in zip(out, nxt, strict=True)]
        return out
    describe = getattr(est, "fold_columns", None)
    if describe is None:
        raise CannotFoldError(
            f"block {block!r}: {type(est).__name__} does not describe its columns (not elementwise)"
        )
    try:
        columns: list[ColumnFold] = describe(width)
    except ValueError as e:
        raise CannotFoldError(f"block {block!r}: {e}") from None
    if len(columns) != width:
        raise CannotFoldError(f"block {block!r}: {len(columns)} column folds for {width} inputs")
    for column in columns:
        if isinstance(column, tuple):
            for step in column:
                if _STEPS.get(step[0]) != len(step):
                    raise CannotFoldError(f"block {block!r}: unknown elementwise step {step!r}")
    return columns


def _chain(first: ColumnFold, then: ColumnFold, block: str) -> ColumnFold:
    if isinstance(first, tuple) and isinstance(then, tuple):
        return first + then
    if isinstance(first, tuple) and not first:
        return then
    raise CannotFoldError(f"block {block!r}: a one-hot encoding must be the last step")


class NumericTerm(NamedTuple):
    """``w · g(x)`` for one numeric input column; ``g`` is ``steps`` applied in order."""

    name: str
    steps: tuple[Step, ...]
    w: float


class CategoricalTerm(NamedTuple):
    """``w[c]`` for one categorical input column; unknown and missing categories add 0."""

    name: str
    w: Mapping[Any, float]
    convert: Callable[[Any], Any]  # a value that is not a string -> its category


@dataclass(frozen=True)
class FoldedLinear:
    """``f⁻¹(b + Σ terms)`` for each row of a table; see the module docstring."""

    numeric: tuple[NumericTerm, ...]
    categorical: tuple[CategoricalTerm, ...]
    b: float
    inverse: Callable[[float], float] | None
    #: ``b + Σ terms`` of every row, given the input columns in the terms' order, compiled
    #: once from the terms (:func:`compile_terms`).
    sums: Callable[..., list[float]] = field(init=False, repr=False, compare=False)
    _columns_of: Callable[[Mapping[str, Any]], tuple[Any, ...]] = field(
        init=False, repr=False, compare=False
    )
    #: Each row's terms as ``{column: term}``, compiled once (:func:`compile_contributions`).
    terms: Callable[..., list[dict[str, float]]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        names = [t.name for t in self.numeric] + [t.name for t in self.categorical]
        columns = itemgetter(*names) if len(names) > 1 else lambda t: (t[names[0]],)
        object.__setattr__(self, "_columns_of", columns)
        object.__setattr__(self, "sums", compile_terms(self.numeric, self.categorical, self.b))
        object.__setattr__(self, "terms", compile_contributions(self.numeric, self.categorical))

    def predict(self, table: Mapping[str, Sequence[Any]]) -> list[float] | None:
        """The prices of a table ``{column: values}`` (``None`` = missing), or ``None`` when
        the general path must answer (some row needs it).

        A value reads as it would in the general path's table: a number where a category is
        expected is converted as the ``ColumnTransformer`` converts a numeric column. Row by
        row, in plain floats: on a few rows this beats any NumPy call.
        """
        try:
            sums = self.sums(*self._columns_of(table))
        except (TypeError, ValueError, OverflowError, ZeroDivisionError):
            return None  # not a number, log1p of a value <= -1...: the general path names it
        inverse = self.inverse
        for i, s in enumerate(sums):
            if not math.isfinite(s):
                return None  # a NaN left unfilled, an infinite value: the general path refuses
            if inverse is not None:
                try:
                    sums[i] = inverse(s)
                except OverflowError:  # past 1e308: the general path's inf, then refused
                    return None
        return sums

    def contributions(self, table: Mapping[str, Sequence[Any]]) -> list[dict[str, float]] | None:
        """Each row's terms ``{column: w·g(x) or w[c]}``, which add up with :attr:`b` to the
        value :meth:`predict` inverts; ``None`` where :meth:`predict` hands the table back.
        The same compiled steps as :meth:`predict` (:func:`compile_contributions`)."""
        try:
            rows = self.terms(*self._columns_of(table))
        except (TypeError, ValueError, OverflowError, ZeroDivisionError):
            return None
        b = self.b
        for terms in rows:
            if not math.isfinite(b + sum(terms.values())):
                return None  # as predict: an unfilled NaN, an infinite value
        return rows


#: How each elementwise step rewrites ``x`` in the compiled row (``{0}``, ``{1}``: its numbers).
_CODE = {
    "fill": "x = {0} if x != x else x",
    "log1p": "x = log1p(x)",  # raises ValueError at x <= -1, where NumPy gives -inf or NaN
    "standardize": "x = (x - {0}) / {1}",
    "sub": "x = x - {0}",
    "div": "x = x / {0}",
    "mul": "x = x * {0}",
    "add": "x = x + {0}",
    "rsub": "x = {0} - x",
}


def compile_terms(
    numeric: Sequence[NumericTerm], categorical: Sequence[CategoricalTerm], b: float
) -> Callable[..., list[float]]:
    """``sums(column_0, ..., column_k)``: ``b + Σ terms`` of each row, the columns in the terms'
    order, as one straight-line Python function compiled once, so that a request runs the
    arithmetic without walking the steps.

    Each step becomes one statement (:data:`_CODE`), in its order: the same floating-point
    operations as :meth:`FoldedLinear.predict` promises, summed in the terms' order. Numbers
    enter the code as names bound to their values, never as text. A row that cannot be priced
    raises (``float`` of a non-number, ``log1p`` at ``x <= -1``, a division by zero) or sums
    to a non-finite value (an unfilled NaN, an infinite value); ``predict`` hands it back.
    """
    env, const = _environment()
    body: list[str] = []
    for j, (_, steps, w) in enumerate(numeric):
        body += _numeric_code(j, steps, const)
        body.append(f"s {'+=' if j else '='} x * {const(w)}")
    for j, term in enumerate(categorical, start=len(numeric)):
        body += _categorical_code(j, term, const)
        body.append(f"s {'+=' if j else '='} t")
    body.append(f"out.append({const(b)} + s)")
    fn: Callable[..., list[float]] = _compile(
        "sums", len(numeric) + len(categorical), body, env, "<folded terms>"
    )
    return fn


def _environment() -> tuple[dict[str, Any], Callable[[Any], str]]:
    """The compiled code's globals, and ``const(value)``: a new name bound to ``value`` there,
    so numbers and dicts enter the code as names, never as text."""
    env: dict[str, Any] = {"nan": math.nan, "log1p": math.log1p, "inf": math.inf}

    def const(value: Any) -> str:
        name = f"k{len(env)}"
        env[name] = value
        return name

    return env, const


def _numeric_code(j: int, steps: Sequence[Step], const: Callable[[Any], str]) -> list[str]:
    """The statements that leave ``g(x)`` of row ``i`` of numeric column ``c{j}`` in ``x``."""
    lines = [f"v = c{j}[i]", "x = nan if v is None else float(v)"]
    if any(step[0] == "fill" for step in steps[1:]):  # it could fill an inf's NaN
        lines.append("if x == inf or x == -inf: raise ValueError")
    lines += [_CODE[step[0]].format(*map(const, step[1:])) for step in steps]
    return lines


def _categorical_code(j: int, term: CategoricalTerm, const: Callable[[Any], str]) -> list[str]:
    """The statements that leave the weight of row ``i``'s category in column ``c{j}`` in
    ``t`` (0.0 for a category the fit never saw, or a missing one)."""
    _, weights, convert = term
    category = f"v if v is None or type(v) is str else {const(convert)}(v)"
    return [f"v = c{j}[i]", f"t = {const(weights)}.get({category}, 0.0)"]


def _compile(
    name: str, width: int, body: Sequence[str], env: dict[str, Any], filename: str
) -> Callable[..., Any]:
    """``def name(c0, ..., c{width-1})`` running ``body`` for each row ``i``, appending to
    ``out``, compiled once."""
    source = "".join(
        [
            f"def {name}({', '.join(f'c{j}' for j in range(width))}):\n",
            "    out = []\n",
            "    for i in range(len(c0)):\n",
            *(f"        {line}\n" for line in body),
            "    return out\n",
        ]
    )
    exec(compile(source, filename, "exec"), env)
    fn: Callable[..., Any] = env[name]
    fn.__doc__ = source  # what runs, for whoever inspects it
    return fn


def compile_contributions(
    numeric: Sequence[NumericTerm], categorical: Sequence[CategoricalTerm]
) -> Callable[..., list[dict[str, float]]]:
    """``terms(column_0, ..., column_k)``: each row's ``{column: term}``, the columns in the
    terms' order, compiled once as :func:`compile_terms` compiles their sum, from the same
    statements per step (:data:`_CODE`), so the two read the steps one way. A row that cannot
    be priced raises as in :func:`compile_terms`; the terms of one whose sum is not finite are
    returned, for the caller to check."""
    env, const = _environment()
    body: list[str] = []
    for j, (_, steps, w) in enumerate(numeric):
        body += _numeric_code(j, steps, const)
        body.append(f"t{j} = x * {const(w)}")
    for j, term in enumerate(categorical, start=len(numeric)):
        body += _categorical_code(j, term, const)
        body.append(f"t{j} = t")
    names = [t.name for t in numeric] + [t.name for t in categorical]
    row = ", ".join(f"{const(name)}: t{j}" for j, name in enumerate(names))
    body.append(f"out.append({{{row}}})")
    fn: Callable[..., list[dict[str, float]]] = _compile(
        "terms", len(names), body, env, "<folded contributions>"
    )
    return fn


def _fuse(steps: tuple[Step, ...]) -> tuple[Step, ...]:
    """``("sub", a), ("div", s)`` as one ``("standardize", a, s)``: the same arithmetic,
    ``(x - a) / s``, in one step of the loop."""
    out: list[Step] = []
    for step in steps:
        if step[0] == "div" and out and out[-1][0] == "sub":
            out[-1] = ("standardize", out[-1][1], step[1])
        else:
            out.append(step)
    return tuple(out)


def fold(pipeline: Any) -> FoldedLinear:
    """Fold ``Pipeline([(_, ColumnTransformer), (_, [TransformedTargetRegressor of] linear)])``.

    Raises :class:`CannotFoldError`, naming the part, for any other shape.
    """
    if type(pipeline) is not Pipeline or len(pipeline.steps) != 2:
        raise CannotFoldError("not a two-step Pipeline (ColumnTransformer, regressor)")
    pipeline._check_fitted()
    (_, features), (_, last) = pipeline.steps
    terms_of = getattr(features, "fold_terms", None)
    if terms_of is None:
        raise CannotFoldError(f"first step is {type(features).__name__}, not a ColumnTransformer")
    inverse = None
    reg = last
    target = getattr(last, "fold_target", None)
    if target is not None:
        reg, func = target()
        if func not in _INVERSE:
            raise CannotFoldError(f"target transform {func!r} has no known inverse")
        inverse = _INVERSE[func]
    if not isinstance(reg, LinearRegression | ElasticNet) or type(reg).predict not in (
        _LINEAR_PREDICTS
    ):
        raise CannotFoldError(f"final estimator {type(reg).__name__} is not a linear model")
    if not hasattr(reg, "coef_"):
        raise CannotFoldError(f"{type(reg).__name__} is not fitted")
    w = np.asarray(reg.coef_, dtype=np.float64)
    try:
        columns: list[tuple[str, ColumnFold, int, Callable[[Any], Any] | None]] = terms_of()
    except ValueError as e:
        raise CannotFoldError(str(e)) from None
    if not columns:
        raise CannotFoldError("the ColumnTransformer passes no input column on")
    width = sum(1 if isinstance(c, tuple) else len(c) for _, c, _, _ in columns)
    if w.shape != (width,):
        raise CannotFoldError(f"coef_ has shape {w.shape}, the column terms {width} outputs")

    numeric: list[NumericTerm] = []
    categorical: list[CategoricalTerm] = []
    for name, column, start, convert in columns:
        if isinstance(column, tuple):
            numeric.append(NumericTerm(name, _fuse(column), float(w[start])))
        else:
            weights = {v: float(w[start + k]) for v, k in column.items()}
            categorical.append(CategoricalTerm(name, weights, convert or str))
    return FoldedLinear(tuple(numeric), tuple(categorical), float(reg.intercept_), inverse)
