"""model.residual: what mutation testing found the other tests let through (issue 20).

The rules are stated against the definition: each model is fitted to ``y`` minus the fitted
predictions of those before it, the prediction is their sum; the caller's ``y`` and a model's
own arrays are left as they were; every refusal is worded whole (anchored).
"""

from __future__ import annotations

import re
from typing import Any, Self

import numpy as np
import pytest

from model.base import BaseEstimator, NotFittedError
from model.linear import LinearRegression
from model.residual import ResidualRegressor


def whole(message: str) -> str:
    return "^" + re.escape(message) + "$"


class Recorder(BaseEstimator):
    """Remembers the target it was fitted to and predicts ``scale * x0`` as an array of
    ``dtype``, returning the same stored array on every call."""

    def __init__(self, scale: int = 1, dtype: str = "float64") -> None:
        self.scale = scale
        self.dtype = dtype

    def fit(self, X: Any, y: Any) -> Self:
        self.y_seen_ = np.array(y, dtype=np.float64)  # a copy: what y held at fit time
        return self

    def predict(self, X: Any) -> np.ndarray:
        pred = (self.scale * np.asarray(X, dtype=np.float64)[:, 0]).astype(self.dtype)
        self.last_ = pred  # the caller gets this very array
        return self.last_


def _x(n: int = 6) -> np.ndarray:
    return np.column_stack([np.arange(n, dtype=np.float64), np.ones(n)])


def test_each_model_sees_y_minus_the_fitted_ones_before_it() -> None:
    X = _x()
    y = np.array([1.0, 4.0, 2.0, 8.0, 5.0, 7.0])
    chain = ResidualRegressor(
        [("a", Recorder(2)), ("b", Recorder(3, dtype="int64")), ("c", Recorder(5))]
    ).fit(X, y)
    a, b, c = chain.estimators_
    x0 = X[:, 0]
    np.testing.assert_array_equal(a.y_seen_, y)
    np.testing.assert_array_equal(b.y_seen_, y - 2 * x0)
    np.testing.assert_array_equal(c.y_seen_, y - 2 * x0 - 3 * x0)
    assert chain.named_estimators_ == {"a": a, "b": b, "c": c}
    assert [type(m) for m in chain.estimators_] == [Recorder] * 3
    assert all(
        m is not orig for m, (_, orig) in zip(chain.estimators_, chain.estimators, strict=True)
    )
    assert not hasattr(chain.estimators[0][1], "y_seen_")  # the given models stay unfitted


def test_prediction_is_the_float_sum_and_leaves_the_models_arrays_alone() -> None:
    X = _x()
    y = np.zeros(6)
    # the first model predicts integers: the sum must still be floats (x0 / 2 is not whole)
    chain = ResidualRegressor(
        [("a", Recorder(3, dtype="int64")), ("b", LinearRegression()), ("c", Recorder(1))]
    ).fit(X, y + 0.5 * X[:, 0])
    first = chain.estimators_[0]
    pred = chain.predict(X)
    line = chain.estimators_[1].predict(X)
    assert pred.dtype == np.float64
    np.testing.assert_allclose(pred, 3 * X[:, 0] + line + X[:, 0], atol=1e-12)
    np.testing.assert_array_equal(first.last_, 3 * X[:, 0].astype(np.int64))
    np.testing.assert_array_equal(chain.predict(X), pred)  # no state carried between calls

    only = ResidualRegressor([("a", Recorder(2))]).fit(X, y)
    out = only.predict(X)
    np.testing.assert_array_equal(out, 2 * X[:, 0])
    assert out is not only.estimators_[0].last_  # a new array, not the model's own


def test_predictions_of_any_numeric_array_type_are_read_as_floats() -> None:
    # an object array of numbers (as a wrapped table may give) cannot be added into a float
    # array in place unless it is read as float64 first
    X = _x()
    y = np.array([1.0, 4.0, 2.0, 8.0, 5.0, 7.0])
    chain = ResidualRegressor(
        [("a", Recorder(2)), ("b", Recorder(3, dtype="object")), ("c", Recorder(1, "object"))]
    ).fit(X, y)
    np.testing.assert_array_equal(chain.estimators_[2].y_seen_, y - 5 * X[:, 0])
    pred = chain.predict(X)
    assert pred.dtype == np.float64
    np.testing.assert_array_equal(pred, 6 * X[:, 0])


def test_fit_leaves_the_callers_y_as_it_was() -> None:
    X = _x()
    y = np.array([1.0, 4.0, 2.0, 8.0, 5.0, 7.0])
    kept = y.copy()
    ResidualRegressor([("a", Recorder(2)), ("b", Recorder(1))]).fit(X, y)
    np.testing.assert_array_equal(y, kept)


def test_predict_before_fit_is_refused() -> None:
    with pytest.raises(
        NotFittedError,
        match=whole("this ResidualRegressor instance is not fitted yet; call 'fit' first"),
    ):
        ResidualRegressor([("a", Recorder())]).predict(_x())


@pytest.mark.parametrize(
    ("y", "message"),
    [
        ([1.0, np.nan, 2.0, 3.0, 4.0, 5.0], "y: holds 1 non-finite value(s)"),
        (np.zeros((6, 1)), "y: expected a 1-D array, got shape (6, 1)"),
    ],
)
def test_a_bad_target_is_named_y(y: Any, message: str) -> None:
    with pytest.raises(ValueError, match=whole(message)):
        ResidualRegressor([("a", Recorder())]).fit(_x(), y)


NON_EMPTY = "ResidualRegressor: estimators must be a non-empty list of (name, estimator)"


@pytest.mark.parametrize(
    ("estimators", "message"),
    [
        ([], NON_EMPTY),
        ((), NON_EMPTY),
        ({"a": Recorder()}, NON_EMPTY),
        ("ab", NON_EMPTY),
        (None, NON_EMPTY),
        (
            [("a", Recorder()), ["b", Recorder()]],
            "ResidualRegressor: each estimator must be (name, estimator), got "
            "['b', Recorder(scale=1, dtype='float64')]",
        ),
        (
            [("a", Recorder(), 1)],
            "ResidualRegressor: each estimator must be (name, estimator), got "
            "('a', Recorder(scale=1, dtype='float64'), 1)",
        ),
        ([("a",)], "ResidualRegressor: each estimator must be (name, estimator), got ('a',)"),
        (
            [("a", "b")],
            "ResidualRegressor: each estimator must be (name, estimator), got ('a', 'b')",
        ),
        (
            [("a", Recorder()), ("a", Recorder())],
            "ResidualRegressor estimator names must be unique; 'a' appears twice",
        ),
        (
            [("a__b", Recorder())],
            "ResidualRegressor estimator name 'a__b' must be a non-empty string without '__'",
        ),
    ],
)
def test_bad_estimators_are_refused_in_whole_words(estimators: Any, message: str) -> None:
    with pytest.raises(ValueError, match=whole(message)):
        ResidualRegressor(estimators).fit(_x(), np.zeros(6))


def test_a_tuple_of_pairs_is_accepted() -> None:
    chain = ResidualRegressor((("a", Recorder(2)), ("b", Recorder(1)))).fit(_x(), np.zeros(6))
    np.testing.assert_array_equal(chain.predict(_x()), 3 * _x()[:, 0])
