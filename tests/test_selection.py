"""model.selection against scikit-learn and against literal loops."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray
from sklearn import linear_model as sk_linear
from sklearn import metrics as sk_metrics
from sklearn import model_selection as sk_ms
from sklearn.datasets import load_diabetes, load_iris

from model.base import BaseEstimator, NotFittedError, check_X_y
from model.selection import (
    GridSearchCV,
    KFold,
    Progress,
    Scorer,
    cross_validate,
    get_scorer,
    parameter_grid,
    rmse_log,
    train_test_split,
)
from model.tree import DecisionTreeClassifier


class CenteredRidge(BaseEstimator):
    """Ridge by the normal equations on centred data: the same model as sklearn's Ridge.

    Local to the tests so that selection is checked against scikit-learn independently of
    model.linear; test_grid_search_matches_sklearn_with_model_ridge uses the real one.
    """

    def __init__(self, alpha: float = 1.0) -> None:
        self.alpha = alpha

    def fit(self, X: Any, y: Any) -> CenteredRidge:
        Xa, ya = check_X_y(X, y)
        mx, my = Xa.mean(axis=0), ya.mean()
        Xc = Xa - mx
        A = Xc.T @ Xc + self.alpha * np.eye(Xa.shape[1])
        self.coef_ = np.linalg.solve(A, Xc.T @ (ya - my))
        self.intercept_ = my - mx @ self.coef_
        return self

    def predict(self, X: Any) -> NDArray[np.float64]:
        return np.asarray(X, dtype=np.float64) @ self.coef_ + self.intercept_


class Wrapper(BaseEstimator):
    """A meta-estimator, to check nested ``inner__alpha`` names."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def fit(self, X: Any, y: Any) -> Wrapper:
        self.inner_ = self.inner.fit(X, y)
        return self

    def predict(self, X: Any) -> Any:
        return self.inner_.predict(X)


def mse(y: Any, p: Any) -> float:
    return float(np.mean((np.asarray(y) - np.asarray(p)) ** 2))


@pytest.fixture(scope="module")
def diabetes() -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    X, y = load_diabetes(return_X_y=True)
    return X, y


# --- train_test_split ------------------------------------------------------------------------


def test_split_without_shuffle_matches_sklearn() -> None:
    X = np.arange(40.0).reshape(20, 2)
    y = np.arange(20.0)
    for test_size in (0.25, 0.33, 3):
        ours = train_test_split(X, y, test_size=test_size, shuffle=False)
        ref = sk_ms.train_test_split(X, y, test_size=test_size, shuffle=False)
        for a, b in zip(ours, ref, strict=True):
            np.testing.assert_array_equal(a, b)


def test_split_shuffled_partitions_rows_reproducibly() -> None:
    X = np.arange(100.0).reshape(50, 2)
    y = np.arange(50.0)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.2, random_state=7)
    np.testing.assert_array_equal(X_te[:, 1], 2 * y_te + 1)
    assert len(y_te) == 10 and len(y_tr) == 40  # ceil(0.2 * 50), as sklearn
    assert sorted(np.concatenate([y_tr, y_te]).tolist()) == list(range(50))
    np.testing.assert_array_equal(X_tr[:, 0] / 2, y_tr)  # rows stay aligned across arrays
    again = train_test_split(X, y, test_size=0.2, random_state=7)
    np.testing.assert_array_equal(again[3], y_te)
    other = train_test_split(X, y, test_size=0.2, random_state=8)
    assert not np.array_equal(other[3], y_te)


def test_split_tables_row_wise() -> None:
    table = {
        "area": np.arange(10.0),
        "kind": np.array([f"k{i}" for i in range(10)], dtype=object),
    }
    y = np.arange(10.0) * 10
    t_tr, t_te, y_tr, y_te = train_test_split(table, y, test_size=0.3, random_state=0)
    assert set(t_tr) == {"area", "kind"} and len(t_te["area"]) == 3
    np.testing.assert_array_equal(t_te["area"] * 10, y_te)
    np.testing.assert_array_equal(t_tr["area"] * 10, y_tr)
    assert [f"k{int(a)}" for a in t_tr["area"]] == list(t_tr["kind"])


def test_split_errors() -> None:
    with pytest.raises(ValueError, match="different numbers of rows"):
        train_test_split(np.zeros((4, 1)), np.zeros(5))
    with pytest.raises(ValueError, match="both must be at least 1"):
        train_test_split(np.zeros((4, 1)), test_size=4)
    with pytest.raises(ValueError, match=r"in \(0, 1\)"):
        train_test_split(np.zeros((4, 1)), test_size=1.5)
    with pytest.raises(ValueError, match="at least one array"):
        train_test_split()


# --- KFold -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "k"), [(10, 2), (11, 3), (23, 5), (7, 7)])
def test_kfold_matches_sklearn_without_shuffle(n: int, k: int) -> None:
    X = np.zeros((n, 2))
    ours = list(KFold(n_splits=k).split(X))
    ref = list(sk_ms.KFold(n_splits=k).split(X))
    assert len(ours) == len(ref) == k
    for (tr, te), (rtr, rte) in zip(ours, ref, strict=True):
        np.testing.assert_array_equal(tr, rtr)
        np.testing.assert_array_equal(te, rte)


def test_kfold_shuffle_is_seeded_and_partitions() -> None:
    table = {"a": np.arange(17.0)}
    folds = list(KFold(4, shuffle=True, random_state=3).split(table))
    again = list(KFold(4, shuffle=True, random_state=3).split(table))
    tests = np.concatenate([te for _, te in folds])
    assert sorted(tests.tolist()) == list(range(17))
    assert [len(te) for _, te in folds] == [5, 4, 4, 4]
    for (tr, te), (_, te2) in zip(folds, again, strict=True):
        assert set(tr).isdisjoint(te) and len(tr) + len(te) == 17
        np.testing.assert_array_equal(te, te2)
    plain = [te for _, te in KFold(4).split(table)]
    assert any(
        not np.array_equal(a, b) for a, b in zip(plain, [te for _, te in folds], strict=True)
    )


def test_kfold_errors() -> None:
    with pytest.raises(ValueError, match="n_splits=6 is greater than the 5 samples"):
        list(KFold(6).split(np.zeros((5, 1))))
    with pytest.raises(ValueError, match="at least 2"):
        KFold(1)
    with pytest.raises(ValueError, match="shuffle"):
        KFold(3, random_state=0)


# --- cross_validate --------------------------------------------------------------------------


def test_cross_validate_equals_a_literal_loop(diabetes: Any) -> None:
    X, y = diabetes
    cv = KFold(5, shuffle=True, random_state=0)
    seen: list[Progress] = []
    out = cross_validate(
        CenteredRidge(alpha=0.5), X, y, cv=cv, scoring=["rmse", "r2", mse], callback=seen.append
    )
    expected_rmse, expected_r2 = [], []
    for tr, te in cv.split(X):
        p = CenteredRidge(alpha=0.5).fit(X[tr], y[tr]).predict(X[te])
        expected_rmse.append(math.sqrt(np.mean((y[te] - p) ** 2)))
        expected_r2.append(1 - np.sum((y[te] - p) ** 2) / np.sum((y[te] - y[te].mean()) ** 2))
    np.testing.assert_allclose(out["rmse"]["folds"], expected_rmse, rtol=1e-12)
    np.testing.assert_allclose(out["r2"]["folds"], expected_r2, rtol=1e-12)
    np.testing.assert_allclose(out["mse"]["folds"], np.square(expected_rmse), rtol=1e-12)
    assert out["rmse"]["mean"] == pytest.approx(np.mean(expected_rmse))
    assert out["rmse"]["std"] == pytest.approx(np.std(expected_rmse))
    assert [p.done for p in seen] == [1, 2, 3, 4, 5] and seen[-1].total == 5


def test_cross_validate_r2_matches_sklearn(diabetes: Any) -> None:
    X, y = diabetes
    ours = cross_validate(CenteredRidge(alpha=1.0), X, y, cv=4, scoring="r2")
    ref = sk_ms.cross_validate(sk_linear.Ridge(alpha=1.0), X, y, cv=4, scoring="r2")
    np.testing.assert_allclose(ours["r2"]["folds"], ref["test_score"], rtol=1e-8)


def test_rmse_log_is_rmse_of_logs() -> None:
    y, p = np.array([100.0, 200.0, 400.0]), np.array([110.0, 180.0, 400.0])
    expected = math.sqrt(np.mean((np.log(y) - np.log(p)) ** 2))
    assert rmse_log(y, p) == pytest.approx(expected, rel=1e-12)
    assert get_scorer("rmse_log").metric is rmse_log
    assert not get_scorer("rmse_log").greater_is_better
    with pytest.raises(ValueError, match="positive"):
        rmse_log(y, -p)


def test_classification_scoring_and_default_score() -> None:
    X, y = load_iris(return_X_y=True)
    cv = KFold(3, shuffle=True, random_state=0)
    tree = DecisionTreeClassifier(max_depth=2, random_state=0)
    out = cross_validate(tree, X, y, cv=cv, scoring=["accuracy", "f1_macro", None])
    for k, (tr, te) in enumerate(cv.split(X)):
        p = DecisionTreeClassifier(max_depth=2, random_state=0).fit(X[tr], y[tr]).predict(X[te])
        assert out["accuracy"]["folds"][k] == pytest.approx(sk_metrics.accuracy_score(y[te], p))
        assert out["f1_macro"]["folds"][k] == pytest.approx(
            sk_metrics.f1_score(y[te], p, average="macro")
        )
    # None is the estimator's own score: accuracy for a classifier
    np.testing.assert_array_equal(out["score"]["folds"], out["accuracy"]["folds"])


def test_scoring_errors() -> None:
    with pytest.raises(ValueError, match="unknown scoring 'rmsle'"):
        get_scorer("rmsle")
    with pytest.raises(ValueError, match="repeated names"):
        cross_validate(CenteredRidge(), np.zeros((6, 1)), np.zeros(6), cv=2, scoring=["r2", "r2"])


# --- GridSearchCV ----------------------------------------------------------------------------


def test_parameter_grid_order_and_lists() -> None:
    grid = parameter_grid([{"b": [1, 2], "a": ["x"]}, {"c": [0]}])
    assert grid == [{"a": "x", "b": 1}, {"a": "x", "b": 2}, {"c": 0}]
    assert grid[:2] == list(sk_ms.ParameterGrid({"b": [1, 2], "a": ["x"]}))


ALPHAS = [1e-4, 1e-3, 1e-2, 0.1, 0.3, 1.0, 3.0, 10.0]


def test_grid_search_matches_sklearn(diabetes: Any) -> None:
    X, y = diabetes
    ours = GridSearchCV(CenteredRidge(), {"alpha": ALPHAS}, scoring="mse", cv=5).fit(X, y)
    ref = sk_ms.GridSearchCV(
        sk_linear.Ridge(), {"alpha": ALPHAS}, scoring="neg_mean_squared_error", cv=5
    ).fit(X, y)
    assert ours.best_params_ == ref.best_params_
    assert ours.best_score_ == pytest.approx(-ref.best_score_, rel=1e-8)
    np.testing.assert_allclose(
        ours.cv_results_["mean_test_mse"], -ref.cv_results_["mean_test_score"], rtol=1e-8
    )
    np.testing.assert_array_equal(
        ours.cv_results_["rank_test_mse"], ref.cv_results_["rank_test_score"]
    )
    np.testing.assert_allclose(ours.predict(X[:5]), ref.predict(X[:5]), rtol=1e-8)


def test_grid_search_with_model_ridge_matches_sklearn(diabetes: Any) -> None:
    linear = pytest.importorskip("model.linear")
    X, y = diabetes
    ours = GridSearchCV(linear.Ridge(), {"alpha": ALPHAS}, scoring="r2", cv=5).fit(X, y)
    ref = sk_ms.GridSearchCV(sk_linear.Ridge(), {"alpha": ALPHAS}, scoring="r2", cv=5).fit(X, y)
    assert ours.best_params_ == ref.best_params_


def test_grid_search_nested_names_progress_and_refit(diabetes: Any) -> None:
    X, y = diabetes
    events: list[Progress] = []
    cv = KFold(3, shuffle=True, random_state=1)
    search = GridSearchCV(
        Wrapper(CenteredRidge()),
        {"inner__alpha": [0.01, 1.0, 100.0]},
        scoring=[Scorer("mse", mse, greater_is_better=False), "r2"],
        cv=cv,
        callback=events.append,
    ).fit(X, y)
    assert [e.done for e in events] == list(range(1, 10)) and events[0].total == 9
    assert [(e.candidate, e.fold) for e in events[:4]] == [(0, 0), (0, 1), (0, 2), (1, 0)]
    means = search.cv_results_["mean_test_mse"]
    assert search.best_index_ == int(np.argmin(means))
    assert search.best_params_ == {"inner__alpha": [0.01, 1.0, 100.0][search.best_index_]}
    assert search.best_estimator_.inner.alpha == search.best_params_["inner__alpha"]
    folds = list(cv.split(X))
    m = CenteredRidge(alpha=100.0).fit(X[folds[1][0]], y[folds[1][0]])
    assert search.cv_results_["split1_test_mse"][2] == pytest.approx(
        mse(y[folds[1][1]], m.predict(X[folds[1][1]]))
    )
    assert list(search.cv_results_["param_inner__alpha"]) == [0.01, 1.0, 100.0]
    # the searched estimator itself is left untouched
    assert search.estimator.inner.alpha == 1.0 and not hasattr(search.estimator, "inner_")


def test_grid_search_reproducible_with_seeded_cv(diabetes: Any) -> None:
    X, y = diabetes

    def run() -> NDArray[np.float64]:
        cv = KFold(4, shuffle=True, random_state=42)
        s = GridSearchCV(CenteredRidge(), {"alpha": [0.1, 1.0]}, scoring="rmse", cv=cv)
        return np.asarray(s.fit(X, y).cv_results_["mean_test_rmse"])

    np.testing.assert_array_equal(run(), run())


def test_grid_search_errors(diabetes: Any) -> None:
    X, y = diabetes
    with pytest.raises(ValueError, match="param_grid is empty"):
        GridSearchCV(CenteredRidge(), []).fit(X, y)
    with pytest.raises(ValueError, match="non-empty dict"):
        GridSearchCV(CenteredRidge(), {}).fit(X, y)
    with pytest.raises(ValueError, match=r"param_grid\['alpha'\] is empty"):
        GridSearchCV(CenteredRidge(), {"alpha": []}).fit(X, y)
    with pytest.raises(ValueError, match="must be a list of values"):
        GridSearchCV(CenteredRidge(), {"alpha": 1.0}).fit(X, y)  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="invalid parameter 'beta'"):
        GridSearchCV(CenteredRidge(), {"beta": [1.0]}).fit(X, y)
    with pytest.raises(ValueError, match="invalid parameter 'inner__beta'"):
        GridSearchCV(Wrapper(CenteredRidge()), {"inner__beta": [1.0]}).fit(X, y)
    with pytest.raises(ValueError, match="n_splits=5 is greater than the 3 samples"):
        GridSearchCV(CenteredRidge(), {"alpha": [1.0]}, scoring="r2").fit(X[:3], y[:3])
    with pytest.raises(NotFittedError):
        GridSearchCV(CenteredRidge(), {"alpha": [1.0]}).predict(X)
    no_refit = GridSearchCV(CenteredRidge(), {"alpha": [1.0]}, scoring="r2", refit=False)
    with pytest.raises(NotFittedError, match="refit=False"):
        no_refit.fit(X, y).predict(X)
