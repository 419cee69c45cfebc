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
    Armijo's J₀ + 10⁻⁴·t·∇J₀·δ; the gradient and P stay the real ones. Starts from Θ = 0, so a
    trial point is exactly t·δ."""

    def __init__(self, script: Any) -> None:
        super().__init__(max_iter=1, tol=0.0)
        self.script = script
        self.trials: list[float] = []

    def _objective(self, theta: Any, X1: Any, Y: Any, mask: Any) -> Any:
        J, g, P = super()._objective(theta, X1, Y, mask)
        if not np.any(theta):  # the start
            self.start = J, g
            return J, g, P
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
        warnings.simplefilter("ignore", RuntimeWarning)  # NumPy's overflow on the way
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
