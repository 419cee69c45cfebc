"""LogisticRegression against scikit-learn on breast cancer (binary), iris and wine (softmax)."""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable
from typing import Any

import joblib
import numpy as np
import pytest
import sklearn.linear_model as sl
from sklearn.datasets import load_breast_cancer, load_iris, load_wine

from model.base import NotFittedError, clone
from model.linear import ConvergenceWarning
from model.logistic import LogisticRegression
from model.metrics import accuracy_score

Data = tuple[np.ndarray, np.ndarray]
LOADERS: list[Callable[..., Any]] = [load_breast_cancer, load_iris, load_wine]


def standardised(loader: Callable[..., Any]) -> Data:
    X, y = loader(return_X_y=True)
    return (X - X.mean(axis=0)) / X.std(axis=0), np.asarray(y)


def sklearn_reference(X: np.ndarray, y: np.ndarray, C: float) -> sl.LogisticRegression:
    return sl.LogisticRegression(C=C, tol=1e-10, max_iter=10_000).fit(X, y)


@pytest.mark.parametrize("loader", LOADERS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("C", [0.1, 1.0, 10.0])
def test_newton_reaches_sklearns_optimum(loader: Callable[..., Any], C: float) -> None:
    X, y = standardised(loader)
    ref = sklearn_reference(X, y, C)
    ours = LogisticRegression(C=C, tol=1e-9).fit(X, y)
    assert ours.n_iter_ < 30  # Newton: a handful of steps
    assert ours.coef_.shape == ref.coef_.shape
    np.testing.assert_allclose(ours.coef_, ref.coef_, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(ours.intercept_, ref.intercept_, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=1e-5)
    np.testing.assert_array_equal(ours.predict(X), ref.predict(X))
    hist = np.array(ours.cost_history_)
    assert np.all(np.diff(hist) <= 0)  # the line search never goes uphill


@pytest.mark.parametrize("loader", LOADERS, ids=lambda f: f.__name__)
def test_gradient_descent_accuracy_within_one_point(loader: Callable[..., Any]) -> None:
    X, y = standardised(loader)
    rng = np.random.default_rng(0)
    test = rng.random(y.shape[0]) < 0.3
    ref = sklearn_reference(X[~test], y[~test], 1.0)
    ours = LogisticRegression(solver="gd", learning_rate=0.5, max_iter=1000, tol=1e-5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours.fit(X[~test], y[~test])
    for part in (~test, test):
        ref_acc = accuracy_score(y[part], ref.predict(X[part]))
        assert abs(ours.score(X[part], y[part]) - ref_acc) <= 0.01


def test_gd_iterates_follow_the_gradient_formula() -> None:
    """Two GD steps by hand: Θ ← Θ - η(X̃ᵀ(σ(X̃Θ) - y)/n + [w; 0]/(Cn))."""
    X, y = standardised(load_breast_cancer)
    X, y = X[:50, :4], y[:50]
    C, eta = 0.5, 0.3
    Xt = np.column_stack([X, np.ones(50)])
    theta = np.zeros(5)
    for _ in range(2):
        p = 1 / (1 + np.exp(-(Xt @ theta)))
        reg = np.r_[theta[:4], 0.0] / (C * 50)
        theta = theta - eta * (Xt.T @ (p - y) / 50 + reg)
    ours = LogisticRegression(C=C, solver="gd", learning_rate=eta, max_iter=2, tol=0.0)
    with pytest.warns(ConvergenceWarning, match="did not converge in 2 iterations"):
        ours.fit(X, y)
    np.testing.assert_allclose(ours.coef_[0], theta[:4], rtol=1e-12)
    assert ours.intercept_[0] == pytest.approx(theta[4], rel=1e-12)


def test_forced_multinomial_on_two_classes_gives_the_same_probabilities() -> None:
    """A softmax over two classes is a sigmoid of the difference of their scores; with the
    penalty on both weight vectors, the sigmoid's w equals w₁ - w₀ at twice the C."""
    X, y = standardised(load_breast_cancer)
    soft = LogisticRegression(C=1.0, multi_class="multinomial", tol=1e-10).fit(X, y)
    sig = LogisticRegression(C=2.0, tol=1e-10).fit(X, y)
    assert soft.coef_.shape == (2, X.shape[1]) and sig.coef_.shape == (1, X.shape[1])
    np.testing.assert_allclose(soft.coef_[1] - soft.coef_[0], sig.coef_[0], atol=1e-6)
    np.testing.assert_allclose(soft.predict_proba(X), sig.predict_proba(X), atol=1e-7)


def test_labels_of_any_dtype_and_without_intercept() -> None:
    X, y = standardised(load_iris)
    names = np.array(["setosa", "versicolor", "virginica"], dtype=object)[y]
    ours = LogisticRegression(fit_intercept=False).fit(X, names)
    ref = sl.LogisticRegression(fit_intercept=False, tol=1e-10, max_iter=10_000).fit(X, names)
    assert list(ours.classes_) == list(ref.classes_)
    assert ours.predict(X).dtype == object
    np.testing.assert_array_equal(ours.predict(X), ref.predict(X))
    np.testing.assert_allclose(ours.coef_, ref.coef_, atol=1e-4)
    assert np.all(ours.intercept_ == 0.0)
    proba = ours.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    # decision scores of -1/+1 labels: the sigmoid models the larger label, +1
    yb = np.where(standardised(load_breast_cancer)[1] == 1, 1, -1)
    Xb = standardised(load_breast_cancer)[0]
    m = LogisticRegression().fit(Xb, yb)
    assert list(m.classes_) == [-1, 1]
    np.testing.assert_allclose(
        m.predict_proba(Xb)[:, 1], 1 / (1 + np.exp(-m.decision_function(Xb)))
    )


def test_extreme_scores_do_not_overflow() -> None:
    X = np.array([[-1.0], [-0.5], [0.5], [1.0]]) * 1e3  # separable and unscaled
    y = np.array([0, 0, 1, 1])
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        m = LogisticRegression(C=1e6).fit(X, y)
        p = m.predict_proba(np.array([[-1e6], [1e6]]))
    np.testing.assert_array_equal(p, [[1.0, 0.0], [0.0, 1.0]])


def test_bad_input_is_refused_clearly() -> None:
    X, y = standardised(load_iris)
    m = LogisticRegression()
    with pytest.raises(NotFittedError, match="not fitted yet"):
        m.predict(X)
    with pytest.raises(ValueError, match="at least 2 classes, got only \\[1\\]"):
        m.fit(X[50:60], y[50:60])
    with pytest.raises(ValueError, match="different numbers of samples"):
        m.fit(X, y[:-1])
    with pytest.raises(ValueError, match="expected a 2-D array"):
        m.fit(X[:, 0], y)
    with pytest.raises(ValueError, match="at least 1 sample"):
        m.fit(X[:0], y[:0])
    with pytest.raises(ValueError, match="y: holds missing"):
        m.fit(X, np.where(y == 2, np.nan, y))
    X_bad = X.copy()
    X_bad[4, 2] = np.nan
    with pytest.raises(ValueError, match="column 2 holds missing or infinite"):
        m.fit(X_bad, y)
    m.fit(X, y)
    with pytest.raises(ValueError, match="X has 3 features, but LogisticRegression was fitted"):
        m.predict(X[:, :3])
    with pytest.raises(ValueError, match="C must be > 0"):
        LogisticRegression(C=0.0).fit(X, y)
    with pytest.raises(ValueError, match="solver must be"):
        LogisticRegression(solver="lbfgs").fit(X, y)  # type: ignore[arg-type]


def test_joblib_round_trip_and_clone() -> None:
    X, y = standardised(load_wine)
    est = LogisticRegression(C=0.5)
    fitted = clone(est).fit(X, y)
    buf = io.BytesIO()
    joblib.dump(fitted, buf)
    buf.seek(0)
    again = joblib.load(buf)
    np.testing.assert_array_equal(again.predict_proba(X), fitted.predict_proba(X))
    assert again.get_params() == est.get_params()
    assert not hasattr(clone(fitted), "coef_")
