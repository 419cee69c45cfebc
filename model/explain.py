"""Additive explanations: a prediction as a baseline plus one contribution per input feature.

A fitted pipeline's raw output ``s(x)`` (on the target's scale: log-price for a log target)
is written as

    s(x) = b + Σ_j c_j(x)

over the input features ``j`` (the table's columns), so the price is ``f⁻¹(b + Σ c)``
(``exp`` for a log target, ``expm1`` for log1p, the identity otherwise). Every rule below
is exact, so the sum gives back the model's own prediction up to rounding.

**Linear** (``exact-linear``). ``ŷ = w₀ + Σ_k w_k z_k`` over the columns ``z = T(x)`` of the
features step, each output column ``k`` coming from one input feature ``j(k)`` (a one-hot
column from its categorical feature): ``b = w₀`` and ``c_j = Σ_{k: j(k)=j} w_k z_k``.

**Trees** (``saabas``; Saabas 2014, "path contributions"). Every node ``n`` holds a value
``v(n)`` (the mean, or the Newton step, of its rows); a row's path from the root ``n₀`` to its
leaf ``n_L`` telescopes:

    v(n_L) = v(n₀) + Σ_i [v(n_{i+1}) − v(n_i)]

and each step is credited to the feature split at ``n_i``: ``b = v(n₀)``, ``c_j`` = the sum
of the steps of splits on ``j``. Boosting sums its trees after ``F₀`` (``b = F₀ + Σ_t
v_t(n₀)``, ``c = Σ_t c_t``); a forest averages them (both divided by the number of trees).

**Combinations.** A vote ``Σ_k ω_k s_k`` gives ``b = Σ ω_k b_k``, ``c = Σ ω_k c_k`` (a chain
of models on each other's residuals, ``Σ_k s_k``, the same with every ``ω_k = 1``); a stack
whose final estimator is linear, ``a₀ + Σ_k a_k s_k``, gives ``b = a₀ + Σ a_k b_k`` and
``c = Σ a_k c_k``. The method is ``saabas`` as soon as one part is a tree. A stack with a
non-linear final estimator, or a model of none of these kinds, raises
:class:`CannotExplainError`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import numpy as np

from model.base import Columns, FloatArray, check_array
from model.compose import ColumnTransformer, TransformedTargetRegressor
from model.ensemble import (
    HistGradientBoostingRegressor,
    RandomForestRegressor,
    StackingRegressor,
    VotingRegressor,
)
from model.fold import FoldedLinear
from model.linear import ElasticNet, LinearRegression
from model.pipeline import PASSTHROUGH, Pipeline
from model.residual import ResidualRegressor
from model.robust import HuberRegressor
from model.tree import LEAF, DecisionTreeRegressor

Space = Literal["log", "log1p", "price"]
Method = Literal["exact-linear", "saabas"]

_INVERSE: dict[Space, Callable[[FloatArray], FloatArray] | None] = {
    "price": None,
    "log": np.exp,
    "log1p": np.expm1,
}
#: The folded model's scalar inverse -> the space its terms live in.
_FOLDED_SPACE: dict[Any, Space] = {None: "price", math.exp: "log", math.expm1: "log1p"}
_LINEAR_PREDICTS = (LinearRegression.predict, ElasticNet.predict, HuberRegressor.predict)


class CannotExplainError(ValueError):
    """The model has no exact additive explanation here (the message names the part)."""


class Attribution(NamedTuple):
    """``s = baseline + contributions.sum(axis=1)`` for ``n`` rows over ``names``."""

    baseline: FloatArray  # (n,)
    contributions: FloatArray  # (n, len(names))
    names: list[str]
    exact_linear: bool  # no tree anywhere: the linear rule only
    space: Space


def _group(c: FloatArray, names: Sequence[str]) -> tuple[FloatArray, list[str]]:
    """Columns of ``c`` that share a name summed into one, names in order of first sight."""
    unique = list(dict.fromkeys(names))
    if len(unique) == len(names):
        return c, list(names)
    index = {name: i for i, name in enumerate(unique)}
    g = np.zeros((len(names), len(unique)))
    g[np.arange(len(names)), [index[name] for name in names]] = 1.0
    return c @ g, unique


def _combine(parts: Sequence[Attribution], weights: FloatArray, intercept: float) -> Attribution:
    """``intercept + Σ_k weights_k · part_k``, contributions aligned by feature name."""
    spaces = {p.space for p in parts}
    if spaces != {"price"}:
        raise CannotExplainError(
            f"a combined model's parts must predict on one scale, not transform it ({spaces})"
        )
    names = list(dict.fromkeys(name for p in parts for name in p.names))
    index = {name: i for i, name in enumerate(names)}
    n = parts[0].baseline.shape[0]
    b = np.full(n, float(intercept))
    c = np.zeros((n, len(names)))
    for w, p in zip(weights.tolist(), parts, strict=True):
        b += w * p.baseline
        c[:, [index[name] for name in p.names]] += w * p.contributions
    return Attribution(b, c, names, all(p.exact_linear for p in parts), "price")


def _is_linear(est: Any) -> bool:
    linear = isinstance(est, LinearRegression | ElasticNet | HuberRegressor)
    return linear and type(est).predict in _LINEAR_PREDICTS


def _cart(tree: DecisionTreeRegressor, X: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Saabas over one CART tree: every row moves down one level per step, as ``apply``."""
    n = X.shape[0]
    value = tree.value_[:, 0]
    c = np.zeros((n, X.shape[1]))
    node = np.zeros(n, dtype=np.intp)
    rows = np.arange(n)
    for _ in range(tree.max_depth_):
        j = tree.feature_[node]
        inner = j != LEAF
        if not inner.any():
            break
        r, nd, ji = rows[inner], node[inner], j[inner]
        go_left = X[r, ji] <= tree.threshold_[nd]
        child = np.where(go_left, tree.children_left_[nd], tree.children_right_[nd])
        c[r, ji] += value[child] - value[nd]  # one step per row: no index repeats
        node[inner] = child
    return np.full(n, value[0]), c


def _forest(
    est: HistGradientBoostingRegressor | RandomForestRegressor, X: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Saabas over every histogram tree at once, walking the trees as ``Forest.leaves`` does
    and crediting each step ``v(child) − v(node)`` to the node's split feature."""
    forest = est.forest_
    n, d = X.shape
    n_trees = forest.roots.size
    c = np.zeros(n * d)
    if n_trees == 0:
        return np.full(n, float(est.baseline_)), c.reshape(n, d)
    value = np.concatenate([t.value for t in est.trees_])  # every node's own value
    e = forest.extend(X).ravel()
    width = 3 * d + 1
    node = np.tile(forest.roots, n)
    row = np.repeat(np.arange(n, dtype=np.intp), n_trees)
    base = row * width
    has_cat = forest.cat_left.shape[0] > 0
    for _ in range(forest.depth):
        col = forest.col[node]
        x = e[base + col]
        le = x <= forest.threshold[node]
        if has_cat:
            cr = forest.cat_row[node]
            k = np.flatnonzero(cr >= 0)
            if k.size:
                le[k] = forest.cat_left[cr[k], x[k].astype(np.intp)]
        child = forest.left[node] + ~le
        # a split reads column f, f + d or 2d + f of the extended row: its feature is col % d
        # (a leaf reads 3d and stays put: its step is 0)
        c += np.bincount(row * d + col % d, weights=value[child] - value[node], minlength=n * d)
        node = child
    root = float(value[forest.roots].sum())
    scale = 1.0 if isinstance(est, HistGradientBoostingRegressor) else 1.0 / n_trees
    return np.full(n, est.baseline_ + root * scale), c.reshape(n, d) * scale


def _matrix(est: Any, X: Any, names: Sequence[str] | None) -> Attribution:
    """A model of the features step's matrix, its columns named by the input they come from."""
    if names is None:
        raise CannotExplainError(
            f"{type(est).__name__} takes a matrix: it needs a ColumnTransformer before it to "
            "name its columns"
        )
    Xa = check_array(
        X, allow_nan=not _is_linear(est) and not isinstance(est, DecisionTreeRegressor)
    )
    if _is_linear(est):
        coef = np.asarray(est.coef_, dtype=np.float64)
        c, grouped = _group(Xa * coef, names)
        return Attribution(np.full(Xa.shape[0], float(est.intercept_)), c, grouped, True, "price")
    if isinstance(est, DecisionTreeRegressor):
        b, c = _cart(est, Xa)
    elif isinstance(est, HistGradientBoostingRegressor | RandomForestRegressor):
        b, c = _forest(est, Xa)
    else:
        raise CannotExplainError(f"{type(est).__name__} has no additive explanation here")
    c, grouped = _group(c, names)
    return Attribution(b, c, grouped, False, "price")


def attribute(est: Any, X: Any, names: Sequence[str] | None = None) -> Attribution:
    """The :class:`Attribution` of fitted ``est`` on ``X``: a table, or a matrix whose
    columns come from the input features ``names``."""
    if isinstance(est, Pipeline):
        return _pipeline(est, X, names)
    if isinstance(est, TransformedTargetRegressor):
        inner = attribute(est.fold_target()[0], X, names)
        if inner.space != "price":
            raise CannotExplainError("a target transform inside another one")
        return inner._replace(space=est.func or "price")
    if isinstance(est, VotingRegressor):
        parts = [attribute(e, X, names) for e in est.estimators_]
        return _combine(parts, np.asarray(est.weights_, dtype=np.float64), 0.0)
    if isinstance(est, ResidualRegressor):
        parts = [attribute(e, X, names) for e in est.estimators_]
        return _combine(parts, np.ones(len(parts)), 0.0)
    if isinstance(est, StackingRegressor):
        final = est.final_estimator_
        if not _is_linear(final):
            raise CannotExplainError(
                f"stacking's final estimator {type(final).__name__} is not linear: its "
                "inputs' contributions do not add up"
            )
        parts = [attribute(e, X, names) for e in est.estimators_]
        return _combine(parts, np.asarray(final.coef_, dtype=np.float64), final.intercept_)
    return _matrix(est, X, names)


def _pipeline(pipe: Pipeline, X: Any, names: Sequence[str] | None) -> Attribution:
    *transforms, (_, last) = pipe.steps
    for step_name, step in transforms:
        if step is None or (isinstance(step, str) and step == PASSTHROUGH):
            continue
        if not isinstance(step, ColumnTransformer) or names is not None:
            raise CannotExplainError(
                f"pipeline step {step_name!r} ({type(step).__name__}): only one "
                "ColumnTransformer may prepare the features of an explained model"
            )
        try:
            names = step.output_columns()
        except ValueError as e:
            raise CannotExplainError(f"pipeline step {step_name!r}: {e}") from None
        X = step.transform(X)
    return attribute(last, X, names)


@dataclass(frozen=True)
class Explanation:
    """``n`` rows' explanations: ``f⁻¹(baseline + Σ contributions)`` is each row's price."""

    space: Space
    method: Method
    names: list[str]
    baseline: FloatArray
    contributions: FloatArray

    def prices(self) -> FloatArray:
        """``f⁻¹(b + Σ c)``: the prices the explanations add up to."""
        s = self.baseline + self.contributions.sum(axis=1)
        inverse = _INVERSE[self.space]
        return s if inverse is None else inverse(s)

    def records(self) -> list[dict[str, Any]]:
        """One JSON-ready ``{space, method, baseline, contributions}`` per row."""
        names = self.names
        head = {"space": self.space, "method": self.method}
        return [
            {**head, "baseline": b, "contributions": dict(zip(names, c, strict=True))}
            for b, c in zip(self.baseline.tolist(), self.contributions.tolist(), strict=True)
        ]


def explain(pipeline: Any, table: Columns) -> Explanation:
    """Explain every row of ``table`` (``{column: 1-D array}``); :class:`CannotExplainError`
    names the part of the model that has no exact additive explanation."""
    a = attribute(pipeline, table)
    method: Method = "exact-linear" if a.exact_linear else "saabas"
    return Explanation(a.space, method, a.names, a.baseline, a.contributions)


def folded_records(
    folded: FoldedLinear, table: Mapping[str, Sequence[Any]]
) -> list[dict[str, Any]] | None:
    """:meth:`Explanation.records` from the folded linear terms (a few rows in plain floats),
    or ``None`` where the folded model hands the table back to the general path."""
    terms = folded.contributions(table)
    if terms is None:
        return None
    head = {"space": _FOLDED_SPACE[folded.inverse], "method": "exact-linear", "baseline": folded.b}
    return [{**head, "contributions": t} for t in terms]
