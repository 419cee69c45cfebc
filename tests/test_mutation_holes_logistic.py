"""model.logistic: what mutation testing found the other tests let through (issue 20).

Each hyperparameter is refused with an error that names it, the range it must lie in and the
value given, and the boundary values of each range are accepted or refused as that range says.
"""

from __future__ import annotations

import os
import re
import warnings
from typing import Any

import numpy as np
import pytest
from scipy.special import logsumexp, softmax
from sklearn.datasets import load_breast_cancer, load_iris

from model.linear import ConvergenceWarning
from model.logistic import LogisticRegression

X = np.array([[-2.0], [-1.0], [0.5], [1.0], [2.0], [-0.5]])
Y = np.array([0, 0, 1, 1, 1, 0])


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"C": 0.0}, "C must be > 0, got 0.0"),
        ({"C": -1.0}, "C must be > 0, got -1.0"),
        ({"C": float("nan")}, "C must be > 0, got nan"),
        ({"solver": "lbfgs"}, "solver must be 'newton' or 'gd', got 'lbfgs'"),
        ({"learning_rate": 0.0}, "learning_rate must be > 0, got 0.0"),
        ({"max_iter": 0}, "max_iter must be a positive integer, got 0"),
        ({"max_iter": 2.5}, "max_iter must be a positive integer, got 2.5"),
        ({"tol": -1e-9}, "tol must be >= 0, got -1e-09"),
        ({"tol": float("nan")}, "tol must be >= 0, got nan"),
        (
            {"multi_class": "ovr"},
            "multi_class must be 'auto' or 'multinomial', got 'ovr'",
        ),
    ],
)
def test_each_hyperparameter_is_refused_by_name(params: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        LogisticRegression(**params).fit(X, Y)


@pytest.mark.parametrize(
    "params",
    [{"max_iter": 1}, {"tol": 0.0}, {"C": 1e-300}, {"solver": "gd", "learning_rate": 1e-300}],
)
def test_the_edges_of_each_range_are_accepted(params: dict[str, Any]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # one step may not converge: that is not the point
        model = LogisticRegression(**{"max_iter": 1, **params}).fit(X, Y)
    assert model.coef_.shape == (1, 1)


@pytest.mark.parametrize("solver", ["newton", "gd"])
def test_n_iter_counts_the_steps_taken(solver: str) -> None:
    with pytest.warns(ConvergenceWarning, match=r"did not converge in 1 iterations"):
        one = LogisticRegression(solver=solver, max_iter=1, tol=0.0).fit(X, Y)  # type: ignore[arg-type]
    assert one.n_iter_ == 1 and len(one.cost_history_) == 2  # J before and after the one step
    assert one.cost_history_[1] < one.cost_history_[0]
    full = LogisticRegression(solver=solver, C=0.5, tol=1e-6).fit(X, Y)  # type: ignore[arg-type]
    assert full.n_iter_ == len(full.cost_history_) - 1 >= 2


def test_a_singular_newton_system_falls_back_to_least_squares(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rng = np.random.default_rng(0)
    Xm = rng.normal(size=(60, 3))
    ym = np.argmax(Xm @ rng.normal(size=(3, 3)) + rng.normal(size=(60, 3)), axis=1)
    expected = LogisticRegression(C=2.0, tol=1e-10).fit(Xm, ym)

    def singular(*args: Any, **kwargs: Any) -> None:
        raise np.linalg.LinAlgError("Singular matrix")

    monkeypatch.setattr(np.linalg, "solve", singular)
    got = LogisticRegression(C=2.0, tol=1e-10).fit(Xm, ym)
    np.testing.assert_allclose(got.coef_, expected.coef_, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(got.intercept_, expected.intercept_, rtol=1e-8, atol=1e-10)
    assert got.n_iter_ == expected.n_iter_


def test_the_least_squares_fallback_is_not_used_when_the_system_is_solvable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def unused(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("lstsq called on a solvable Newton system")

    monkeypatch.setattr(np.linalg, "lstsq", unused)
    assert LogisticRegression(multi_class="multinomial").fit(X, Y).n_iter_ >= 1


@pytest.mark.parametrize("loader", [load_breast_cancer, load_iris], ids=lambda f: f.__name__)
def test_newton_stops_at_the_first_step_that_lowers_j_by_rounding_only(loader: Any) -> None:
    Xd, yd = loader(return_X_y=True)
    Xd = (Xd - Xd.mean(axis=0)) / Xd.std(axis=0)
    model = LogisticRegression(tol=0.0).fit(Xd, yd)  # tol 0: the gradient test never stops it
    J = np.array(model.cost_history_)
    drops = J[:-1] - J[1:]
    assert drops[-1] <= 1e-15 * abs(J[-2])
    assert np.all(drops[:-1] > 1e-15 * np.abs(J[:-2]))
    assert model.n_iter_ == len(drops) < 20


class Scripted(LogisticRegression):
    """J at the line search's trial points is ``script(trial, t, bound)``, where ``bound`` is
    Armijo's J₀ + 10⁻⁴·t·∇J₀·δ; P stays the real one. Starts from Θ = 0, so a trial point of the
    first step is exactly t·δ. ``start`` replaces J at Θ = 0 and ``g_scale`` scales every
    gradient (and so δ)."""

    def __init__(
        self, script: Any, max_iter: int = 1, start: float | None = None, g_scale: float = 1.0
    ) -> None:
        super().__init__(max_iter=max_iter, tol=0.0)
        self.script, self.start_J, self.g_scale = script, start, g_scale
        self.trials: list[float] = []

    def _objective(self, theta: Any, X1: Any, Y: Any, mask: Any) -> Any:
        J, g, P = super()._objective(theta, X1, Y, mask)
        g = g * self.g_scale
        if not np.any(theta):  # the start
            self.start = (J if self.start_J is None else self.start_J), g
            return self.start[0], g, P
        if not self.trials:
            self.delta = theta.copy()  # t = 1
        i = int(np.argmax(np.abs(self.delta)))
        t = float(theta.flat[i] / self.delta.flat[i])
        self.trials.append(t)
        J0, g0 = self.start
        slope = float(np.sum(g0 * self.delta))
        return self.script(len(self.trials), t, J0 + 1e-4 * t * slope), g, P


def scripted_fit(script: Any) -> Scripted:
    model = Scripted(script)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # max_iter=1, tol=0
        return model.fit(X, Y)


def test_the_line_search_halves_t_fifty_times_then_gives_up() -> None:
    model = scripted_fit(lambda trial, t, bound: 1e9)  # no trial point lowers J
    assert model.trials == [0.5**k for k in range(50)]
    assert model.n_iter_ == 0 and len(model.cost_history_) == 1  # no step taken
    np.testing.assert_array_equal(model.coef_, 0.0)


def test_a_step_exactly_at_armijos_bound_is_taken() -> None:
    model = scripted_fit(lambda trial, t, bound: bound if trial == 1 else 1e9)
    assert model.trials == [1.0] and model.n_iter_ == 1
    assert model.cost_history_[1] == model.start[0] + 1e-4 * float(
        np.sum(model.start[1] * model.delta)
    )
    np.testing.assert_array_equal(model.coef_, model.delta[:1].T)


def test_armijos_bound_shrinks_with_t() -> None:
    def script(trial: int, t: float, bound: float) -> float:
        if trial == 1:
            return float(model.start[0])  # no decrease at t = 1: refused
        return bound if trial == 2 else 1e9  # exactly the bound at t = 1/2: taken

    model = Scripted(script)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, Y)
    assert model.trials == [1.0, 0.5] and model.n_iter_ == 1
    np.testing.assert_array_equal(model.coef_, 0.5 * model.delta[:1].T)


def test_divergence_names_the_iteration_and_the_learning_rate() -> None:
    message = "gd diverged at iteration 1; lower learning_rate (now 1e+308) or standardise X"
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # the error alone, no overflow warnings
        with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
            LogisticRegression(solver="gd", learning_rate=1e308).fit(X * 1e10, Y)


def test_the_convergence_warning_is_whole_and_points_at_the_caller() -> None:
    message = (
        "LogisticRegression (newton) did not converge in 1 iterations (max gradient 0.079 > "
        "tol 0.0); raise max_iter or standardise X"
    )
    with pytest.warns(ConvergenceWarning, match="^" + re.escape(message) + "$") as caught:
        LogisticRegression(max_iter=1, tol=0.0).fit(X, Y)
    if "MUTANT_UNDER_TEST" not in os.environ:  # mutmut's trampoline adds frames
        assert [w.filename for w in caught] == [__file__]


def test_a_step_that_lowers_j_by_more_than_rounding_does_not_stop_newton() -> None:
    # J₀ = 1/2 and a step that lowers it by 10⁻¹⁵ > 10⁻¹⁵·|J₀|: not a stall, so Newton goes on
    # (and its second line search, refused throughout, ends the fit). A tiny gradient keeps
    # Armijo's bound below such a small decrease.
    def script(trial: int, t: float, bound: float) -> float:
        return 0.5 - 1e-15 if trial == 1 else 1e9

    model = Scripted(script, max_iter=3, start=0.5, g_scale=1e-20)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, Y)
    assert model.n_iter_ == 1 and len(model.trials) == 1 + 50


def test_defaults() -> None:
    assert LogisticRegression().get_params() == {
        "C": 1.0,
        "solver": "newton",
        "learning_rate": 0.1,
        "max_iter": 1000,
        "tol": 1e-6,
        "fit_intercept": True,
        "multi_class": "auto",
    }


@pytest.mark.parametrize("K", [1, 3])
def test_the_objective_and_its_gradient_far_from_zero(K: int) -> None:
    rng = np.random.default_rng(K)
    n, d = 40, 3
    X1 = np.column_stack([rng.normal(size=(n, d)), np.ones(n)])
    theta = rng.normal(size=(d + 1, K)) * 300.0  # |z| in the hundreds: exp would overflow
    mask = np.ones_like(theta)
    mask[-1] = 0.0
    code = rng.integers(0, max(K, 2), size=n)
    model = LogisticRegression(C=0.7)
    Z = X1 @ theta
    if K == 1:
        Y = (code == 1).astype(np.float64)[:, None]
        Zfull, Yfull = np.column_stack([np.zeros(n), Z]), np.column_stack([1 - Y, Y])
    else:
        Y = np.eye(K)[code]
        Zfull, Yfull = Z, Y
    loss = logsumexp(Zfull, axis=1) - np.sum(Zfull * Yfull, axis=1)
    penalty = float(np.sum(mask * theta**2)) / (2 * 0.7 * n)
    P = softmax(Zfull, axis=1)[:, 1:] if K == 1 else softmax(Zfull, axis=1)
    J, g, P_got = model._objective(theta, X1, Y, mask)
    assert np.isfinite(J) and pytest.approx(loss.mean() + penalty, rel=1e-12) == J
    np.testing.assert_allclose(P_got, P, rtol=1e-12, atol=1e-300)
    grad = X1.T @ (P - Y) / n + mask * theta / (0.7 * n)
    np.testing.assert_allclose(g, grad, rtol=1e-10, atol=1e-12)


def test_probabilities_of_rows_far_apart() -> None:
    model = LogisticRegression(multi_class="multinomial").fit(X, Y)
    far = np.array([[1e4], [-1e4], [0.0]])  # decision values of opposite signs in the thousands
    P = model.predict_proba(far)
    assert np.all(np.isfinite(P))
    np.testing.assert_allclose(P.sum(axis=1), 1.0)
    np.testing.assert_allclose(P, softmax(model.decision_function(far), axis=1), rtol=1e-12)
    assert model.predict(far).tolist() == [1, 0, model.predict(far[2:])[0]]


def test_labels_that_cannot_be_sorted_are_refused() -> None:
    y = np.array([1, "a", 1, "a", 1, "a"], dtype=object)
    message = "y: labels cannot be sorted: '<' not supported between instances of 'str' and 'int'"
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        LogisticRegression().fit(X, y)


def test_a_gradient_exactly_at_tol_has_converged() -> None:
    model = LogisticRegression()
    X1 = np.column_stack([X, np.ones(len(X))])
    mask = np.array([[1.0], [0.0]])
    _, g, _ = model._objective(np.zeros((2, 1)), X1, Y[:, None].astype(float), mask)
    at_start = LogisticRegression(tol=float(np.max(np.abs(g)))).fit(X, Y)
    assert at_start.n_iter_ == 0
    np.testing.assert_array_equal(at_start.coef_, 0.0)
