"""Linear models against scikit-learn on its diabetes data and seeded synthetic data, the GD
solver against a literal per-row loop, and the input checks."""

from __future__ import annotations

import io
import math
import warnings
from collections.abc import Callable
from typing import Any

import joblib
import numpy as np
import pytest
import sklearn.linear_model as sl
from sklearn.datasets import load_diabetes

from model.base import NotFittedError, clone
from model.linear import (
    ConvergenceWarning,
    ElasticNet,
    Lasso,
    LinearRegression,
    Ridge,
    solve_normal_equations,
)
from model.metrics import r2_score

FloatArray = np.ndarray


@pytest.fixture(scope="module")
def diabetes() -> tuple[FloatArray, FloatArray]:
    X, y = load_diabetes(return_X_y=True)
    return np.asarray(X), np.asarray(y)


@pytest.fixture(scope="module")
def diabetes_std(diabetes: tuple[FloatArray, FloatArray]) -> tuple[FloatArray, FloatArray]:
    X, y = diabetes
    return (X - X.mean(axis=0)) / X.std(axis=0), y


def synthetic(seed: int, n: int = 400, d: int = 6) -> tuple[FloatArray, FloatArray]:
    """Correlated features with large, unequal means and a noisy linear target."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) @ rng.normal(size=(d, d)) + rng.uniform(-50, 50, d)
    y = X @ rng.normal(size=d) + 7.0 + rng.normal(0, 0.5, n)
    return X, y


def rel_err(a: FloatArray, b: FloatArray) -> float:
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


# --------------------------------------------------------------------------- closed form


@pytest.mark.parametrize("fit_intercept", [True, False])
def test_normal_equations_match_sklearn_linear_regression(
    diabetes: tuple[FloatArray, FloatArray], fit_intercept: bool
) -> None:
    X, y = diabetes
    ours = LinearRegression(fit_intercept=fit_intercept).fit(X, y)
    ref = sl.LinearRegression(fit_intercept=fit_intercept).fit(X, y)
    assert rel_err(ours.coef_, ref.coef_) < 1e-6
    assert ours.intercept_ == pytest.approx(ref.intercept_, rel=1e-6, abs=1e-9)
    np.testing.assert_allclose(ours.predict(X), ref.predict(X), rtol=1e-9)
    assert ours.score(X, y) == pytest.approx(ref.score(X, y), rel=1e-9)
    assert ours.n_iter_ == 0 and ours.cost_history_ == []


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("alpha", [1e-3, 1.0, 50.0])
def test_ridge_matches_sklearn(seed: int, alpha: float) -> None:
    X, y = synthetic(seed)
    ours = Ridge(alpha=alpha).fit(X, y)
    ref = sl.Ridge(alpha=alpha).fit(X, y)
    assert rel_err(ours.coef_, ref.coef_) < 1e-6
    assert ours.intercept_ == pytest.approx(ref.intercept_, rel=1e-6)


def test_ridge_on_diabetes_with_and_without_intercept(
    diabetes: tuple[FloatArray, FloatArray],
) -> None:
    X, y = diabetes
    for fit_intercept in (True, False):
        ours = Ridge(alpha=0.1, fit_intercept=fit_intercept).fit(X, y)
        ref = sl.Ridge(alpha=0.1, fit_intercept=fit_intercept).fit(X, y)
        assert rel_err(ours.coef_, ref.coef_) < 1e-6
        assert ours.intercept_ == pytest.approx(ref.intercept_, rel=1e-6, abs=1e-9)


def test_blocked_centring_matches_one_block(monkeypatch: pytest.MonkeyPatch) -> None:
    """The sufficient statistics are summed over row blocks; tiny blocks change nothing."""
    import model.linear as lin

    X, y = synthetic(4, n=1000)
    whole = LinearRegression().fit(X, y)
    monkeypatch.setattr(lin, "_BLOCK_ELEMENTS", 7 * X.shape[1])  # blocks of 7 rows
    blocked = LinearRegression().fit(X, y)
    np.testing.assert_allclose(blocked.coef_, whole.coef_, rtol=1e-9)


def test_collinear_columns_fall_back_to_min_norm_least_squares() -> None:
    """A duplicated column makes XcᵀXc singular: the answer is sklearn's min-norm solution."""
    X, y = synthetic(5, d=3)
    Xdup = np.column_stack([X, X[:, 0]])
    ours = LinearRegression().fit(Xdup, y)
    ref = sl.LinearRegression().fit(Xdup, y)
    assert rel_err(ours.coef_, ref.coef_) < 1e-6
    assert ours.coef_[0] == pytest.approx(ours.coef_[3], rel=1e-6)
    np.testing.assert_allclose(ours.predict(Xdup), ref.predict(Xdup), rtol=1e-8)


def test_cholesky_solve_against_numpy_solve() -> None:
    rng = np.random.default_rng(6)
    A = rng.normal(size=(30, 8))
    G, q = A.T @ A, rng.normal(size=8)
    np.testing.assert_allclose(
        solve_normal_equations(G, q, 0.5), np.linalg.solve(G + 0.5 * np.eye(8), q), rtol=1e-10
    )


# --------------------------------------------------------------------------- gradient descent


def literal_gd(
    X: FloatArray, y: FloatArray, lr: float, epochs: int, alpha: float = 0.0
) -> tuple[FloatArray, float, list[float]]:
    """The article's algorithm, row by row, generalised to d features (the oracle)."""
    n, d = X.shape
    w = [0.0] * d
    b = 0.0
    costs = []
    for _ in range(epochs):
        dw = [0.0] * d
        db = 0.0
        for i in range(n):
            r = y[i] - (sum(w[j] * X[i, j] for j in range(d)) + b)
            for j in range(d):
                dw[j] += -2.0 / n * X[i, j] * r
            db += -2.0 / n * r
        for j in range(d):
            dw[j] += 2.0 * alpha / n * w[j]
            w[j] -= lr * dw[j]
        b -= lr * db
        cost = sum((y[i] - (sum(w[j] * X[i, j] for j in range(d)) + b)) ** 2 for i in range(n))
        costs.append((cost + alpha * sum(v * v for v in w)) / n)
    return np.array(w), b, costs


@pytest.mark.parametrize(("est", "alpha"), [(LinearRegression, 0.0), (Ridge, 3.0)])
def test_gd_iterates_equal_the_literal_loop(est: Callable[..., Any], alpha: float) -> None:
    X, y = synthetic(7, n=40, d=3)
    X = (X - X.mean(axis=0)) / X.std(axis=0) + 2.0  # off-centre, so the intercept matters
    kw: dict[str, Any] = {"alpha": alpha} if alpha else {}
    m = est(solver="gd", learning_rate=0.05, n_epochs=60, tol=None, **kw).fit(X, y)
    w, b, costs = literal_gd(X, y, 0.05, 60, alpha)
    np.testing.assert_allclose(m.coef_, w, rtol=1e-9, atol=1e-12)
    assert m.intercept_ == pytest.approx(b, rel=1e-9)
    np.testing.assert_allclose(m.cost_history_, costs, rtol=1e-9)
    assert m.n_iter_ == 60


def test_gd_converges_to_sklearn_r2(diabetes_std: tuple[FloatArray, FloatArray]) -> None:
    X, y = diabetes_std
    ref = sl.LinearRegression().fit(X, y).score(X, y)
    m = LinearRegression(solver="gd", learning_rate=0.1, n_epochs=20_000).fit(X, y)
    assert m.n_iter_ < 20_000  # stopped on tol
    assert abs(m.score(X, y) - ref) < 1e-4
    hist = np.array(m.cost_history_)
    assert np.all(np.diff(hist) <= 1e-9 * hist[:-1])  # full-batch GD never goes uphill here
    assert hist[-1] == pytest.approx(np.mean((m.predict(X) - y) ** 2), rel=1e-9)


def test_ridge_gd_converges_to_sklearn_ridge(diabetes_std: tuple[FloatArray, FloatArray]) -> None:
    X, y = diabetes_std
    ref = sl.Ridge(alpha=10.0).fit(X, y)
    m = Ridge(alpha=10.0, solver="gd", learning_rate=0.1, n_epochs=20_000).fit(X, y)
    assert abs(m.score(X, y) - ref.score(X, y)) < 1e-4
    assert rel_err(m.coef_, ref.coef_) < 1e-2


def test_sgd_converges_to_sklearn_r2() -> None:
    rng = np.random.default_rng(8)  # well-conditioned: constant-rate SGD converges fast
    X = rng.normal(size=(2000, 5))
    y = X @ rng.normal(size=5) + 60.0 + rng.normal(0, 0.5, 2000)
    ref = sl.LinearRegression().fit(X, y).score(X, y)
    m = LinearRegression(solver="sgd", learning_rate=0.002, n_epochs=100, random_state=0)
    m.fit(X, y)
    assert abs(m.score(X, y) - ref) < 1e-4
    assert len(m.cost_history_) == m.n_iter_


def test_sgd_is_seeded() -> None:
    X, y = synthetic(9, n=300, d=3)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    fit = LinearRegression(solver="sgd", n_epochs=5, tol=None, random_state=1).fit
    a, b = fit(X, y), LinearRegression(solver="sgd", n_epochs=5, tol=None, random_state=1)
    np.testing.assert_array_equal(a.coef_, b.fit(X, y).coef_)
    c = LinearRegression(solver="sgd", n_epochs=5, tol=None, random_state=2).fit(X, y)
    assert not np.array_equal(a.coef_, c.coef_)


def test_sgd_with_one_batch_is_gd() -> None:
    """A batch holding every row makes SGD's step the full gradient."""
    X, y = synthetic(10, n=50, d=2)
    kw: dict[str, Any] = {"learning_rate": 0.001, "n_epochs": 30, "tol": None}
    sgd = LinearRegression(solver="sgd", batch_size=50, random_state=0, **kw).fit(X, y)
    gd = LinearRegression(solver="gd", **kw).fit(X, y)
    np.testing.assert_allclose(sgd.coef_, gd.coef_, rtol=1e-9)
    np.testing.assert_allclose(sgd.cost_history_, gd.cost_history_, rtol=1e-9)


def test_divergence_is_reported() -> None:
    X, y = synthetic(11)
    with pytest.raises(ValueError, match=r"gd diverged at epoch .*lower learning_rate"):
        LinearRegression(solver="gd", learning_rate=1.0, n_epochs=5000).fit(X, y)


def test_verbose_prints_every_k_epochs(capsys: pytest.CaptureFixture[str]) -> None:
    X, y = synthetic(12, n=30, d=2)
    LinearRegression(solver="gd", n_epochs=10, tol=None, verbose=1, print_every=5).fit(X, y)
    lines = capsys.readouterr().out.splitlines()
    assert [ln.split()[1] for ln in lines] == ["5", "10"]


# --------------------------------------------------------------------------- lasso, elastic net


@pytest.mark.parametrize("alpha", [0.05, 0.5, 3.0])
def test_lasso_matches_sklearn(diabetes_std: tuple[FloatArray, FloatArray], alpha: float) -> None:
    X, y = diabetes_std
    ours = Lasso(alpha=alpha, tol=1e-10, max_iter=100_000).fit(X, y)
    ref = sl.Lasso(alpha=alpha, tol=1e-10, max_iter=100_000).fit(X, y)
    np.testing.assert_allclose(
        ours.coef_, ref.coef_, rtol=1e-4, atol=1e-4 * np.abs(ref.coef_).max()
    )
    assert ours.intercept_ == pytest.approx(ref.intercept_, rel=1e-6)
    assert np.array_equal(ours.coef_ == 0, ref.coef_ == 0)  # the same features are dropped


@pytest.mark.parametrize(("alpha", "l1_ratio"), [(0.1, 0.2), (1.0, 0.5), (0.3, 0.9), (0.5, 0.0)])
def test_elastic_net_matches_sklearn(alpha: float, l1_ratio: float) -> None:
    X, y = synthetic(13)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    kw: dict[str, Any] = {"alpha": alpha, "l1_ratio": l1_ratio, "tol": 1e-10, "max_iter": 100_000}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn warns about l1_ratio=0
        ref = sl.ElasticNet(**kw).fit(X, y)
    ours = ElasticNet(**kw).fit(X, y)
    assert rel_err(ours.coef_, ref.coef_) < 1e-4
    assert ours.intercept_ == pytest.approx(ref.intercept_, rel=1e-6)


def test_elastic_net_defaults_converge_on_standardised_data(
    diabetes_std: tuple[FloatArray, FloatArray],
) -> None:
    X, y = diabetes_std
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        ours = ElasticNet().fit(X, y)
        Lasso().fit(X, y)
    assert ours.score(X, y) == pytest.approx(sl.ElasticNet().fit(X, y).score(X, y), abs=1e-4)


def test_coordinate_descent_warns_when_not_converged(
    diabetes_std: tuple[FloatArray, FloatArray],
) -> None:
    X, y = diabetes_std
    with pytest.warns(ConvergenceWarning, match="did not converge in 1 iterations"):
        Lasso(alpha=0.01, max_iter=1, tol=1e-12).fit(X, y)


# --------------------------------------------------------------------------- conventions, errors

ESTIMATORS = [
    LinearRegression(),
    LinearRegression(solver="gd"),
    LinearRegression(solver="sgd", random_state=0),
    Ridge(alpha=2.0),
    Lasso(alpha=0.1),
    ElasticNet(alpha=0.1, l1_ratio=0.3),
]


@pytest.mark.parametrize("est", ESTIMATORS, ids=repr)
def test_bad_input_is_refused_clearly(est: Any) -> None:
    X, y = synthetic(14, n=20, d=3)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    est = clone(est)
    with pytest.raises(NotFittedError, match="not fitted yet"):
        est.predict(X)
    with pytest.raises(ValueError, match="different numbers of samples"):
        est.fit(X, y[:-1])
    with pytest.raises(ValueError, match="expected a 2-D array"):
        est.fit(X[:, 0], y)
    with pytest.raises(ValueError, match="at least 1 sample"):
        est.fit(X[:0], y[:0])
    y_bad = y.copy()
    y_bad[3] = np.nan
    with pytest.raises(ValueError, match="y: holds 1 non-finite"):
        est.fit(X, y_bad)
    X_bad = X.copy()
    X_bad[2, 1] = np.inf
    with pytest.raises(ValueError, match="column 1 holds missing or infinite"):
        est.fit(X_bad, y)
    est.fit(X, y)
    with pytest.raises(ValueError, match=r"X has 2 features, but .* was fitted with 3"):
        est.predict(X[:, :2])


@pytest.mark.parametrize(
    ("est", "match"),
    [
        (LinearRegression(solver="qr"), "solver must be one of"),  # type: ignore[arg-type]
        (LinearRegression(solver="gd", learning_rate=0.0), "learning_rate must be > 0"),
        (LinearRegression(solver="gd", n_epochs=0), "n_epochs must be a positive integer"),
        (LinearRegression(solver="sgd", batch_size=0), "batch_size must be a positive integer"),
        (Ridge(alpha=-1.0), "alpha must be >= 0"),
        (ElasticNet(l1_ratio=1.5), r"l1_ratio must be in \[0, 1\]"),
        (Lasso(max_iter=0), "max_iter must be a positive integer"),
    ],
)
def test_bad_hyperparameters_are_refused_at_fit(est: Any, match: str) -> None:
    X, y = synthetic(15, n=20, d=2)
    with pytest.raises(ValueError, match=match):
        est.fit(X, y)


@pytest.mark.parametrize("est", ESTIMATORS, ids=repr)
def test_joblib_round_trip_and_params(est: Any) -> None:
    X, y = synthetic(16, n=60, d=3)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    fitted = clone(est).fit(X, y)
    assert fitted.fit(X, y) is fitted
    buf = io.BytesIO()
    joblib.dump(fitted, buf)
    buf.seek(0)
    again = joblib.load(buf)
    np.testing.assert_array_equal(again.predict(X), fitted.predict(X))
    assert again.get_params() == est.get_params()
    assert r2_score(y, again.predict(X)) == again.score(X, y)


def test_lasso_params_have_no_l1_ratio() -> None:
    assert sorted(Lasso().get_params()) == ["alpha", "fit_intercept", "max_iter", "tol"]
    assert sorted(Ridge().get_params())[0] == "alpha"


# --------------------------------------------------------------------------- mutation holes


@pytest.mark.parametrize("est", ["lasso", "elasticnet"])
def test_coordinate_descent_intercept_on_uncentred_data_matches_sklearn(est: str) -> None:
    """Columns far from zero: a sign slip in b = ȳ - x̄ᵀw, or an intercept always fitted,
    moves the intercept by thousands (issue 20's surviving mutants)."""
    X, y = synthetic(21, n=200, d=4)
    X = X * [3.0, 10.0, 0.5, 2.0] + [100.0, -50.0, 7.0, 1_000.0]
    kw: dict[str, Any] = {"alpha": 0.3, "tol": 1e-10, "max_iter": 100_000}
    if est == "elasticnet":
        ours, ref = ElasticNet(l1_ratio=0.5, **kw), sl.ElasticNet(l1_ratio=0.5, **kw)
    else:
        ours, ref = Lasso(**kw), sl.Lasso(**kw)
    ours.fit(X, y)
    ref.fit(X, y)
    assert rel_err(ours.coef_, ref.coef_) < 1e-4
    assert ours.intercept_ == pytest.approx(ref.intercept_, rel=1e-6)
    # Without an intercept, columns with moderate non-zero means: uncentred, the raw ones above
    # are so ill-conditioned that coordinate descent crawls (and mutation testing with it).
    Xs = (X - X.mean(axis=0)) / X.std(axis=0) + [1.0, -2.0, 0.5, 3.0]
    ours.set_params(fit_intercept=False).fit(Xs, y)
    ref.set_params(fit_intercept=False).fit(Xs, y)
    assert ours.intercept_ == 0.0 == ref.intercept_
    assert rel_err(ours.coef_, ref.coef_) < 1e-4


def test_sgd_ridge_penalty_shrinks_like_sklearn_ridge() -> None:
    """The penalty's gradient +2αw pulls the weights in; its sign flipped would push them out."""
    X, y = synthetic(22, n=400, d=3)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    ref = sl.Ridge(alpha=200.0).fit(X, y)
    m = Ridge(alpha=200.0, solver="sgd", batch_size=400, learning_rate=0.001, n_epochs=5_000)
    m.set_params(random_state=0, tol=None).fit(X, y)
    assert rel_err(m.coef_, ref.coef_) < 1e-3
    assert np.linalg.norm(m.coef_) < np.linalg.norm(sl.LinearRegression().fit(X, y).coef_)


def test_ridge_keeps_random_state_for_its_sgd_solver() -> None:
    X, y = synthetic(23, n=300, d=3)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    kw: dict[str, Any] = {"alpha": 1.0, "solver": "sgd", "n_epochs": 3, "tol": None}
    assert Ridge(random_state=5, **kw).get_params()["random_state"] == 5
    a = Ridge(random_state=1, **kw).fit(X, y).coef_
    np.testing.assert_array_equal(a, Ridge(random_state=1, **kw).fit(X, y).coef_)
    assert not np.array_equal(a, Ridge(random_state=2, **kw).fit(X, y).coef_)


def test_lasso_stops_only_when_the_duality_gap_certifies_it(
    diabetes_std: tuple[FloatArray, FloatArray], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A small weight change only proposes a stop; the duality gap must certify it. A gap
    reported too large at the first proposals keeps the sweeps going, and the fit still ends
    at scikit-learn's solution."""
    import model.linear as linear

    X, y = diabetes_std
    plain = Lasso(alpha=0.05, tol=1e-8, max_iter=100_000).fit(X, y)
    real, calls = linear._duality_gap, [0]

    def late_gap(*args: Any) -> float:
        calls[0] += 1
        return math.inf if calls[0] <= 3 else real(*args)

    monkeypatch.setattr(linear, "_duality_gap", late_gap)
    held = Lasso(alpha=0.05, tol=1e-8, max_iter=100_000).fit(X, y)
    assert calls[0] > 3 and held.n_iter_ > plain.n_iter_
    ref = sl.Lasso(alpha=0.05, tol=1e-12, max_iter=1_000_000).fit(X, y)
    assert rel_err(held.coef_, ref.coef_) < 1e-5 and rel_err(plain.coef_, ref.coef_) < 1e-5
