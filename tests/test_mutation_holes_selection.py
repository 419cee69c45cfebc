"""model.selection: what mutation testing found the other tests let through (issue 20).

The splits are stated exactly (which rows, from which seeded permutation), every scorer name is
held to scikit-learn's metric and direction, the search's tie rule and out-of-fold predictions are
checked on candidates that tie, and every refusal is worded whole (anchored).
"""

from __future__ import annotations

import functools
import math
import re
import time
from typing import Any

import numpy as np
import pytest
from scipy.stats import rankdata
from sklearn import metrics as sk_metrics

from model.base import BaseEstimator, NotFittedError
from model.linear import Ridge
from model.selection import (
    SCORER_NAMES,
    GridSearchCV,
    KFold,
    Progress,
    Scorer,
    _folds,
    _n_rows,
    _partitions,
    _ranks,
    _rng,
    _scorers,
    _take,
    cross_val_predict,
    cross_validate,
    get_scorer,
    parameter_grid,
    rmse_log,
    train_test_split,
)


def whole(message: str) -> str:
    return "^" + re.escape(message) + "$"


class Shift(BaseEstimator):
    """Predicts the training mean of y plus ``shift``; ``score`` is minus the mean error."""

    def __init__(self, shift: float = 0.0, other: int = 0) -> None:
        self.shift = shift
        self.other = other

    def fit(self, X: Any, y: Any) -> Shift:
        if _n_rows(X) != len(y):
            raise ValueError(f"Shift: X has {_n_rows(X)} rows, y {len(y)}")
        self.mean_ = float(np.mean(y))
        return self

    def predict(self, X: Any) -> Any:
        return np.full(_n_rows(X), self.mean_ + self.shift)

    def score(self, X: Any, y: Any) -> float:
        return -float(np.mean(np.abs(np.asarray(y) - self.predict(X))))


@pytest.mark.parametrize("greater", [True, False])
def test_ranks_are_scipys_min_ranks_with_nan_last(greater: bool) -> None:
    means = np.array([0.3, 0.1, 0.3, np.nan, 0.2, 0.1])
    key = -means if greater else means
    expected = rankdata(np.where(np.isnan(key), np.inf, key), method="min")
    ranks = _ranks(means, greater)
    assert ranks.tolist() == expected.tolist() and ranks.dtype == np.intp


# --- rows -------------------------------------------------------------------------------------


def test_rows_of_arrays_lists_and_tables() -> None:
    assert _n_rows([[1, 2], [3, 4], [5, 6]]) == 3
    assert _n_rows(np.zeros(4)) == 4
    assert _n_rows({"a": [1, 2], "b": np.zeros(2)}) == 2
    with pytest.raises(ValueError, match=whole("table has no columns")):
        _n_rows({})
    with pytest.raises(
        ValueError, match=whole("table columns have different lengths: {'a': 2, 'b': 1}")
    ):
        _n_rows({"a": [1, 2], "b": [1]})
    with pytest.raises(ValueError, match=whole("expected an array or a table, got a scalar 3")):
        _n_rows(3)
    taken = _take({"a": [1, 2, 3], "b": ["x", "y", "z"]}, np.array([2, 0]))
    assert taken["a"].tolist() == [3, 1] and taken["b"].tolist() == ["z", "x"]
    assert _take([[1], [2], [3]], np.array([1])).tolist() == [[2]]


def test_rng_takes_a_generator_as_is_and_seeds_the_rest() -> None:
    gen = np.random.default_rng(0)
    assert _rng(gen) is gen
    assert _rng(5).random() == np.random.default_rng(5).random()


# --- train_test_split -------------------------------------------------------------------------


def test_split_rows_come_from_the_seeded_permutation() -> None:
    X, y = np.arange(20.0).reshape(10, 2), np.arange(10.0)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, random_state=7)
    order = np.random.default_rng(7).permutation(10)
    assert y_te.tolist() == order[7:].tolist() and y_tr.tolist() == order[:7].tolist()
    assert X_te.tolist() == X[order[7:]].tolist() and X_tr.shape == (7, 2)
    a_tr, a_te = train_test_split(np.arange(10), test_size=0.2, shuffle=False)
    assert a_te.tolist() == [8, 9] and a_tr.tolist() == list(range(8))
    _, b_te = train_test_split(np.arange(10), test_size=np.int64(3), shuffle=False)  # type: ignore[arg-type]
    assert b_te.tolist() == [7, 8, 9]
    _, c_te = train_test_split(np.arange(10), test_size=0.21, shuffle=False)
    assert len(c_te) == 3  # ceil(2.1)
    d_tr, d_te = train_test_split(np.arange(4), test_size=3, shuffle=False)
    assert d_tr.tolist() == [0] and d_te.tolist() == [1, 2, 3]


@pytest.mark.parametrize(
    ("test_size", "message"),
    [
        (True, "test_size must be a fraction or a row count, got True"),
        ("0.5", "test_size must be a fraction or a row count, got '0.5'"),
        (None, "test_size must be a fraction or a row count, got None"),
        (0.0, "test_size as a fraction must be in (0, 1), got 0.0"),
        (1.0, "test_size as a fraction must be in (0, 1), got 1.0"),
        (
            0,
            "train_test_split: test_size=0 on 4 rows leaves 4 train and 0 test rows; both must "
            "be at least 1",
        ),
        (
            4,
            "train_test_split: test_size=4 on 4 rows leaves 0 train and 4 test rows; both must "
            "be at least 1",
        ),
        (
            0.9,
            "train_test_split: test_size=0.9 on 4 rows leaves 0 train and 4 test rows; both "
            "must be at least 1",
        ),
    ],
)
def test_split_refusals_are_worded_whole(test_size: Any, message: str) -> None:
    with pytest.raises(ValueError, match=whole(message)):
        train_test_split(np.zeros(4), test_size=test_size)


def test_split_input_refusals() -> None:
    with pytest.raises(
        ValueError, match=whole("train_test_split: at least one array or table is required")
    ):
        train_test_split()
    with pytest.raises(
        ValueError, match=whole("train_test_split: inputs have different numbers of rows: [4, 5]")
    ):
        train_test_split(np.zeros(4), np.zeros(5))


# --- KFold ------------------------------------------------------------------------------------


def test_kfold_folds_are_the_sorted_slices_of_the_seeded_permutation() -> None:
    cv = KFold(np.int64(3), shuffle=True, random_state=11)  # type: ignore[arg-type]
    assert type(cv.n_splits) is int and cv.get_n_splits() == 3
    order = np.random.default_rng(11).permutation(8)
    folds = list(cv.split(np.zeros((8, 1))))
    for (train, test), (lo, hi) in zip(folds, [(0, 3), (3, 6), (6, 8)], strict=True):
        assert test.tolist() == sorted(order[lo:hi].tolist())
        assert train.tolist() == sorted(set(range(8)) - set(order[lo:hi].tolist()))
    two = list(KFold(2).split(np.zeros(2)))
    assert [(tr.tolist(), te.tolist()) for tr, te in two] == [([1], [0]), ([0], [1])]
    assert repr(cv) == "KFold(n_splits=3, shuffle=True, random_state=11)"
    assert repr(KFold()) == "KFold(n_splits=5, shuffle=False, random_state=None)"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_splits": True}, "n_splits must be an integer, got True"),
        ({"n_splits": 3.0}, "n_splits must be an integer, got 3.0"),
        ({"n_splits": 1}, "n_splits must be at least 2, got 1"),
        (
            {"n_splits": 3, "random_state": 0},
            "random_state has no effect without shuffle=True; leave it None or set shuffle",
        ),
    ],
)
def test_kfold_refusals_are_worded_whole(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=whole(message)):
        KFold(**kwargs)


def test_kfold_needs_as_many_rows_as_folds() -> None:
    assert len(list(KFold(3).split(np.zeros(3)))) == 3
    with pytest.raises(ValueError, match=whole("KFold: n_splits=4 is greater than the 3 samples")):
        list(KFold(4).split(np.zeros(3)))


def test_folds_from_numbers_splitters_and_lists() -> None:
    folds = _folds(np.int64(2), np.zeros(4), None)
    assert [te.tolist() for _, te in folds] == [[0, 1], [2, 3]]
    given = _folds([([0, 1], [2]), ([2], [0, 1])], np.zeros(3), None)
    assert all(tr.dtype == np.intp and te.dtype == np.intp for tr, te in given)
    assert given[1][1].tolist() == [0, 1]
    with pytest.raises(
        ValueError,
        match=whole("cv must be a splitter, a number of folds or a list of folds, got True"),
    ):
        _folds(True, np.zeros(4), None)
    with pytest.raises(ValueError, match=whole("cv gave no folds")):
        _folds([], np.zeros(4), None)


def test_partitions() -> None:
    assert _partitions([(np.array([1]), np.array([0])), (np.array([0]), np.array([1]))], 2)
    assert not _partitions([(np.array([1]), np.array([0])), (np.array([0]), np.array([0]))], 2)
    assert not _partitions([(np.array([1]), np.array([0, 1])), (np.array([0]), np.array([1]))], 2)
    assert not _partitions([(np.array([1]), np.array([0]))], 2)


# --- scorers ----------------------------------------------------------------------------------


REGRESSION = {
    "mse": (sk_metrics.mean_squared_error, False),
    "rmse": (sk_metrics.root_mean_squared_error, False),
    "mae": (sk_metrics.mean_absolute_error, False),
    "mape": (sk_metrics.mean_absolute_percentage_error, False),
    "r2": (sk_metrics.r2_score, True),
}
CLASSIFICATION = {
    "accuracy": (sk_metrics.accuracy_score, True),
    "precision": (sk_metrics.precision_score, True),
    "recall": (sk_metrics.recall_score, True),
    "f1": (sk_metrics.f1_score, True),
    "f1_macro": (functools.partial(sk_metrics.f1_score, average="macro"), True),
}


def test_every_scorer_name_is_sklearns_metric_with_its_direction() -> None:
    assert tuple(sorted([*REGRESSION, *CLASSIFICATION, "rmse_log"])) == SCORER_NAMES
    y, p = np.array([3.0, 1.0, 4.0, 1.5, 5.0]), np.array([2.5, 1.5, 3.0, 2.0, 6.0])
    for name, (metric, greater) in REGRESSION.items():
        scorer = get_scorer(name)
        assert scorer.name == name and scorer.greater_is_better is greater
        assert scorer.metric is not None
        assert scorer.metric(y, p) == pytest.approx(metric(y, p), rel=1e-12)
    yc, pc = np.array([0, 1, 1, 0, 1, 1, 0]), np.array([0, 1, 0, 1, 1, 1, 1])
    for name, (metric, greater) in CLASSIFICATION.items():
        scorer = get_scorer(name)
        assert scorer.greater_is_better is greater and scorer.metric is not None
        assert scorer.metric(yc, pc) == pytest.approx(metric(yc, pc), rel=1e-12), name
    y3, p3 = np.array([0, 1, 2, 2, 1, 0]), np.array([0, 2, 2, 2, 0, 0])
    assert get_scorer("f1_macro").metric(y3, p3) == pytest.approx(  # type: ignore[misc]
        sk_metrics.f1_score(y3, p3, average="macro"), rel=1e-12
    )


def test_rmse_log_refuses_zero_as_well_as_negatives() -> None:
    message = whole("rmse_log needs positive targets and predictions")
    for yt, yp in (([0.0, 1.0], [1.0, 1.0]), ([1.0, 1.0], [1.0, 0.0]), ([1.0, -2.0], [1.0, 1.0])):
        with pytest.raises(ValueError, match=message):
            rmse_log(yt, yp)
    assert rmse_log([1.0, math.e], [math.e, 1.0]) == pytest.approx(1.0, rel=1e-12)


def test_get_scorer_of_each_kind() -> None:
    given = Scorer("mine", None, False)
    assert get_scorer(given) is given
    assert get_scorer(None) == Scorer("score", None, True)

    def my_metric(y: Any, p: Any) -> float:
        return 0.0

    assert get_scorer(my_metric) == Scorer("my_metric", my_metric, True)
    part = functools.partial(my_metric)
    assert get_scorer(part) == Scorer("score", part, True)
    with pytest.raises(
        ValueError,
        match=whole(f"unknown scoring 'rmsle'; known: {list(SCORER_NAMES)}"),
    ):
        get_scorer("rmsle")
    with pytest.raises(
        ValueError, match=whole("scoring must be a name, a callable or a Scorer, got 3")
    ):
        get_scorer(3)  # type: ignore[arg-type]


def test_scorers_of_one_or_several() -> None:
    assert [s.name for s in _scorers("r2")] == ["r2"]
    assert [s.name for s in _scorers(("mse", "r2"))] == ["mse", "r2"]
    assert [s.name for s in _scorers(None)] == ["score"]
    with pytest.raises(ValueError, match=whole("scoring is an empty list")):
        _scorers([])
    with pytest.raises(ValueError, match=whole("scoring has repeated names: ['r2', 'mse', 'r2']")):
        _scorers(["r2", "mse", "r2"])


def test_a_scorer_calls_its_metric_as_y_true_then_y_pred() -> None:
    model = Shift(shift=1.0).fit(np.zeros((2, 1)), [1.0, 3.0])  # predicts 3.0
    seen: list[Any] = []
    scorer = Scorer("s", lambda yt, yp: seen.append((list(yt), list(yp))) or 0.5)  # type: ignore[func-returns-value]
    assert scorer(model, np.zeros((2, 1)), [1.0, 2.0]) == 0.5
    assert seen == [([1.0, 2.0], [3.0, 3.0])]
    own = Scorer("own", None)(model, np.zeros((2, 1)), [1.0, 2.0])
    assert type(own) is float and own == -1.5


# --- cross-validation -------------------------------------------------------------------------


def test_cross_validate_reports_folds_mean_and_population_std() -> None:
    X, y = np.zeros((6, 1)), np.array([1.0, 2.0, 3.0, 10.0, 20.0, 30.0])
    events: list[Progress] = []
    out = cross_validate(Shift(), X, y, cv=2, scoring=["mae", None], callback=events.append)
    # fold 0 tests rows 0-2 on a model of mean 20; fold 1 tests rows 3-5 on mean 2
    assert out["mae"]["folds"].tolist() == [18.0, 18.0]
    assert out["score"]["folds"].tolist() == [-18.0, -18.0]
    assert out["mae"]["mean"] == 18.0 and out["mae"]["std"] == 0.0
    uneven = cross_validate(Shift(), X, y, cv=[([0, 1], [2]), ([2], [0, 1])], scoring="mae")
    assert uneven["mae"]["folds"].tolist() == [1.5, 1.5]
    skew = cross_validate(Shift(), X, y, cv=[([0], [1]), ([3], [4])], scoring="mae")
    assert skew["mae"]["mean"] == 5.5 and skew["mae"]["std"] == 4.5
    assert events == [
        Progress(1, 2, 0, 0, {}, {"mae": 18.0, "score": -18.0}),
        Progress(2, 2, 0, 1, {}, {"mae": 18.0, "score": -18.0}),
    ]
    with pytest.raises(ValueError, match=whole("X and y have different numbers of rows: 6 vs 5")):
        cross_validate(Shift(), X, y[:5])


def test_cross_val_predict_is_each_rows_held_out_prediction() -> None:
    X, y = np.zeros((4, 1)), np.array([1.0, 3.0, 10.0, 30.0])
    out = cross_val_predict(Shift(), X, y, cv=2)
    assert out.dtype == np.float64 and out.tolist() == [20.0, 20.0, 2.0, 2.0]
    with pytest.raises(
        ValueError, match=whole("cross_val_predict needs folds whose test parts partition the rows")
    ):
        cross_val_predict(Shift(), X, y, cv=[([0, 1], [2, 3])])
    with pytest.raises(ValueError, match=whole("X and y have different numbers of rows: 4 vs 3")):
        cross_val_predict(Shift(), X, y[:3])


# --- grid --------------------------------------------------------------------------------------


def test_parameter_grid_takes_arrays_and_refuses_text() -> None:
    assert parameter_grid({"b": np.array([1, 2]), "a": (0,)}) == [  # type: ignore[dict-item]
        {"a": 0, "b": 1},
        {"a": 0, "b": 2},
    ]
    for bad in ("ab", b"ab", 3, {1, 2}):
        with pytest.raises(
            ValueError, match=whole(f"param_grid['a'] must be a list of values, got {bad!r}")
        ):
            parameter_grid({"a": bad})  # type: ignore[dict-item]
    with pytest.raises(
        ValueError, match=whole("param_grid['a'] is empty: give at least one value")
    ):
        parameter_grid({"a": []})
    with pytest.raises(ValueError, match=whole("param_grid is empty: nothing to search")):
        parameter_grid([])
    for bad in ({}, [1]):  # type: ignore[assignment]
        with pytest.raises(
            ValueError, match=whole(f"param_grid: each grid must be a non-empty dict, got {bad!r}")
        ):
            parameter_grid([{"a": [1]}, bad])  # type: ignore[list-item]


# --- GridSearchCV -------------------------------------------------------------------------------


def data() -> tuple[np.ndarray, np.ndarray]:
    return np.zeros((6, 1)), np.array([1.0, 2.0, 3.0, 10.0, 20.0, 30.0])


def test_search_results_table() -> None:
    X, y = data()
    grid = [{"shift": [0.0, -9.0]}, {"other": [5]}]
    search = GridSearchCV(Shift(), grid, scoring=["mae", "mse"], cv=2).fit(X, y)  # type: ignore[arg-type]
    res = search.cv_results_
    assert res["params"] == [{"shift": 0.0}, {"shift": -9.0}, {"other": 5}]
    assert res["param_shift"].dtype == object and res["param_shift"].tolist() == [0.0, -9.0, None]
    assert res["param_other"].tolist() == [None, None, 5]
    # fold 0: truth 1,2,3 against 20+shift; fold 1: truth 10,20,30 against 2+shift
    assert res["split0_test_mae"].tolist() == [18.0, 9.0, 18.0]
    assert res["split1_test_mae"].tolist() == [18.0, 27.0, 18.0]
    assert res["mean_test_mae"].tolist() == [18.0, 18.0, 18.0]
    assert res["std_test_mae"].tolist() == [0.0, 9.0, 0.0]
    assert res["rank_test_mae"].tolist() == [1, 1, 1]
    assert res["rank_test_mse"].tolist() == [1, 3, 1]
    assert res["mean_fit_time"].shape == (3,) and (res["mean_fit_time"] >= 0).all()
    assert set(res) == {
        "params",
        "param_shift",
        "param_other",
        *(
            f"{k}_test_{s}"
            for k in ("split0", "split1", "mean", "std", "rank")
            for s in ("mae", "mse")
        ),
        "mean_fit_time",
    }
    assert search.best_index_ == 0 and search.best_params_ == {"shift": 0.0}
    assert search.best_score_ == 18.0 and search.n_splits_ == 2
    assert search.scorer_.name == "mae"
    assert search.best_params_ is not res["params"][0]


def test_search_best_is_the_first_of_the_best_and_its_out_of_fold_predictions() -> None:
    X, y = data()
    tie = Scorer("tie", lambda yt, yp: 0.0)
    search = GridSearchCV(Shift(), {"shift": [1.0, 2.0, 3.0]}, scoring=tie, cv=2).fit(X, y)
    assert search.best_index_ == 0
    assert search.oof_predictions_.tolist() == [21.0, 21.0, 21.0, 3.0, 3.0, 3.0]  # type: ignore[union-attr]
    lower = GridSearchCV(Shift(), {"shift": [5.0, 0.0, -1.0]}, scoring="mae", cv=2).fit(X, y)
    # means: 18 for 5 (|fold0| 13, |fold1| 23), 18 for 0, 18.0 for -1: all tie on mae
    assert lower.best_index_ == 0 and lower.oof_predictions_[0] == 25.0  # type: ignore[index]
    rmse = GridSearchCV(Shift(), {"shift": [5.0, -9.0, 0.0]}, scoring="rmse", cv=2).fit(X, y)
    best = int(np.argmin(rmse.cv_results_["mean_test_rmse"]))
    assert rmse.best_index_ == best
    expected = cross_val_predict(Shift(shift=[5.0, -9.0, 0.0][best]), X, y, cv=2)
    assert rmse.oof_predictions_.tolist() == expected.tolist()  # type: ignore[union-attr]
    r2 = GridSearchCV(Shift(), {"shift": [9.0, 0.0, 4.0]}, scoring="r2", cv=2).fit(X, y)
    assert r2.best_params_ == {"shift": 0.0}
    assert r2.oof_predictions_.tolist() == [20.0, 20.0, 20.0, 2.0, 2.0, 2.0]  # type: ignore[union-attr]
    none = GridSearchCV(Shift(), {"shift": [0.0]}, cv=[([0, 1, 2], [3, 4])]).fit(X, y)
    assert none.oof_predictions_ is None


def test_search_with_nan_scores_ranks_them_last() -> None:
    X, y = data()
    nan_for_zero = Scorer("n", lambda yt, yp: math.nan if yp[0] in (20.0, 2.0) else 1.0)
    search = GridSearchCV(Shift(), {"shift": [0.0, 1.0]}, scoring=nan_for_zero, cv=2).fit(X, y)
    assert search.best_index_ == 1
    assert search.oof_predictions_.tolist() == [21.0, 21.0, 21.0, 3.0, 3.0, 3.0]  # type: ignore[union-attr]
    lower = Scorer("n", lambda yt, yp: math.nan if yp[0] in (20.0, 2.0) else 1.0, False)
    search = GridSearchCV(Shift(), {"shift": [0.0, 1.0]}, scoring=lower, cv=2).fit(X, y)
    assert search.best_index_ == 1 and search.oof_predictions_[0] == 21.0  # type: ignore[index]


def test_search_prints_one_line_per_candidate_when_verbose(
    capsys: pytest.CaptureFixture[str],
) -> None:
    X, y = data()
    GridSearchCV(Shift(), {"shift": [0.0, -9.0]}, scoring="mae", cv=2, verbose=1).fit(X, y)
    err = capsys.readouterr().err
    assert err == "[1/2] {'shift': 0.0} mae=18 ± 0\n[2/2] {'shift': -9.0} mae=18 ± 9\n"
    GridSearchCV(Shift(), {"shift": [0.0]}, scoring="mae", cv=2, verbose=0).fit(X, y)
    assert capsys.readouterr().err == ""


def test_search_refit_score_and_refusals() -> None:
    X, y = data()
    search = GridSearchCV(Shift(), {"shift": [0.0, 1.0]}, scoring="mae", cv=2).fit(X, y)
    assert search.best_estimator_.mean_ == float(np.mean(y))
    assert search.predict(np.zeros((1, 1))).tolist() == [11.0]
    assert search.score(np.zeros((2, 1)), [11.0, 13.0]) == 1.0
    no_refit = GridSearchCV(Shift(), {"shift": [0.0]}, scoring="mae", cv=2, refit=False).fit(X, y)
    assert not hasattr(no_refit, "best_estimator_")
    with pytest.raises(
        NotFittedError, match=whole("GridSearchCV was fitted with refit=False; no best_estimator_")
    ):
        no_refit.score(X, y)
    with pytest.raises(NotFittedError, match="this GridSearchCV instance is not fitted yet"):
        GridSearchCV(Shift(), {"shift": [0.0]}).score(X, y)
    with pytest.raises(
        ValueError,
        match=whole(
            "param_grid: invalid parameter 'beta' for Shift; valid parameters: ['other', 'shift']"
        ),
    ):
        GridSearchCV(Shift(), [{"shift": [0.0]}, {"beta": [1]}]).fit(X, y)
    with pytest.raises(ValueError, match=whole("X and y have different numbers of rows: 6 vs 5")):
        GridSearchCV(Shift(), {"shift": [0.0]}).fit(X, y[:5])


def test_an_unfitted_search_is_not_fitted_whatever_else_it_holds() -> None:
    search = GridSearchCV(Shift(), {"shift": [0.0]})
    search.other_ = 1  # type: ignore[attr-defined]
    with pytest.raises(
        NotFittedError,
        match=whole("this GridSearchCV instance is not fitted yet; call 'fit' first"),
    ):
        search.predict(np.zeros((1, 1)))


def test_rmse_log_reads_numbers_held_as_objects() -> None:
    """A table's target column may come as an object array of numbers."""
    yt = np.array([1.0, math.e], dtype=object)
    yp = np.array([math.e, 1.0], dtype=object)
    assert rmse_log(yt, [math.e, 1.0]) == pytest.approx(1.0, rel=1e-12)
    assert rmse_log([1.0, math.e], yp) == pytest.approx(1.0, rel=1e-12)


def test_split_keeps_a_single_test_row() -> None:
    train, test = train_test_split(np.arange(4), test_size=1, shuffle=False)
    assert train.tolist() == [0, 1, 2] and test.tolist() == [3]
    train, test = train_test_split(np.arange(4), test_size=0.25, shuffle=False)
    assert test.tolist() == [3]


class ByLabel:
    """A splitter that reads y: each fold tests the rows of one label."""

    def split(self, X: Any, y: Any) -> Any:
        y = np.asarray(y)
        for label in np.unique(y):
            yield np.flatnonzero(y != label), np.flatnonzero(y == label)


def test_cross_val_predict_hands_y_to_the_splitter_and_fits_on_the_train_rows() -> None:
    X, y = np.zeros((4, 1)), np.array([1.0, 5.0, 1.0, 5.0])
    out = cross_val_predict(Shift(), X, y, cv=ByLabel())
    assert out.tolist() == [5.0, 1.0, 5.0, 1.0]
    with pytest.raises(ValueError, match=whole("Shift: X has 4 rows, y 3")):
        Shift().fit(X, y[:3])


def test_cross_validate_hands_y_to_the_splitter_and_defaults_to_five_folds() -> None:
    X, y = np.zeros((4, 1)), np.array([1.0, 5.0, 1.0, 5.0])
    out = cross_validate(Shift(), X, y, cv=ByLabel(), scoring="mae")
    assert out["mae"]["folds"].tolist() == [4.0, 4.0]
    ten = np.arange(10.0)
    assert len(cross_validate(Shift(), ten, ten, scoring="mae")["mae"]["folds"]) == 5
    search = GridSearchCV(Shift(), {"shift": [0.0]}, scoring="mae").fit(ten, ten)
    assert search.n_splits_ == 5
    assert cross_val_predict(Shift(), ten, ten)[8:].tolist() == [3.5, 3.5]  # mean of rows 0-7


def test_search_hands_y_to_the_splitter_and_reports_each_fold() -> None:
    X, y = np.zeros((4, 1)), np.array([1.0, 5.0, 1.0, 5.0])
    events: list[Progress] = []
    search = GridSearchCV(
        Shift(), {"shift": [0.0, 1.0]}, scoring="mae", cv=ByLabel(), callback=events.append
    ).fit(X, y)
    assert search.n_splits_ == 2
    assert search.cv_results_["split0_test_mae"].tolist() == [4.0, 5.0]
    assert events[0] == Progress(1, 4, 0, 0, {"shift": 0.0}, {"mae": 4.0})
    assert events[3] == Progress(4, 4, 1, 1, {"shift": 1.0}, {"mae": 3.0})


class AddX(Shift):
    """Predicts the training mean of y plus the row's first feature."""

    def predict(self, X: Any) -> Any:
        return self.mean_ + np.asarray(X, dtype=float)[:, 0]


def test_cross_val_predict_predicts_each_held_out_row_from_its_own_features() -> None:
    X, y = np.array([[0.0], [1.0], [2.0], [3.0]]), np.array([1.0, 1.0, 3.0, 3.0])
    assert cross_val_predict(AddX(), X, y, cv=2).tolist() == [3.0, 4.0, 3.0, 4.0]


def test_fit_times_are_the_seconds_each_fit_took() -> None:
    """``mean_fit_time`` is the time a fit took (start to end), never more than the search."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 3)), rng.normal(size=40)
    started = time.perf_counter()
    search = GridSearchCV(Ridge(), {"alpha": [0.1, 1.0]}, cv=3).fit(X, y)
    elapsed = time.perf_counter() - started
    times = search.cv_results_["mean_fit_time"]
    assert np.all(times >= 0.0) and np.all(times <= elapsed), (times, elapsed)


# --- stop 26 (s26-mutx): the fresh run's survivors -----------------------------------------------


@pytest.mark.parametrize("greater", [True, False])
def test_a_nan_mean_ties_with_the_worst_possible_one(greater: bool) -> None:
    """NaN ranks as an infinitely bad mean (the search's best-key rule), not below it."""
    worst = -np.inf if greater else np.inf
    ranks = _ranks(np.array([np.nan, 0.5, worst, np.nan]), greater)
    assert ranks.tolist() == [2, 1, 2, 2]


def test_a_search_is_quiet_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    X, y = data()
    search = GridSearchCV(Shift(), {"shift": [0.0, 1.0]}, scoring="mae", cv=2)
    assert search.get_params()["verbose"] == 0
    search.fit(X, y)
    assert capsys.readouterr().err == ""


def test_folds_come_out_as_intp_whatever_integer_type_they_come_in() -> None:
    small = [(np.array([0, 1], dtype=np.int32), np.array([2], dtype=np.uint8))]
    ((train, test),) = _folds(small, np.zeros(3), None)
    assert train.dtype == np.intp and test.dtype == np.intp
    assert train.tolist() == [0, 1] and test.tolist() == [2]


@pytest.mark.parametrize(
    ("fold", "message"),
    [
        (([True, False, True], [1]), "fold 0: train rows must be integer row numbers, got bool"),
        (([0, 1], [2.0]), "fold 0: test rows must be integer row numbers, got float64"),
        (([0, -1], [2]), "fold 0: train row -1 is outside 0..2"),
        (([0, 1], [2, 3, 5]), "fold 0: test row 3 is outside 0..2"),
        (([0, 1, 3], [2]), "fold 0: train row 3 is outside 0..2"),
        (([[0, 1]], [2]), r"fold 0: train rows must be one-dimensional, got shape \(1, 2\)"),
    ],
)
def test_folds_refuse_anything_but_row_numbers_of_the_data(
    fold: tuple[Any, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=f"^{message}$"):
        _folds([fold], np.zeros(3), None)


def test_a_later_fold_is_named_by_its_number_and_an_empty_part_is_kept() -> None:
    with pytest.raises(ValueError, match=r"^fold 1: test row 7 is outside 0\.\.3$"):
        _folds([([0, 1], [2, 3]), ([2, 3], [7])], np.zeros(4), None)
    ((train, test),) = _folds([([], [0, 1])], np.zeros(2), None)
    assert train.dtype == np.intp and train.size == 0 and test.tolist() == [0, 1]
