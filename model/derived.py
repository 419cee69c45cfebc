"""Derived columns: new numeric features computed from a table's columns by arithmetic.

A derived column is a name and an expression over the table's numeric columns, e.g.::

    total_area = basement_area + first_floor_area + second_floor_area
    age        = year_sold - year_built
    quality_x_area = quality * total_area      # an earlier derived column may be used

The expression is arithmetic in Python syntax: column names, numbers, ``+ - * /``, unary
minus and parentheses. Nothing else parses (no calls, attributes, comparisons or
subscripts), so an expression read from a config file can only compute, never run code. It is
parsed once (:func:`parse_expression`) and evaluated on float64 columns with NumPy, in IEEE
arithmetic except for one rule: a missing operand (NaN) or a division by zero gives a missing
value, which the imputer after this step fills as it fills any missing input.

:class:`DerivedFeatures` computes them inside a ``ColumnTransformer`` block, from the block's
input columns, so serving sends the same inputs as before and the fitted pipeline derives the
values exactly as at training.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Sequence
from typing import Any, Self

import numpy as np
from numpy.typing import NDArray

from model.base import FloatArray, check_is_fitted
from model.preprocessing import Transformer

_BINARY: dict[type[ast.operator], Callable[[FloatArray, FloatArray], FloatArray]] = {
    ast.Add: np.add,
    ast.Sub: np.subtract,
    ast.Mult: np.multiply,
    ast.Div: np.divide,
}


class ExpressionError(ValueError):
    """An expression that is not plain arithmetic over known numeric columns."""


def _check_node(node: ast.AST, expr: str) -> None:
    """Refuse anything but numbers, names, ``+ - * /``, unary minus and parentheses."""
    if isinstance(node, ast.Expression):
        _check_node(node.body, expr)
    elif isinstance(node, ast.BinOp):
        if type(node.op) not in _BINARY:
            raise ExpressionError(f"{expr!r}: only + - * / are allowed, not {ast.unparse(node)!r}")
        _check_node(node.left, expr)
        _check_node(node.right, expr)
    elif isinstance(node, ast.UnaryOp):
        if not isinstance(node.op, ast.USub | ast.UAdd):
            raise ExpressionError(f"{expr!r}: only unary minus is allowed")
        _check_node(node.operand, expr)
    elif isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, int | float):
            raise ExpressionError(f"{expr!r}: {node.value!r} is not a number")
    elif not isinstance(node, ast.Name):
        raise ExpressionError(
            f"{expr!r}: only column names, numbers, + - * / and parentheses are allowed, "
            f"not {type(node).__name__.lower()} {ast.unparse(node)!r}"
        )


def parse_expression(expr: str) -> ast.Expression:
    """The checked syntax tree of ``expr``; :class:`ExpressionError` says what is wrong."""
    if not isinstance(expr, str) or not expr.strip():
        raise ExpressionError(f"expected an arithmetic expression, got {expr!r}")
    try:
        tree = ast.parse(expr.strip(), mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"{expr!r}: not an arithmetic expression ({exc.msg})") from None
    _check_node(tree, expr)
    return tree


def expression_names(expr: str) -> list[str]:
    """The column names ``expr`` reads, in order of first use."""
    names = [n for n in ast.walk(parse_expression(expr)) if isinstance(n, ast.Name)]
    names.sort(key=lambda n: (n.lineno, n.col_offset))
    return list(dict.fromkeys(n.id for n in names))


def _evaluate(node: ast.AST, cols: dict[str, FloatArray], n: int) -> FloatArray:
    if isinstance(node, ast.Expression):
        return _evaluate(node.body, cols, n)
    if isinstance(node, ast.Name):
        return cols[node.id]
    if isinstance(node, ast.Constant):
        assert isinstance(node.value, int | float)  # _check_node refused anything else
        return np.full(n, float(node.value))
    if isinstance(node, ast.UnaryOp):
        value = _evaluate(node.operand, cols, n)
        return -value if isinstance(node.op, ast.USub) else value
    assert isinstance(node, ast.BinOp)
    left, right = _evaluate(node.left, cols, n), _evaluate(node.right, cols, n)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        out = _BINARY[type(node.op)](left, right)
    if isinstance(node.op, ast.Div):
        out[right == 0] = np.nan  # x / 0 is missing, not an infinity a scaler would spread
    return np.asarray(out, dtype=np.float64)


class DerivedFeatures(Transformer):
    """``expressions = [(name, expression), ...]`` evaluated on the input columns ``columns``.

    The input is the 2-D float block of the columns named in ``columns`` (in that order, as a
    ``ColumnTransformer`` block hands them over); the output has one column per expression, in
    order. An expression reads the input columns and the expressions before it. Nothing is
    learned: ``fit`` checks the names (every one read must be an input or an earlier output)
    and parses the expressions once.
    """

    def __init__(self, columns: Sequence[str], expressions: Sequence[tuple[str, str]]) -> None:
        self.columns = columns
        self.expressions = expressions

    def _fit(self, X: NDArray[Any]) -> Self:
        names = list(self.columns)
        if X.shape[1] != len(names):
            raise ValueError(f"X has {X.shape[1]} columns but columns names {len(names)}")
        if not self.expressions:
            raise ValueError("expressions: expected at least one (name, expression)")
        known = set(names)
        trees: list[tuple[str, ast.Expression]] = []
        for item in self.expressions:
            if not isinstance(item, tuple | list) or len(item) != 2:
                raise ValueError(f"expressions: expected (name, expression) pairs, got {item!r}")
            name, expr = item
            if name in known:
                raise ValueError(f"expressions: {name!r} is already a column")
            unknown = [c for c in expression_names(expr) if c not in known]
            if unknown:
                raise ValueError(f"expressions: {name!r} = {expr!r}: unknown column(s) {unknown}")
            known.add(name)
            trees.append((str(name), parse_expression(expr)))
        self.trees_ = trees
        return self

    def _transform(self, X: NDArray[Any]) -> FloatArray:
        cols = {name: X[:, j] for j, name in enumerate(self.columns)}
        n = X.shape[0]
        for name, tree in self.trees_:
            cols[name] = _evaluate(tree, cols, n)
        return np.column_stack([cols[name] for name, _ in self.trees_])

    def get_feature_names_out(self, input_features: Sequence[str] | None = None) -> list[str]:
        """The expressions' names."""
        check_is_fitted(self, "trees_")
        return [name for name, _ in self.trees_]
