"""model.derived: the rules mutation testing found unchecked (issue 20).

Each refusal is stated whole (the expression quoted first, then what is wrong and the offending
part), unary plus is allowed and changes nothing, arithmetic is IEEE with no warning (an
overflow is an infinity, not a RuntimeWarning), and a transformer not fitted says so.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest

from model.base import NotFittedError
from model.derived import DerivedFeatures, ExpressionError, expression_names, parse_expression


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("a ** 2", "'a ** 2': only + - * / are allowed, not 'a ** 2'"),
        ("b + a % 2", "'b + a % 2': only + - * / are allowed, not 'a % 2'"),
        ("a * (b // 2)", "'a * (b // 2)': only + - * / are allowed, not 'b // 2'"),
        ("not a", "'not a': only unary minus is allowed"),
        ("-(~a)", "'-(~a)': only unary minus is allowed"),
        ("'text'", "\"'text'\": 'text' is not a number"),
        ("a + True", "'a + True': True is not a number"),
        ("2 * None", "'2 * None': None is not a number"),
        ("1j * a", "'1j * a': 1j is not a number"),
        (
            "log(a)",
            "'log(a)': only column names, numbers, + - * / and parentheses are allowed, "
            "not call 'log(a)'",
        ),
        (
            "a + b.real",
            "'a + b.real': only column names, numbers, + - * / and parentheses are "
            "allowed, not attribute 'b.real'",
        ),
        (
            "a < b",
            "'a < b': only column names, numbers, + - * / and parentheses are allowed, "
            "not compare 'a < b'",
        ),
        (" a +", "' a +': not an arithmetic expression (invalid syntax)"),
        ("", "expected an arithmetic expression, got ''"),
        (" \t", "expected an arithmetic expression, got ' \\t'"),
    ],
)
def test_refusals_quote_the_expression_and_the_part_refused(expr: str, message: str) -> None:
    with pytest.raises(ExpressionError, match="^" + re.escape(message) + "$"):
        parse_expression(expr)


@pytest.mark.parametrize("expr", [None, 3, b"a + b"])
def test_an_expression_that_is_not_a_string_is_refused(expr: object) -> None:
    with pytest.raises(
        ExpressionError,
        match="^expected an arithmetic expression, got " + re.escape(repr(expr)) + "$",
    ):
        parse_expression(expr)  # type: ignore[arg-type]


def test_surrounding_spaces_and_newlines_are_not_syntax() -> None:
    """The expression is parsed stripped: a config's multi-line string may end in a newline."""
    tree = parse_expression("\n  a + b  \n")
    assert expression_names("\n  a + b  \n") == ["a", "b"]
    out = DerivedFeatures(["a", "b"], [("s", "\n  a + b  \n")]).fit_transform(np.ones((2, 2)))
    np.testing.assert_array_equal(out, [[2.0], [2.0]])
    assert tree.body is not None


def test_names_are_in_order_of_first_use_across_lines_and_columns() -> None:
    assert expression_names("(b\n + a) * c + b") == ["b", "a", "c"]
    assert expression_names("c * (b + a)") == ["c", "b", "a"]
    assert expression_names("2 + 3") == []


def test_unary_plus_and_minus_and_integer_constants_evaluate() -> None:
    X = np.array([[1.5, -2.0], [0.0, 4.0]])
    d = DerivedFeatures(
        ["a", "b"],
        [("p", "+a"), ("m", "-b"), ("k", "3"), ("mix", "+(-a) - -b * 2"), ("n", "-2")],
    ).fit(X)
    out = d.transform(X)
    expected = np.array([[1.5, 2.0, 3.0, -5.5, -2.0], [0.0, -4.0, 3.0, 8.0, -2.0]])
    np.testing.assert_array_equal(out, expected)
    assert out.dtype == np.float64 and out.shape == (2, 5)


def test_ieee_arithmetic_without_warnings_and_division_by_zero_missing() -> None:
    """Overflow is an infinity; 0/0, x/0 and inf - inf are missing: and NumPy stays quiet."""
    X = np.array([[1e308, 0.0, 2.0], [-1e308, 5.0, 0.0], [np.nan, 1.0, -0.0], [1.0, 0.0, 0.0]])
    d = DerivedFeatures(
        ["a", "b", "c"],
        [("big", "a * 10"), ("q", "b / c"), ("z", "c / b"), ("d", "big - big")],
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = d.fit_transform(X)
    np.testing.assert_array_equal(out[:, 0], [np.inf, -np.inf, np.nan, 10.0])
    np.testing.assert_array_equal(out[:, 1], [0.0, np.nan, np.nan, np.nan])  # 0/2; 5/0; 1/-0; 0/0
    np.testing.assert_array_equal(out[:, 2], [np.nan, 0.0, -0.0, np.nan])  # 2/0; 0/5; -0/1; 0/0
    np.testing.assert_array_equal(out[:, 3], [np.nan, np.nan, np.nan, 0.0])  # inf - inf
    assert np.signbit(out[2, 2]) and not np.signbit(out[1, 2])


@pytest.mark.parametrize(
    ("expressions", "message"),
    [
        ([("s",)], "expressions: expected (name, expression) pairs, got ('s',)"),
        ([("s", "a", "b")], "expressions: expected (name, expression) pairs, got ('s', 'a', 'b')"),
        (["sa"], "expressions: expected (name, expression) pairs, got 'sa'"),
        ([("s", "a + z + y")], "expressions: 's' = 'a + z + y': unknown column(s) ['z', 'y']"),
        ([("b", "a + 1")], "expressions: 'b' is already a column"),
        ([("s", "a"), ("s", "b")], "expressions: 's' is already a column"),
        ([], "expressions: expected at least one (name, expression)"),
    ],
)
def test_bad_specs_are_refused_whole(expressions: list[tuple[str, ...]], message: str) -> None:
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        DerivedFeatures(["a", "b"], expressions).fit(np.ones((3, 2)))


def test_column_count_mismatch_names_both_counts() -> None:
    with pytest.raises(ValueError, match=r"^X has 3 columns but columns names 2$"):
        DerivedFeatures(["a", "b"], [("s", "a")]).fit(np.ones((2, 3)))


def test_a_pair_may_be_a_list_and_names_come_out_as_strings() -> None:
    d = DerivedFeatures(["a"], [["s", "a * 2"], ("t", "s + a")]).fit(np.ones((1, 1)))
    assert d.get_feature_names_out() == ["s", "t"]
    assert d.trees_[0][0] == "s" and isinstance(d.trees_[0][1], type(parse_expression("a")))
    np.testing.assert_array_equal(d.transform(np.array([[2.0]])), [[4.0, 6.0]])


def test_names_before_fit_are_refused() -> None:
    with pytest.raises(NotFittedError):
        DerivedFeatures(["a"], [("s", "a")]).get_feature_names_out()
