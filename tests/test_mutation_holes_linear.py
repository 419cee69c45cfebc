"""model.linear: the rules mutation testing found unchecked (issue 20).

The normal equations' rank test is relative (a negligible pivot is negligible whatever the
unit of X), fitting from sufficient statistics is fitting, and an estimator whose fit failed is
not fitted.
"""

from __future__ import annotations

import re
import warnings
from typing import Any

import numpy as np
import pytest

import model.linear as linear
from model.base import NotFittedError
from model.linear import (
    ConvergenceWarning,
    ElasticNet,
    Lasso,
    LinearRegression,
    Ridge,
    solve_normal_equations,
    sufficient_stats,
)

FloatArray = np.ndarray
UNITS = [1e-40, 1e-10, 1e-3, 1.0, 1e10, 1e40]  # the scale of G: X's unit squared


def well_posed(d: int = 4) -> tuple[FloatArray, FloatArray]:
    """A well-conditioned G = XcᵀXc and q from seeded data."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(60, d))
    Xc = X - X.mean(axis=0)
    return Xc.T @ Xc, Xc.T @ rng.normal(size=60)


@pytest.fixture
def lstsq_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the fallbacks to ``np.linalg.lstsq`` (the minimum-norm solution)."""
    calls: list[int] = []
    real = np.linalg.lstsq

    def spy(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(linear.np.linalg, "lstsq", spy)
    return calls


def test_normal_equations_default_to_no_penalty() -> None:
    G, q = well_posed()
    np.testing.assert_allclose(solve_normal_equations(G, q), np.linalg.solve(G, q), rtol=1e-10)


def test_empty_system_has_the_empty_solution() -> None:
    w = solve_normal_equations(np.zeros((0, 0)), np.zeros(0))
    assert w.shape == (0,)


@pytest.mark.parametrize("unit", UNITS)
def test_full_rank_system_is_solved_by_cholesky_in_any_unit(
    unit: float, lstsq_calls: list[int]
) -> None:
    G, q = well_posed()
    w = solve_normal_equations(unit * G, unit * q)
    np.testing.assert_allclose(w, np.linalg.solve(G, q), rtol=1e-9)
    assert lstsq_calls == []  # the rank test does not depend on the unit


@pytest.mark.parametrize("unit", UNITS)
def test_negligible_pivot_falls_back_to_min_norm_in_any_unit(
    unit: float, lstsq_calls: list[int]
) -> None:
    """A pivot² of 1e-20 relative to the diagonal is rounding noise, in any unit: the answer
    is the minimum-norm one (that direction dropped), not q/pivot² (a huge weight)."""
    G = unit * np.diag([1.0, 1e-20])
    q = unit * np.array([1.0, 1.0])
    np.testing.assert_allclose(solve_normal_equations(G, q), [1.0, 0.0], atol=1e-12)
    assert lstsq_calls == [1]


def test_pivot_exactly_at_the_cutoff_counts_as_negligible(lstsq_calls: list[int]) -> None:
    """Cholesky is kept only when min pivot² > d·scale·1e-13; here pivot² equals it exactly
    (pivot 2⁻²⁰, scale chosen so that 2·scale·1e-13 rounds to 2⁻⁴⁰)."""
    scale, pivot = 4.547473508864641, 2.0**-20
    assert 2 * scale * 1e-13 == pivot**2
    solve_normal_equations(np.diag([scale, pivot**2]), np.ones(2))
    assert lstsq_calls == [1]


def uncentred(seed: int) -> tuple[FloatArray, FloatArray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(120, 3)) * [1.0, 3.0, 0.5] + [5.0, -2.0, 10.0]
    y = X @ [1.5, -0.5, 2.0] + 4.0 + rng.normal(0, 0.1, 120)
    return X, y


@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize(
    "est",
    [
        LinearRegression(),
        Ridge(alpha=2.0),
        LinearRegression(solver="gd", learning_rate=0.01, n_epochs=50, tol=None),
    ],
    ids=["normal", "ridge", "gd"],
)
def test_fit_stats_is_fit(est: LinearRegression, fit_intercept: bool) -> None:
    X, y = uncentred(4)
    if est.solver == "gd":
        X = (X - X.mean(axis=0)) / X.std(axis=0)
    est.set_params(fit_intercept=fit_intercept)
    a = est.fit(X, y)
    coef, intercept, history = a.coef_.copy(), a.intercept_, list(a.cost_history_)
    b = est.fit_stats(sufficient_stats(X, y, fit_intercept))
    np.testing.assert_allclose(b.coef_, coef, rtol=1e-12)
    assert b.intercept_ == pytest.approx(intercept, rel=1e-12, abs=1e-12)
    np.testing.assert_allclose(b.cost_history_, history, rtol=1e-12)
    assert b.n_features_in_ == 3


def test_fit_stats_refuses_sgd() -> None:
    X, y = uncentred(5)
    message = "^solver='sgd' draws mini-batches of rows; it cannot fit from sums$"
    with pytest.raises(ValueError, match=message):
        LinearRegression(solver="sgd").fit_stats(sufficient_stats(X, y, True))


def test_a_fit_stopped_by_its_warning_leaves_the_estimator_unfitted() -> None:
    """With warnings as errors, a coordinate descent that does not converge raises before it
    sets ``coef_``; ``predict`` then says "not fitted", not an AttributeError."""
    X, y = uncentred(6)
    est = ElasticNet(alpha=0.01, max_iter=1, tol=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        with pytest.raises(ConvergenceWarning):
            est.fit(X, y)
    with pytest.raises(NotFittedError, match="not fitted yet"):
        est.predict(X)


@pytest.mark.parametrize("est", [LinearRegression(), Ridge(), ElasticNet()], ids=repr)
def test_predict_names_the_estimator_and_both_feature_counts(est: Any) -> None:
    X, y = uncentred(7)
    est.fit(X, y)
    name = type(est).__name__
    with pytest.raises(ValueError, match=f"^X has 2 features, but {name} was fitted with 3$"):
        est.predict(X[:, :2])


def test_ridge_defaults_are_linear_regressions_plus_alpha_one() -> None:
    """Ridge() is LinearRegression() with scikit-learn's default penalty α = 1."""
    assert Ridge().get_params() == {"alpha": 1.0, **LinearRegression().get_params()}


def test_ridge_keeps_every_hyperparameter_it_is_given() -> None:
    given: dict[str, Any] = {
        "alpha": 3.0,
        "solver": "sgd",
        "learning_rate": 0.5,
        "n_epochs": 7,
        "batch_size": 9,
        "tol": 0.25,
        "random_state": 11,
        "fit_intercept": False,
        "verbose": 2,
        "print_every": 13,
    }
    assert Ridge(**given).get_params() == given


def test_gd_runs_exactly_n_epochs_when_not_stopped_early() -> None:
    """Epochs are computed in blocks; the last block is cut to what is left of n_epochs."""
    X, y = uncentred(8)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    est = LinearRegression(solver="gd", learning_rate=0.001, n_epochs=300, tol=None).fit(X, y)
    assert est.n_iter_ == 300 == len(est.cost_history_)


@pytest.mark.parametrize("solver", ["gd", "sgd"])
def test_divergence_is_one_error_without_numpy_warnings(solver: str) -> None:
    """Overflowing iterates are expected on the way to the divergence error; NumPy's
    overflow/invalid RuntimeWarnings are not let out next to it."""
    X, y = uncentred(9)
    est = LinearRegression(solver=solver, learning_rate=50.0, n_epochs=5_000, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match=f"^{solver} diverged at epoch "):
            est.fit(X * 1e3, y)


@pytest.mark.parametrize(("ours", "name"), [(ElasticNet, "ElasticNet"), (Lasso, "Lasso")])
def test_coordinate_descent_defaults_are_scikit_learns(ours: Any, name: str) -> None:
    """Same names, same defaults: a config written for scikit-learn means the same here."""
    import sklearn.linear_model as sl

    mine = ours().get_params()
    theirs = getattr(sl, name)().get_params()
    assert mine == {key: theirs[key] for key in mine}


@pytest.mark.parametrize("l1_ratio", [1.0, 0.3])
@pytest.mark.parametrize(("alpha", "tol"), [(0.05, 1e-4), (0.5, 1e-4), (0.1, 1e-8), (1e-4, 1e-4)])
def test_coordinate_descent_stops_after_scikit_learns_sweeps(
    alpha: float, tol: float, l1_ratio: float
) -> None:
    """The same stopping rule as scikit-learn: the same number of sweeps, and the duality gap
    it certified (ours is for the objective times n, so n times scikit-learn's); with a small α
    the L1 bound n·α·ρ is below 1, which the gap's dual scaling must not round up. A constant
    column (its centred diagonal is 0) is skipped and keeps a zero weight, as there."""
    import sklearn.linear_model as sl
    from sklearn.datasets import load_diabetes

    X, y = load_diabetes(return_X_y=True)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    X = np.c_[X, np.full(len(X), 3.0)]
    kw: dict[str, Any] = {"alpha": alpha, "l1_ratio": l1_ratio, "tol": tol}
    ours = ElasticNet(**kw).fit(X, y)
    ref = sl.ElasticNet(**kw).fit(X, y)
    assert ours.n_iter_ == ref.n_iter_
    assert ours.dual_gap_ / len(y) == pytest.approx(ref.dual_gap_, rel=1e-6)
    assert ours.coef_[-1] == 0.0 == ref.coef_[-1]
    assert rel_err_max(ours.coef_, ref.coef_) < 1e-6


def rel_err_max(a: FloatArray, b: FloatArray) -> float:
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def test_coordinate_descent_with_no_features_fits_the_mean() -> None:
    """Statistics of zero columns (every feature dropped upstream): w is empty, b = ȳ."""
    y = np.array([1.0, 2.0, 6.0])
    yc = y - y.mean()
    stats = linear.SufficientStats(3, np.zeros(0), 3.0, np.zeros((0, 0)), np.zeros(0), yc @ yc)
    est = ElasticNet(alpha=0.5).fit_stats(stats)
    assert est.coef_.shape == (0,) and est.intercept_ == 3.0 and est.dual_gap_ == 0.0


def test_pure_l2_elastic_net_is_the_closed_form_ridge() -> None:
    """l1_ratio = 0 is solved in closed form: no sweeps, a zero gap, Ridge's weights at α·n."""
    X, y = uncentred(10)
    est = ElasticNet(alpha=0.5, l1_ratio=0.0).fit(X, y)
    ridge = Ridge(alpha=0.5 * len(y)).fit(X, y)
    assert est.n_iter_ == 0 and est.dual_gap_ == 0.0 and est.n_features_in_ == 3
    np.testing.assert_allclose(est.coef_, ridge.coef_, rtol=1e-10)
    assert est.intercept_ == pytest.approx(ridge.intercept_, rel=1e-10)


def test_a_constant_column_between_others_is_skipped_not_the_sweep() -> None:
    import sklearn.linear_model as sl

    X, y = uncentred(11)
    X = np.c_[X[:, :1], np.full(len(X), 2.0), X[:, 1:]]
    ours = Lasso(alpha=0.1, tol=1e-10, max_iter=10_000).fit(X, y)
    ref = sl.Lasso(alpha=0.1, tol=1e-10, max_iter=10_000).fit(X, y)
    assert ours.coef_[1] == 0.0
    np.testing.assert_allclose(ours.coef_, ref.coef_, rtol=1e-6, atol=1e-9)


def direct_stats(X: FloatArray, y: FloatArray, fit_intercept: bool) -> tuple[Any, ...]:
    """The statistics written out in one pass, no blocks."""
    x_mean = X.mean(axis=0) if fit_intercept else np.zeros(X.shape[1])
    y_mean = float(y.mean()) if fit_intercept else 0.0
    Xc, yc = X - x_mean, y - y_mean
    return len(y), x_mean, y_mean, Xc.T @ Xc, Xc.T @ yc, float(yc @ yc)


@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("block", [6, 7, 2, 2**20])  # rows per block: 2, 2, 1 (floor), all
def test_sufficient_stats_in_blocks_are_the_one_pass_statistics(
    fit_intercept: bool, block: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Any block size, the last block short or not: every row counted exactly once."""
    monkeypatch.setattr(linear, "_BLOCK_ELEMENTS", block)
    rng = np.random.default_rng(12)
    X = rng.normal(loc=[5.0, -3.0, 40.0], size=(7, 3))
    y = rng.normal(loc=100.0, size=7)
    s = sufficient_stats(X, y, fit_intercept)
    n, x_mean, y_mean, G, q, yy = direct_stats(X, y, fit_intercept)
    assert s.n == n and isinstance(s.n, int)
    np.testing.assert_allclose(s.x_mean, x_mean, rtol=1e-12)
    assert s.y_mean == pytest.approx(y_mean, rel=1e-12) and isinstance(s.y_mean, float)
    np.testing.assert_allclose(s.G, G, rtol=1e-10)
    np.testing.assert_allclose(s.q, q, rtol=1e-10)
    assert s.yy == pytest.approx(yy, rel=1e-10) and isinstance(s.yy, float)
    assert s.G.shape == (3, 3) and s.q.shape == (3,) and s.x_mean.shape == (3,)


def test_sufficient_stats_refuse_x_with_no_columns_by_name() -> None:
    """Zero columns would divide the block size by zero: say what is wrong with X instead."""
    for fit_intercept in (True, False):
        with pytest.raises(
            ValueError, match=r"^X: expected at least one feature, got shape \(4, 0\)$"
        ):
            sufficient_stats(np.zeros((4, 0)), np.ones(4), fit_intercept)


@pytest.mark.parametrize(
    ("est", "message"),
    [
        (ElasticNet(alpha=-0.5), "alpha must be >= 0, got -0.5"),
        (Lasso(alpha=float("nan")), "alpha must be >= 0, got nan"),
        (ElasticNet(l1_ratio=-0.25), "l1_ratio must be in [0, 1], got -0.25"),
        (ElasticNet(l1_ratio=1.5), "l1_ratio must be in [0, 1], got 1.5"),
        (ElasticNet(max_iter=2.5), "max_iter must be a positive integer, got 2.5"),  # type: ignore[arg-type]
        (Lasso(max_iter=0), "max_iter must be a positive integer, got 0"),
        (ElasticNet(tol=-1e-3), "tol must be >= 0, got -0.001"),
        (Lasso(tol=float("nan")), "tol must be >= 0, got nan"),
    ],
)
def test_elastic_net_hyperparameters_are_refused_whole(est: ElasticNet, message: str) -> None:
    X, y = uncentred(20)
    for fit in (lambda: est.fit(X, y), lambda: est.fit_stats(sufficient_stats(X, y, True))):
        with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
            fit()


def test_elastic_net_bounds_are_inclusive() -> None:
    """alpha = 0 is least squares, l1_ratio 0 and 1 are allowed, tol = 0 runs to a zero gap."""
    import sklearn.linear_model as sl

    X, y = uncentred(21)
    ols = LinearRegression().fit(X, y)
    est = ElasticNet(alpha=0.0).fit(X, y)
    np.testing.assert_allclose(est.coef_, ols.coef_, rtol=1e-9)
    for rho in (0.0, 1.0):
        ElasticNet(alpha=0.1, l1_ratio=rho).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = Lasso(alpha=0.1, tol=0.0, max_iter=30).fit(X, y)
        ref = sl.Lasso(alpha=0.1, tol=0.0, max_iter=30).fit(X, y)
    assert rel_err_max(ours.coef_, ref.coef_) < 1e-8  # sweeps differ: rounding decides 0 gaps


def test_a_sweep_that_changes_nothing_checks_the_gap_even_at_tol_zero() -> None:
    """scikit-learn's rule: the gap is computed when the largest update is <= tol times the
    largest weight; with tol = 0, a sweep that changes nothing stops on an exact zero gap."""
    import sklearn.linear_model as sl

    X, y = np.array([[-1.0], [1.0]]), np.array([-3.0, 3.0])  # w = 2, a gap of exactly 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ours = Lasso(alpha=1.0, tol=0.0, max_iter=50).fit(X, y)
    ref = sl.Lasso(alpha=1.0, tol=0.0, max_iter=50).fit(X, y)
    assert ours.n_iter_ == ref.n_iter_ == 2
    assert ours.dual_gap_ == 0.0 == ref.dual_gap_ and ours.coef_[0] == 2.0


def test_all_zero_weights_stop_on_a_zero_gap_even_at_tol_zero() -> None:
    """An L1 bound that zeroes every weight: the gap is exactly 0 <= 0 after one sweep."""
    X, y = uncentred(22)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        est = Lasso(alpha=1e6, tol=0.0, max_iter=20).fit(X, y)
    assert est.n_iter_ == 1 and est.dual_gap_ == 0.0 and not est.coef_.any()


def test_not_converging_warns_whole_at_the_callers_line_with_the_last_gap() -> None:
    X, y = uncentred(23)
    X = np.c_[X, X[:, 0] + 1e-3 * X[:, 1]]  # nearly collinear: slow coordinate descent
    s = sufficient_stats(X, y, True)
    est = ElasticNet(alpha=1e-4, l1_ratio=0.7, tol=1e-12, max_iter=3)
    with pytest.warns(ConvergenceWarning) as caught:
        est.fit_stats(s)
    assert len(caught) == 1
    warning = caught[0]
    assert warning.filename != linear.__file__  # stacklevel 2: fit_stats' caller
    l1, l2 = 1e-4 * 0.7 * s.n, 1e-4 * 0.3 * s.n
    gap = linear._duality_gap(est.coef_, s.G @ est.coef_, s.q, s.yy, l1, l2)
    assert est.n_iter_ == 3 and est.dual_gap_ == pytest.approx(gap, rel=1e-9, abs=1e-12)
    assert np.isfinite(est.dual_gap_) and est.dual_gap_ > 1e-12 * s.yy
    assert str(warning.message) == (
        f"ElasticNet did not converge in 3 iterations (duality gap {est.dual_gap_:.3g} > "
        f"{1e-12 * s.yy:.3g}); raise max_iter or standardise X"
    )
    with pytest.warns(ConvergenceWarning, match=r"^Lasso did not converge in 2 iterations "):
        Lasso(alpha=1e-4, tol=1e-12, max_iter=2).fit_stats(s)


def test_the_normal_solver_ignores_the_descent_settings() -> None:
    """learning_rate, n_epochs, batch_size, tol and print_every belong to gd/sgd: the normal
    equations neither use nor check them (a grid may share one setting across solvers)."""
    X, y = uncentred(24)
    odd: dict[str, Any] = dict(learning_rate=-1.0, n_epochs=0, batch_size=0, tol=-1.0)
    est = LinearRegression(solver="normal", print_every=0, **odd).fit(X, y)
    np.testing.assert_allclose(est.coef_, LinearRegression().fit(X, y).coef_, rtol=1e-12)
    with pytest.raises(ValueError, match=r"^learning_rate must be > 0, got -1\.0$"):
        LinearRegression(solver="gd", print_every=0, **odd).fit(X, y)


def test_descent_stops_at_the_first_epoch_whose_cost_did_not_fall_by_more_than_tol() -> None:
    """The rule is relative (the same epochs in any unit of y), inclusive (an unchanged cost
    stops at tol = 0) and checked from epoch 2 on."""
    rng = np.random.default_rng(25)
    X = rng.normal(size=(50, 2))
    y = X @ [1.0, 2.0] + 5.0 + rng.normal(0, 0.1, 50)
    runs = [
        LinearRegression(solver="gd", tol=1e-3, n_epochs=5000, learning_rate=0.1).fit(X, s * y)
        for s in (1.0, 1e3, 1e-3)
    ]
    assert runs[0].n_iter_ == runs[1].n_iter_ == runs[2].n_iter_ == 38
    assert LinearRegression(solver="gd", tol=1.0, n_epochs=100).fit(X, y).n_iter_ == 2
    # a constant column and target: epoch 1 already fits exactly, epoch 2 changes nothing
    est = LinearRegression(solver="gd", tol=0.0, n_epochs=3000, learning_rate=0.25)
    est.fit(np.ones((5, 1)), np.full(5, 3.0))
    assert est.n_iter_ == 2 and est.cost_history_ == [0.0, 0.0]
    np.testing.assert_array_equal(est.predict(np.ones((2, 1))), [3.0, 3.0])


def test_descent_settings_accept_their_smallest_values_and_refuse_below_whole() -> None:
    X, y = uncentred(26)
    for solver in ("gd", "sgd"):
        est = LinearRegression(
            solver=solver, n_epochs=1, batch_size=1, tol=0.0, print_every=1, random_state=0
        ).fit(X, y)
        assert est.n_iter_ == 1
    bad: list[tuple[dict[str, Any], str]] = [
        ({"n_epochs": 0}, "n_epochs must be a positive integer, got 0"),
        ({"batch_size": 0}, "batch_size must be a positive integer, got 0"),
        ({"tol": -1.0}, "tol must be >= 0 or None, got -1.0"),
        ({"print_every": 0}, "print_every must be a positive integer, got 0"),
        ({"print_every": 2.5}, "print_every must be a positive integer, got 2.5"),
    ]
    for kwargs, message in bad:
        with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
            LinearRegression(solver="gd", **kwargs).fit(X, y)
