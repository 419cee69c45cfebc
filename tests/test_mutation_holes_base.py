"""model.base: what mutation testing found the other tests let through (issue 20).

The shared checks are stated rule by rule: each refusal's whole message (anchored), the ends of
each accepted range, and what each helper returns.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import pytest

from model.base import (
    BaseEstimator,
    ClassifierMixin,
    NotFittedError,
    RegressorMixin,
    TransformerMixin,
    as_column,
    as_columns,
    check_array,
    check_int,
    check_is_fitted,
    check_n_features,
    check_real,
    check_target,
    check_X_y,
    clone,
)


def whole(message: str) -> str:
    return "^" + re.escape(message) + "$"


class Toy(BaseEstimator):
    def __init__(self, alpha: float = 1.0, inner: Any = None) -> None:
        self.alpha = alpha
        self.inner = inner


class Varargs(BaseEstimator):
    def __init__(self, a: int = 1, *args: Any, b: int = 2, **kwargs: Any) -> None:
        self.a = a
        self.b = b


# --- parameters -----------------------------------------------------------------------------


def test_param_names_are_the_init_arguments_but_self_and_var_arguments() -> None:
    assert Toy._param_names() == ["alpha", "inner"]
    assert Varargs._param_names() == ["a", "b"]
    assert Varargs().get_params() == {"a": 1, "b": 2}


def test_get_params_goes_down_every_level_only_when_deep() -> None:
    t = Toy(alpha=1.0, inner=Toy(alpha=2.0, inner=Toy(alpha=3.0)))
    deep = t.get_params()
    assert set(deep) == {
        "alpha",
        "inner",
        "inner__alpha",
        "inner__inner",
        "inner__inner__alpha",
        "inner__inner__inner",
    }
    assert deep["inner__inner__alpha"] == 3.0 and deep["inner__inner__inner"] is None
    shallow = t.get_params(deep=False)
    assert set(shallow) == {"alpha", "inner"} and shallow["inner"] is t.inner


def test_set_params_returns_self_and_reaches_two_levels_down() -> None:
    t = Toy(inner=Toy(inner=Toy()))
    assert t.set_params(inner__inner__alpha=9.0, alpha=4.0) is t
    assert t.alpha == 4.0 and t.inner.alpha == 1.0 and t.inner.inner.alpha == 9.0
    inner = Toy(alpha=5.0)
    t.set_params(inner=inner)
    assert t.inner is inner
    assert t.set_params() is t


def test_set_params_refusal_names_the_parameter_and_the_valid_ones() -> None:
    with pytest.raises(
        ValueError,
        match=whole("invalid parameter 'beta' for Toy; valid parameters: ['alpha', 'inner']"),
    ):
        Toy().set_params(beta=1)
    with pytest.raises(
        ValueError,
        match=whole("invalid parameter 'beta' for Toy; valid parameters: ['alpha', 'inner']"),
    ):
        Toy().set_params(beta__x=1)


def test_repr_lists_the_parameters_in_order() -> None:
    assert repr(Toy(alpha=2.0, inner="x")) == "Toy(alpha=2.0, inner='x')"
    assert repr(Toy(inner=Toy())) == "Toy(alpha=1.0, inner=Toy(alpha=1.0, inner=None))"


def test_clone_of_lists_tuples_and_other_values() -> None:
    a, b = Toy(alpha=2.0), Toy(alpha=3.0)
    a.coef_ = 1  # type: ignore[attr-defined]
    out = clone([a, b])
    assert type(out) is list and [e.alpha for e in out] == [2.0, 3.0]
    assert out[0] is not a and not hasattr(out[0], "coef_")
    pair = clone((a, b))
    assert type(pair) is tuple and pair[1] is not b and pair[1].alpha == 3.0
    value = {"k": [1, 2]}
    copied = clone(value)
    assert copied == value and copied is not value and copied["k"] is not value["k"]
    t = Toy(inner=[Toy(alpha=7.0)])
    c = clone(t)
    assert c.inner[0].alpha == 7.0 and c.inner[0] is not t.inner[0]


# --- fitted state and sizes -------------------------------------------------------------------


def test_check_is_fitted_reads_trailing_underscores_or_the_named_attribute() -> None:
    message = whole("this Toy instance is not fitted yet; call 'fit' first")
    t = Toy()
    with pytest.raises(NotFittedError, match=message):
        check_is_fitted(t)
    t._private = 1  # type: ignore[attr-defined]
    t.__dunder__ = 1  # type: ignore[attr-defined]
    with pytest.raises(NotFittedError, match=message):
        check_is_fitted(t)
    t.coef_ = 1  # type: ignore[attr-defined]
    check_is_fitted(t)
    check_is_fitted(t, "coef_")
    with pytest.raises(NotFittedError, match=message):
        check_is_fitted(t, "mean_")
    assert issubclass(NotFittedError, ValueError) and issubclass(NotFittedError, AttributeError)


def test_check_n_features_compares_columns_with_the_fit() -> None:
    t = Toy()
    t.n_features_in_ = 2  # type: ignore[attr-defined]
    check_n_features(t, np.zeros((3, 2)))
    with pytest.raises(ValueError, match=whole("X has 3 features, but Toy was fitted with 2")):
        check_n_features(t, np.zeros((1, 3)))


# --- numbers ----------------------------------------------------------------------------------


def test_check_int_accepts_its_ends_and_refuses_past_them() -> None:
    check_int("n", 1, 1, 3)
    check_int("n", 3, 1, 3)
    check_int("n", np.int64(2), 1, 3)
    check_int("n", 10**9, 1)
    check_int("n", None, 1, none=True)
    with pytest.raises(ValueError, match=whole("n must be an integer in [1, 3], got 4")):
        check_int("n", 4, 1, 3)
    with pytest.raises(ValueError, match=whole("n must be an integer in [1, 3], got 0")):
        check_int("n", 0, 1, 3)
    with pytest.raises(ValueError, match=whole("n must be an integer in [1, inf), got 0")):
        check_int("n", 0, 1)
    with pytest.raises(ValueError, match=whole("n must be an integer in [0, 3], got 4")):
        check_int("n", 4, 0, 3.5)
    with pytest.raises(ValueError, match=whole("n must be an integer in [1, inf) or None, got 0")):
        check_int("n", 0, 1, none=True)
    with pytest.raises(ValueError, match=whole("n must be an integer in [1, inf), got None")):
        check_int("n", None, 1)
    with pytest.raises(ValueError, match=whole("n must be an integer in [0, inf), got True")):
        check_int("n", True, 0)
    with pytest.raises(ValueError, match=whole("n must be an integer in [0, inf), got 1.0")):
        check_int("n", 1.0, 0)


@pytest.mark.parametrize(
    ("low_open", "high_open", "interval"),
    [
        (False, False, "[0, 1]"),
        (True, False, "(0, 1]"),
        (False, True, "[0, 1)"),
        (True, True, "(0, 1)"),
    ],
)
def test_check_real_keeps_each_end_open_or_closed(
    low_open: bool, high_open: bool, interval: str
) -> None:
    def check(value: Any) -> None:
        check_real("r", value, 0.0, 1.0, low_open=low_open, high_open=high_open)

    check(0.5)
    check(np.float32(0.25))
    for end, is_open in ((0.0, low_open), (1.0, high_open)):
        if is_open:
            with pytest.raises(
                ValueError, match=whole(f"r must be a number in {interval}, got {end!r}")
            ):
                check(end)
        else:
            check(end)
            check(int(end))
    for bad in (-0.5, 1.5, math.nan, math.inf, True, "0.5", None):
        with pytest.raises(
            ValueError, match=whole(f"r must be a number in {interval}, got {bad!r}")
        ):
            check(bad)


def test_check_real_writes_its_ends_with_g() -> None:
    with pytest.raises(ValueError, match=whole("r must be a number in [1e-06, inf), got 0")):
        check_real("r", 0, 1e-6, math.inf, low_open=False, high_open=True)
    check_real("r", 1e300, 1e-6, math.inf, low_open=False, high_open=True)


# --- arrays -----------------------------------------------------------------------------------


def test_check_array_returns_float64() -> None:
    arr = check_array([[1, 2], [3, 4]])
    assert arr.dtype == np.float64 and arr.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    y = check_array([1, 2], ensure_2d=False)
    assert y.dtype == np.float64 and y.tolist() == [1.0, 2.0]


def test_check_array_names_the_first_non_numeric_column() -> None:
    with pytest.raises(ValueError, match=whole("X: column 1 holds a non-numeric value 'x'")):
        check_array([[None, "x"]])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=whole("X: column 0 holds a non-numeric value 'a'")):
        check_array([[1.0, 2.0], ["a", "b"]])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=whole("M: column 'b' holds a non-numeric value 'x'")):
        check_array([[1.0, "x"]], name="M", feature_names=["a", "b"])  # type: ignore[arg-type]
    with pytest.raises(
        ValueError, match=whole("X: expected numbers, got values that are not numeric")
    ):
        check_array(["a", "b"])
    with pytest.raises(ValueError) as info:
        check_array([[1.0, "x"]])  # type: ignore[arg-type]
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_check_array_shapes() -> None:
    with pytest.raises(
        ValueError,
        match=whole(
            "X: expected a 2-D array, got shape (2,) "
            "(reshape a single feature with x.reshape(-1, 1))"
        ),
    ):
        check_array([1.0, 2.0])
    with pytest.raises(ValueError, match=whole("X: expected a 2-D array, got shape (1, 1, 1)")):
        check_array([[[1.0]]])
    with pytest.raises(ValueError, match=whole("X: expected a 2-D array, got shape ()")):
        check_array(1.0)
    with pytest.raises(
        ValueError, match=whole("X: expected at least one feature, got shape (2, 0)")
    ):
        check_array(np.empty((2, 0)))
    with pytest.raises(ValueError, match=whole("y: expected a 1-D array, got shape (1, 1)")):
        check_array([[1.0]], ensure_2d=False, name="y")
    with pytest.raises(
        ValueError, match=whole("X: expected at least 1 sample(s), got shape (0, 2)")
    ):
        check_array(np.empty((0, 2)))
    with pytest.raises(
        ValueError, match=whole("X: expected at least 3 sample(s), got shape (2, 1)")
    ):
        check_array([[1.0], [2.0]], min_samples=3)
    assert check_array([[1.0], [2.0]], min_samples=2).shape == (2, 1)
    assert check_array(np.empty(0), ensure_2d=False, min_samples=0).shape == (0,)


def test_check_array_missing_and_infinite_values() -> None:
    with pytest.raises(
        ValueError,
        match=whole("X: column 1 holds missing or infinite values (2 of 3); impute them first"),
    ):
        check_array([[1.0, np.nan], [2.0, 3.0], [4.0, np.inf]])
    with pytest.raises(
        ValueError, match=whole("X: column 'b' holds infinite values (1 of 2); impute them first")
    ):
        check_array([[np.nan, -np.inf], [1.0, 2.0]], allow_nan=True, feature_names=["a", "b"])
    kept = check_array([[np.nan, 1.0]], allow_nan=True)
    assert np.isnan(kept[0, 0]) and kept[0, 1] == 1.0
    with pytest.raises(ValueError, match=whole("y: holds 2 non-finite value(s)")):
        check_array([np.nan, 1.0, np.inf], ensure_2d=False, name="y")
    with pytest.raises(ValueError, match=whole("y: holds 1 non-finite value(s)")):
        check_array([np.nan, -np.inf], ensure_2d=False, name="y", allow_nan=True)
    assert np.isnan(check_array([np.nan], ensure_2d=False, allow_nan=True)[0])


def test_check_X_y_passes_its_options_and_compares_lengths() -> None:
    X, y = check_X_y([[np.nan], [1.0]], [1, 2], allow_nan=True)
    assert np.isnan(X[0, 0]) and y.dtype == np.float64 and y.tolist() == [1.0, 2.0]
    with pytest.raises(
        ValueError,
        match=whole("X and y have different numbers of samples: X (2, 1), y (1,)"),
    ):
        check_X_y([[1.0], [2.0]], [1.0])
    with pytest.raises(ValueError, match=whole("y: expected a 1-D array, got shape (2, 1)")):
        check_X_y([[1.0], [2.0]], [[1.0], [2.0]])


def test_check_target_takes_any_labels_of_the_right_shape() -> None:
    labels = check_target(["a", "b"], 2)
    assert labels.tolist() == ["a", "b"]
    assert check_target([0, 1, 1], 3).dtype.kind == "i"
    assert check_target([0.0, 1.0], 2).tolist() == [0.0, 1.0]
    with pytest.raises(ValueError, match=whole("y: expected a 1-D array, got shape (1, 2)")):
        check_target([[0, 1]], 2)
    with pytest.raises(
        ValueError, match=whole("X and y have different numbers of samples: 3 vs 2")
    ):
        check_target([0, 1], 3)
    for bad in ([0.0, np.nan], [np.inf, 1.0]):
        with pytest.raises(ValueError, match=whole("y: holds missing or infinite labels")):
            check_target(bad, 2)


# --- tables -----------------------------------------------------------------------------------


def test_as_column_numbers_become_float64_with_nan_for_missing() -> None:
    col = as_column([1, 2.5, None, math.nan, np.int32(4), np.float32(0.5)], "c")
    assert col.dtype == np.float64
    assert col[[0, 1, 4, 5]].tolist() == [1.0, 2.5, 4.0, 0.5] and np.isnan(col[[2, 3]]).all()
    assert as_column([], "c").dtype == np.float64


def test_as_column_anything_else_is_categorical_text_with_none_for_missing() -> None:
    col = as_column([1, "a", "", None, 2.5, True, math.nan, np.float64("nan")], "c")
    assert col.dtype == object
    assert col.tolist() == ["1", "a", None, None, "2.5", "True", None, None]
    assert as_column([True, False], "c").tolist() == ["True", "False"]
    kept = as_column([np.str_("a"), 1], "c")  # a str (subclass) is kept as given
    assert type(kept[0]) is np.str_ and type(kept[1]) is str


def test_as_columns_keeps_given_arrays_and_converts_the_rest() -> None:
    given = np.array([1.0, 2.0])
    cols = as_columns({"a": given, 3: [1, None]})
    assert cols["a"] is given
    assert list(cols) == ["a", "3"] and cols["3"].dtype == np.float64 and np.isnan(cols["3"][1])
    two_d = np.array([[1.0], [2.0]])
    assert as_columns({"m": two_d})["m"].dtype == object
    rows = as_columns(({"a": 1, "b": "x"}, {"b": "y", "a": 2}))
    assert list(rows) == ["a", "b"] and rows["a"].tolist() == [1.0, 2.0]
    assert rows["b"].tolist() == ["x", "y"]
    assert as_columns({}) == {}


@pytest.mark.parametrize(
    ("X", "message"),
    [
        ([], "X: expected at least one row, got none"),
        (
            [{"a": 1}, {"b": 2}],
            "X: row 1 has columns ['b'] but row 0 has ['a']",
        ),
        (
            [{"a": 1, "b": 2}, {"a": 1}],
            "X: row 1 has columns ['a'] but row 0 has ['a', 'b']",
        ),
        (
            "ab",
            "X: expected a mapping of column name to values or a list of row dicts, got str",
        ),
        (
            [{"a": 1}, [1]],
            "X: expected a mapping of column name to values or a list of row dicts, got list",
        ),
        (
            np.zeros((2, 2)),
            "X: expected a mapping of column name to values or a list of row dicts, got ndarray",
        ),
        ({"a": [1, 2], "b": [1]}, "X: columns have different lengths: {'a': 2, 'b': 1}"),
    ],
)
def test_as_columns_refusals_are_worded_whole(X: Any, message: str) -> None:
    with pytest.raises(ValueError, match=whole(message)):
        as_columns(X)


# --- mixins -----------------------------------------------------------------------------------


class Recorder(TransformerMixin):
    def fit(self, X: Any, y: Any = None) -> Recorder:
        self.seen = (X, y)
        return self

    def transform(self, X: Any) -> Any:
        return ("t", X)


def test_fit_transform_fits_with_y_then_transforms() -> None:
    r = Recorder()
    assert r.fit_transform("X", "y") == ("t", "X")
    assert r.seen == ("X", "y")


class Constant(RegressorMixin, ClassifierMixin):
    def __init__(self, pred: Any) -> None:
        self.pred = pred

    def predict(self, X: Any) -> Any:
        return np.asarray(self.pred)[: len(X)]


def test_regressor_score_is_r2_of_y_against_the_predictions() -> None:
    y = np.array([1.0, 2.0, 3.0, 4.0])
    pred = np.array([1.0, 2.0, 2.0, 2.0])
    # r2(y, pred) = 1 - 5/5 = 0; r2(pred, y) is not (the order matters)
    assert RegressorMixin.score(Constant(pred), np.zeros((4, 1)), y) == pytest.approx(1 - 5 / 5)
    assert RegressorMixin._estimator_type == "regressor"
    assert ClassifierMixin._estimator_type == "classifier"
    assert ClassifierMixin.score(Constant([0, 1, 1]), np.zeros((3, 1)), [0, 1, 0]) == pytest.approx(
        2 / 3
    )
