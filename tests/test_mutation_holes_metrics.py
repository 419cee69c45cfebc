"""model.metrics: what mutation testing found the other tests let through (issue 20).

Silhouette at the edges of its label-count rule, with two-member clusters and across blocks of
rows, against scikit-learn; the input errors name the field first (``name: problem``, as
``check_array`` words them) and quote the right sizes.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import sklearn.metrics as skm

from model import metrics as m


def test_silhouette_at_both_ends_of_the_label_count_rule() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(6, 2))
    for labels in ([0, 0, 0, 1, 1, 1], [0, 1, 2, 3, 4, 4]):  # k = 2 and k = n - 1 are allowed
        assert m.silhouette_score(X, labels) == pytest.approx(
            skm.silhouette_score(X, labels), rel=1e-12
        )
    for labels in ([0] * 6, [0, 1, 2, 3, 4, 5]):  # k = 1 and k = n are not
        with pytest.raises(ValueError, match="2 <= number of labels <= n_samples - 1"):
            m.silhouette_score(X, labels)


def test_silhouette_with_two_member_clusters_matches_sklearn() -> None:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(7, 3))
    labels = [0, 0, 1, 1, 2, 2, 2]  # a = the one distance to the other member
    assert m.silhouette_score(X, labels) == pytest.approx(
        skm.silhouette_score(X, labels), rel=1e-12
    )


def test_silhouette_over_several_blocks_of_rows_matches_sklearn() -> None:
    rng = np.random.default_rng(2)
    X = rng.normal(size=(1500, 2))  # n * n * d > 2**22: rows are taken in two blocks
    labels = rng.integers(0, 4, size=1500)
    assert m.silhouette_score(X, labels) == pytest.approx(skm.silhouette_score(X, labels), rel=1e-9)


def test_silhouette_of_identical_points_is_quiet() -> None:
    X = np.array([[1.0, 1.0], [1.0, 1.0], [1.0, 1.0], [1.0, 1.0]])  # a = b = 0: 0/0 -> 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert m.silhouette_score(X, [0, 0, 1, 1]) == 0.0


def test_clustering_errors_name_the_field_and_the_sizes() -> None:
    X = np.zeros((5, 3))
    with pytest.raises(ValueError, match=r"^labels: expected a 1-D array"):
        m.inertia(X, np.zeros((5, 1)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"different numbers of samples: 5 vs 4$"):
        m.silhouette_score(X, [0, 1, 0, 1])
    with pytest.raises(ValueError, match=r"^centers: "):
        m.inertia(X, [0] * 5, [1.0, 2.0, 3.0])  # a 1-D array of centres
    with pytest.raises(ValueError, match=r"^centers: "):
        m.inertia(X, [0] * 5, [[1.0, np.nan, 3.0]])
    centers = np.zeros((4, 3))  # four centres of three features: labels 0 to 3
    with pytest.raises(ValueError, match=r"integers in \[0, 4\) indexing the rows of centers$"):
        m.inertia(X, [0, 1, 2, 3, 4], centers)


def test_roc_auc_errors_name_the_field() -> None:
    with pytest.raises(ValueError, match=r"^y_score: "):
        m.roc_auc_score([0, 1, 1], [0.1, np.inf, 0.3])
    with pytest.raises(ValueError, match=r"^y_true: expected a 1-D array of labels"):
        m.roc_auc_score([[0, 1], [1, 0]], [0.1, 0.2])
    with pytest.raises(ValueError, match=r"^y_true: holds missing or infinite labels$"):
        m.roc_auc_score([0.0, 1.0, np.inf], [0.1, 0.2, 0.3])


def test_r2_refuses_a_single_sample() -> None:
    with pytest.raises(ValueError, match=r"^r2_score needs at least two samples, got 1$"):
        m.r2_score([3.0], [2.0])


def test_regression_errors_name_the_field() -> None:
    with pytest.raises(ValueError, match=r"^y_true: "):
        m.mean_squared_error([1.0, np.nan], [1.0, 2.0])
    with pytest.raises(ValueError, match=r"^y_pred: "):
        m.mean_squared_error([1.0, 2.0], [np.inf, 2.0])


def test_labels_that_cannot_be_ordered_are_refused() -> None:
    t = np.array(["a", 1, "a"], dtype=object)
    with pytest.raises(ValueError, match=r"^labels cannot be compared with each other: "):
        m.confusion_matrix(t, t)
    with pytest.raises(ValueError, match=r"^labels cannot be compared with each other: "):
        m.f1_score(t, t, average="macro")


def test_confusion_matrix_label_errors_are_exact() -> None:
    y = ["a", "b", "a"]
    for labels in ([], [["a", "b"]]):
        with pytest.raises(ValueError, match=r"^labels: expected a non-empty 1-D list of labels$"):
            m.confusion_matrix(y, y, labels=labels)
    with pytest.raises(ValueError, match=r"^labels: holds duplicates$"):
        m.confusion_matrix(y, y, labels=["b", "a", "b"])


def test_label_errors_name_the_field() -> None:
    with pytest.raises(ValueError, match=r"^y_true: holds missing or infinite labels$"):
        m.accuracy_score([0.0, np.nan], [0, 1])
    with pytest.raises(ValueError, match=r"^y_pred: expected a 1-D array of labels"):
        m.accuracy_score([0, 1], [[0, 1]])
    with pytest.raises(ValueError, match=r"^y_pred: expected at least one label, got none$"):
        m.accuracy_score([0], [])


def test_confusion_matrix_counts_are_integers_as_in_sklearn() -> None:
    y_true, y_pred = [0, 1, 1, 2], [0, 2, 1, 2]
    ours = m.confusion_matrix(y_true, y_pred)
    assert ours.dtype == np.int64 == skm.confusion_matrix(y_true, y_pred).dtype
