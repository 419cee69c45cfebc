"""model.cluster.KMeans against scikit-learn's KMeans and against the definitions."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray
from sklearn import cluster as sk_cluster
from sklearn import datasets
from sklearn.preprocessing import StandardScaler

from model.base import NotFittedError
from model.cluster import KMeans, kmeans_plus_plus

DATA: dict[str, NDArray[np.float64]] = {
    "iris": datasets.load_iris(return_X_y=True)[0],
    "wine": StandardScaler().fit_transform(datasets.load_wine(return_X_y=True)[0]),
    "blobs": datasets.make_blobs(1000, n_features=4, centers=6, random_state=0)[0],
}
# Six well-separated blobs (centres 20 apart, unit spread), labelled by blob.
SEPARATED, SEPARATED_LABELS = datasets.make_blobs(
    600, centers=20.0 * np.eye(6, 4, dtype=np.float64) + 20.0 * np.eye(6, 4, k=-2), random_state=1
)


@pytest.mark.parametrize(
    ("name", "k"), [("iris", 2), ("iris", 3), ("wine", 2), ("wine", 3), ("blobs", 6)]
)
def test_inertia_within_one_percent_of_sklearn(name: str, k: int) -> None:
    X = DATA[name]
    ours = KMeans(n_clusters=k, random_state=0).fit(X)
    ref = sk_cluster.KMeans(n_clusters=k, n_init=10, random_state=0).fit(X)
    assert ours.inertia_ <= ref.inertia_ * 1.01


def test_inertia_on_many_local_minima_matches_sklearn_on_average() -> None:
    """With k above the data's natural number of groups, runs end in different local minima
    (single seeds differ by ±2 % either way); over seeds the means must agree within 1 %."""
    X = DATA["wine"]
    ratios = [
        KMeans(n_clusters=6, random_state=s).fit(X).inertia_
        / sk_cluster.KMeans(n_clusters=6, n_init=10, random_state=s).fit(X).inertia_
        for s in range(4)
    ]
    assert np.mean(ratios) <= 1.01


def test_lloyd_from_given_centres_matches_sklearn() -> None:
    """Lloyd's iterations are deterministic from a given start: same fixed point as sklearn."""
    X = DATA["wine"]
    start = X[[0, 60, 130, 170]]
    ours = KMeans(n_clusters=4, init=start, tol=0.0).fit(X)
    ref = sk_cluster.KMeans(n_clusters=4, init=start, n_init=1, tol=0.0).fit(X)
    np.testing.assert_allclose(ours.cluster_centers_, ref.cluster_centers_, rtol=1e-9)
    np.testing.assert_array_equal(ours.labels_, ref.labels_)
    assert ours.inertia_ == pytest.approx(ref.inertia_, rel=1e-9)


def test_fitted_state_follows_the_definitions() -> None:
    X = DATA["iris"]
    km = KMeans(n_clusters=3, tol=0.0, random_state=1).fit(X)
    d2 = ((X[:, None, :] - km.cluster_centers_[None, :, :]) ** 2).sum(axis=2)
    np.testing.assert_array_equal(km.labels_, d2.argmin(axis=1))
    np.testing.assert_array_equal(km.predict(X), km.labels_)
    assert km.inertia_ == pytest.approx(d2.min(axis=1).sum(), rel=1e-12)
    assert km.score(X) == pytest.approx(-km.inertia_, rel=1e-12)
    np.testing.assert_allclose(km.transform(X), np.sqrt(d2), atol=1e-9)
    for c in range(3):  # converged: every centre is the mean of its points
        np.testing.assert_allclose(km.cluster_centers_[c], X[km.labels_ == c].mean(axis=0))
    assert 1 <= km.n_iter_ <= km.max_iter


def test_seeded_runs_are_reproducible() -> None:
    X = DATA["blobs"]
    a = KMeans(n_clusters=5, n_init=3, random_state=7).fit(X)
    b = KMeans(n_clusters=5, n_init=3, random_state=7).fit(X)
    np.testing.assert_array_equal(a.cluster_centers_, b.cluster_centers_)
    np.testing.assert_array_equal(a.labels_, b.labels_)


def test_kmeans_plus_plus_picks_distinct_data_points() -> None:
    X = SEPARATED
    centers = kmeans_plus_plus(X, 6, np.random.default_rng(0))
    rows = [int(np.flatnonzero((c == X).all(axis=1))[0]) for c in centers]
    # Well-separated blobs: D(x)² sampling lands one centre in each blob.
    assert len(set(SEPARATED_LABELS[rows].tolist())) == 6
    km = KMeans(n_clusters=6, n_init=1, random_state=0).fit(X)
    pairs = set(zip(km.labels_.tolist(), SEPARATED_LABELS.tolist(), strict=True))
    assert len(pairs) == 6  # the clusters are the blobs


def test_empty_cluster_is_moved_onto_a_point() -> None:
    X = DATA["iris"]
    start = np.vstack([X[:2], np.full((1, 4), 1e6)])  # the third centre is far from all data
    km = KMeans(n_clusters=3, init=start).fit(X)
    assert np.bincount(km.labels_, minlength=3).min() > 0


def test_random_init_and_single_cluster() -> None:
    X = DATA["iris"]
    km = KMeans(n_clusters=1, init="random", random_state=0).fit(X)
    np.testing.assert_allclose(km.cluster_centers_[0], X.mean(axis=0))
    assert km.inertia_ == pytest.approx(((X - X.mean(axis=0)) ** 2).sum())


def test_errors() -> None:
    X = DATA["iris"]
    with pytest.raises(NotFittedError):
        KMeans().predict(X)
    with pytest.raises(ValueError, match="n_clusters=8 is greater than the 5 samples"):
        KMeans().fit(X[:5])
    with pytest.raises(ValueError, match="init must be 'k-means\\+\\+', 'random' or an array"):
        KMeans(init="kmeans").fit(X)
    with pytest.raises(ValueError, match=r"init: expected 3 centres of 4 features"):
        KMeans(n_clusters=3, init=X[:2]).fit(X)
    with pytest.raises(ValueError, match=r"n_init must be an integer in \[1, inf\)"):
        KMeans(n_init=0).fit(X)
    with pytest.raises(ValueError, match="X has 2 features, but KMeans was fitted with 4"):
        KMeans(n_clusters=2, random_state=0).fit(X).predict(X[:, :2])
