"""Every metric against scikit-learn's on random inputs (to 1e-9), plus the input checks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import sklearn.metrics as skm
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from model import metrics as m

REGRESSION: list[tuple[Callable[..., float], Callable[..., Any]]] = [
    (m.mean_squared_error, skm.mean_squared_error),
    (m.root_mean_squared_error, skm.root_mean_squared_error),
    (m.mean_absolute_error, skm.mean_absolute_error),
    (m.r2_score, skm.r2_score),
    (m.mean_absolute_percentage_error, skm.mean_absolute_percentage_error),
]

finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)


@pytest.mark.parametrize(("ours", "ref"), REGRESSION, ids=lambda f: f.__name__)
def test_regression_metrics_match_sklearn_on_random_data(
    ours: Callable[..., float], ref: Callable[..., Any]
) -> None:
    rng = np.random.default_rng(0)
    for n in (1, 2, 7, 500):
        y = rng.normal(180_000, 80_000, n)
        p = y + rng.normal(0, 20_000, n)
        if n == 1 and ours is m.r2_score:  # sklearn returns NaN with a warning; we refuse
            with pytest.raises(ValueError, match="at least two samples"):
                ours(y, p)
            continue
        assert ours(y, p) == pytest.approx(float(ref(y, p)), rel=1e-9, abs=1e-12)


@settings(max_examples=40, deadline=None)
@given(
    st.integers(2, 30).flatmap(
        lambda n: st.tuples(
            arrays(np.float64, n, elements=finite), arrays(np.float64, n, elements=finite)
        )
    )
)
def test_regression_metrics_property(pair: tuple[np.ndarray, np.ndarray]) -> None:
    y, p = pair
    for ours, ref in REGRESSION:
        assert ours(y, p) == pytest.approx(float(ref(y, p)), rel=1e-9, abs=1e-9), ours.__name__


def test_r2_constant_target_follows_sklearn() -> None:
    y = np.full(5, 3.0)
    assert m.r2_score(y, y) == skm.r2_score(y, y) == 1.0
    assert m.r2_score(y, y + 1) == skm.r2_score(y, y + 1) == 0.0


def test_mape_with_zero_target_is_finite_like_sklearn() -> None:
    y, p = np.array([0.0, 2.0]), np.array([1.0, 1.0])
    assert m.mean_absolute_percentage_error(y, p) == pytest.approx(
        skm.mean_absolute_percentage_error(y, p), rel=1e-12
    )


@pytest.mark.parametrize(
    "fn", [f for f, _ in REGRESSION] + [m.accuracy_score, m.f1_score], ids=lambda f: f.__name__
)
def test_bad_inputs_raise_clear_errors(fn: Callable[..., float]) -> None:
    with pytest.raises(ValueError, match="different lengths: 3 vs 2"):
        fn([1.0, 2.0, 3.0], [1.0, 2.0])
    with pytest.raises(ValueError, match=r"at least (one|1)"):
        fn([], [])
    with pytest.raises(ValueError, match="y_true"):
        fn([1.0, np.nan], [1.0, 2.0])
    with pytest.raises(ValueError, match="1-D"):
        fn([[1.0, 2.0]], [[1.0, 2.0]])


def test_regression_rejects_infinite_prediction() -> None:
    with pytest.raises(ValueError, match="y_pred"):
        m.mean_squared_error([1.0, 2.0], [1.0, np.inf])


# --------------------------------------------------------------------------- classification

AVERAGES: list[m.Average] = ["macro", "micro", "weighted"]
PRF = [
    (m.precision_score, skm.precision_score),
    (m.recall_score, skm.recall_score),
    (m.f1_score, skm.f1_score),
]


@pytest.mark.parametrize("seed", range(5))
def test_classification_metrics_match_sklearn_multiclass(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, k = 300, 2 + seed
    y = rng.integers(0, k, n)
    p = np.where(rng.random(n) < 0.6, y, rng.integers(0, k + 1, n))  # label k never true
    assert m.accuracy_score(y, p) == pytest.approx(skm.accuracy_score(y, p), abs=1e-12)
    np.testing.assert_array_equal(m.confusion_matrix(y, p), skm.confusion_matrix(y, p))
    for avg in AVERAGES:
        for ours, ref in PRF:
            expected = ref(y, p, average=avg, zero_division=0.0)
            assert ours(y, p, average=avg) == pytest.approx(expected, abs=1e-9), (ours, avg)


@settings(max_examples=30, deadline=None)
@given(
    st.integers(1, 40).flatmap(
        lambda n: st.tuples(
            arrays(np.int64, n, elements=st.integers(0, 1)),
            arrays(np.int64, n, elements=st.integers(0, 1)),
        )
    )
)
def test_binary_prf_property(pair: tuple[np.ndarray, np.ndarray]) -> None:
    y, p = pair
    for avg in ["binary", *AVERAGES]:
        ref = skm.precision_recall_fscore_support(y, p, average=avg, zero_division=0.0)[:3]
        got = [m.precision_score(y, p, average=avg), m.recall_score(y, p, average=avg)]
        got.append(m.f1_score(y, p, average=avg))
        np.testing.assert_allclose(got, ref, atol=1e-9, err_msg=avg)


def test_string_labels_and_pos_label() -> None:
    y = np.array(["cheap", "dear", "dear", "cheap", "dear"])
    p = np.array(["dear", "dear", "cheap", "cheap", "dear"])
    for ours, ref in PRF:
        assert ours(y, p, pos_label="dear") == pytest.approx(ref(y, p, pos_label="dear"))
    np.testing.assert_array_equal(
        m.confusion_matrix(y, p, labels=["dear", "cheap"]),
        skm.confusion_matrix(y, p, labels=["dear", "cheap"]),
    )
    with pytest.raises(ValueError, match="pos_label=1 is not a label"):
        m.f1_score(y, p)


def test_binary_average_refuses_multiclass() -> None:
    with pytest.raises(ValueError, match="average='binary' needs at most two labels, got 3"):
        m.precision_score([0, 1, 2], [0, 1, 2])
    with pytest.raises(ValueError, match="average must be"):
        m.recall_score([0, 1], [0, 1], average="samples")  # type: ignore[arg-type]


@pytest.mark.parametrize("seed", range(4))
def test_roc_auc_matches_sklearn_with_ties(seed: int) -> None:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 200)
    score = np.round(rng.normal(y * 0.7, 1.0), 1)  # rounding makes many ties
    assert m.roc_auc_score(y, score) == pytest.approx(skm.roc_auc_score(y, score), abs=1e-12)
    labels = np.where(y == 1, "yes", "no")  # the larger label, "yes", is positive
    assert m.roc_auc_score(labels, score) == pytest.approx(
        skm.roc_auc_score(labels, score), abs=1e-12
    )


@settings(max_examples=30, deadline=None)
@given(
    st.integers(2, 30).flatmap(
        lambda n: st.tuples(
            arrays(np.int64, n, elements=st.integers(0, 1)),
            arrays(np.float64, n, elements=st.integers(-3, 3).map(float)),
        )
    )
)
def test_roc_auc_property(pair: tuple[np.ndarray, np.ndarray]) -> None:
    y, s = pair
    if len(np.unique(y)) < 2:
        with pytest.raises(ValueError, match="exactly two classes"):
            m.roc_auc_score(y, s)
    else:
        assert m.roc_auc_score(y, s) == pytest.approx(skm.roc_auc_score(y, s), abs=1e-12)


def test_roc_auc_bad_inputs() -> None:
    with pytest.raises(ValueError, match="different lengths"):
        m.roc_auc_score([0, 1, 1], [0.1, 0.2])
    with pytest.raises(ValueError, match="y_score"):
        m.roc_auc_score([0, 1], [0.1, np.nan])


# --------------------------------------------------------------------------- clustering


def test_inertia_matches_a_literal_loop_and_sklearn_kmeans() -> None:
    from sklearn.cluster import KMeans

    rng = np.random.default_rng(3)
    X = rng.normal(size=(120, 3))
    km = KMeans(n_clusters=4, n_init=2, random_state=0).fit(X)
    ours = m.inertia(X, km.labels_, km.cluster_centers_)
    loop = sum(
        float(np.sum((x - km.cluster_centers_[k]) ** 2)) for x, k in zip(X, km.labels_, strict=True)
    )
    assert ours == pytest.approx(loop, rel=1e-12)
    assert ours == pytest.approx(km.inertia_, rel=1e-6)  # sklearn's own float rounding
    with pytest.raises(ValueError, match="labels must be integers in"):
        m.inertia(X, km.labels_ + 10, km.cluster_centers_)
    with pytest.raises(ValueError, match="centers have 2 features but X has 3"):
        m.inertia(X, km.labels_, km.cluster_centers_[:, :2])


@pytest.mark.parametrize("seed", range(3))
def test_silhouette_matches_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    X = np.vstack([rng.normal(c, 1.0, size=(40 + 10 * seed, 2)) for c in (0, 3, 6)])
    labels = np.repeat([0, 1, 2], 40 + 10 * seed)
    labels[:3] = 7  # a small extra cluster
    labels[5] = 9  # a singleton: s = 0 for it
    assert m.silhouette_score(X, labels) == pytest.approx(skm.silhouette_score(X, labels), rel=1e-9)


def test_silhouette_label_count_checked() -> None:
    X = np.arange(8.0).reshape(4, 2)
    with pytest.raises(ValueError, match="2 <= number of labels"):
        m.silhouette_score(X, [0, 0, 0, 0])
    with pytest.raises(ValueError, match="different numbers of samples"):
        m.silhouette_score(X, [0, 1])


# --------------------------------------------------------------------------- mutation holes


def test_confusion_matrix_with_labels_that_leave_classes_out() -> None:
    y_true = ["a", "b", "c", "a", "c", "b"]
    y_pred = ["a", "c", "c", "b", "a", "b"]
    for labels in (["c", "a"], ["b"], ["a", "b", "c", "zz"]):
        ours = m.confusion_matrix(y_true, y_pred, labels=labels)
        np.testing.assert_array_equal(ours, skm.confusion_matrix(y_true, y_pred, labels=labels))
    with pytest.raises(ValueError, match="non-empty"):
        m.confusion_matrix(y_true, y_pred, labels=[])
    with pytest.raises(ValueError, match="duplicates"):
        m.confusion_matrix(y_true, y_pred, labels=["a", "a"])


def test_roc_auc_with_float_labels_and_missing_labels() -> None:
    y = np.array([0.0, 1.0, 1.0, 0.0, 1.0])
    s = np.array([0.1, 0.8, 0.4, 0.35, 0.9])
    assert m.roc_auc_score(y, s) == pytest.approx(skm.roc_auc_score(y, s), abs=1e-12)
    assert m.roc_auc_score(y.astype(int), s) == m.roc_auc_score(y, s)
    with pytest.raises(ValueError, match="missing or infinite"):
        m.roc_auc_score(np.array([0.0, 1.0, np.nan]), [0.1, 0.2, 0.3])


@pytest.mark.parametrize("labels", [[0, 1, 2], [0, -1, 1], [0, 0.5, 1]])
def test_inertia_refuses_labels_that_index_no_centre(labels: list[float]) -> None:
    X = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]])
    centers = np.array([[0.0, 0.0], [2.0, 2.0]])  # two centres: labels 0 and 1 only
    with pytest.raises(ValueError, match=r"integers in \[0, 2\)"):
        m.inertia(X, labels, centers)
    assert m.inertia(X, [0, 0, 1], centers) == pytest.approx(2.0)
