"""model.cluster: what mutation testing found the other tests let through (issue 20).

Each hyperparameter is refused with an error that names it, its lower limit and the value
given; the limits themselves are accepted.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest
from sklearn import cluster as sk_cluster
from sklearn import datasets

from model.base import NotFittedError
from model.cluster import KMeans, kmeans_plus_plus, lloyd, squared_distances

X = np.array([[0.0, 0.0], [0.1, 0.0], [5.0, 5.0], [5.1, 5.0]])


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"n_clusters": 0}, "n_clusters must be an integer in [1, inf), got 0"),
        ({"n_clusters": 2.0}, "n_clusters must be an integer in [1, inf), got 2.0"),
        ({"n_clusters": True}, "n_clusters must be an integer in [1, inf), got True"),
        ({"n_init": 0}, "n_init must be an integer in [1, inf), got 0"),
        ({"max_iter": 0}, "max_iter must be an integer in [1, inf), got 0"),
        ({"max_iter": np.int64(-3)}, "max_iter must be an integer in [1, inf), got np.int64(-3)"),
        ({"n_clusters": 5}, "n_clusters=5 is greater than the 4 samples"),
        ({"tol": -1e-9}, "tol must be a number in [0, inf), got -1e-09"),
        ({"init": "kmeans"}, "init must be 'k-means++', 'random' or an array, got 'kmeans'"),
    ],
)
def test_each_hyperparameter_is_refused_by_name(params: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        KMeans(**{"n_clusters": 2, **params}).fit(X)


def test_the_limits_are_accepted() -> None:
    model = KMeans(n_clusters=4, n_init=1, max_iter=1, tol=0.0, random_state=0).fit(X)
    assert model.n_iter_ == 1
    assert model.inertia_ == pytest.approx(0.0, abs=1e-12)  # one centre per point
    numpy_ints = KMeans(n_clusters=np.int64(1), n_init=np.int32(1))  # type: ignore[arg-type]
    assert numpy_ints.fit(X).cluster_centers_.shape == (1, 2)


SEPARATED = datasets.make_blobs(
    90,
    n_features=2,
    centers=[[0.0, 0.0], [50.0, 0.0], [0.0, 50.0]],
    cluster_std=0.5,
    random_state=1,
)[0]
BLOBS = datasets.make_blobs(300, n_features=2, centers=5, cluster_std=3.0, random_state=3)[0]


@pytest.mark.parametrize("offset", [0.0, 1e5], ids=["centred", "offset"])
@pytest.mark.parametrize("tol", [0.0, 1e-3, 1e-2, 1e-1])
def test_tol_is_relative_to_the_mean_variance_as_in_sklearn(tol: float, offset: float) -> None:
    # a unit that would stop an absolute tol at once; columns far apart, whose pooled variance
    # would be far above the mean of their variances
    X = BLOBS * 1000.0 + np.array([offset, -offset])
    start = X[:5]
    ours = KMeans(n_clusters=5, init=start, tol=tol).fit(X)
    ref = sk_cluster.KMeans(n_clusters=5, init=start, n_init=1, tol=tol, algorithm="lloyd")
    ref.fit(X)
    assert ours.n_iter_ == ref.n_iter_
    np.testing.assert_allclose(ours.cluster_centers_, ref.cluster_centers_, rtol=1e-12)
    np.testing.assert_array_equal(ours.labels_, ref.labels_)
    assert ours.inertia_ == pytest.approx(ref.inertia_, rel=1e-12)


def test_max_iter_bounds_the_iterations() -> None:
    start = BLOBS[:5]
    for max_iter in (1, 2, 3):
        km = KMeans(n_clusters=5, init=start, tol=0.0, max_iter=max_iter).fit(BLOBS)
        ref = sk_cluster.KMeans(
            n_clusters=5, init=start, n_init=1, tol=0.0, max_iter=max_iter, algorithm="lloyd"
        ).fit(BLOBS)
        assert km.n_iter_ == max_iter
        np.testing.assert_allclose(km.cluster_centers_, ref.cluster_centers_, rtol=1e-12)


class Recording:
    """A Generator that records the candidates k-means++ draws."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.draws: list[np.ndarray] = []

    def integers(self, *args: Any, **kwargs: Any) -> Any:
        out = self.rng.integers(*args, **kwargs)
        self.draws.append(np.atleast_1d(out))
        return out

    def choice(self, *args: Any, **kwargs: Any) -> Any:
        out = self.rng.choice(*args, **kwargs)
        self.draws.append(np.atleast_1d(out))
        return out


@pytest.mark.parametrize("k", [2, 3, 8, 21])
def test_kmeans_plus_plus_keeps_the_best_of_2_plus_ln_k_candidates(k: int) -> None:
    X = BLOBS
    rng = Recording(k)
    centers = kmeans_plus_plus(X, k, rng)  # type: ignore[arg-type]
    first, *rounds = rng.draws
    assert first.shape == (1,) and [len(r) for r in rounds] == [2 + int(np.log(k))] * (k - 1)
    np.testing.assert_array_equal(centers[0], X[first[0]])
    for c, candidates in enumerate(rounds, start=1):
        before = ((X[:, None, :] - centers[None, :c, :]) ** 2).sum(axis=2).min(axis=1)
        potential = [np.minimum(before, ((X - X[i]) ** 2).sum(axis=1)).sum() for i in candidates]
        np.testing.assert_array_equal(centers[c], X[candidates[int(np.argmin(potential))]])


def test_kmeans_plus_plus_on_identical_points() -> None:
    X = np.ones((5, 2))
    rng = Recording(0)
    np.testing.assert_array_equal(kmeans_plus_plus(X, 3, rng), np.ones((3, 2)))  # type: ignore[arg-type]
    assert [len(d) for d in rng.draws] == [1, 3, 3]  # D(x)² is 0 everywhere: uniform draws
    assert KMeans(n_clusters=3, random_state=0).fit(X).inertia_ == 0.0


def test_empty_clusters_move_onto_the_points_farthest_from_their_centres() -> None:
    X = np.array([[0.0], [1.0], [2.0], [10.0], [13.0]])
    start = np.array([[1.0], [1e6], [2e6]])  # both far centres get no point
    km = KMeans(n_clusters=3, init=start, max_iter=1).fit(X)
    # the filled centre moves to its points' mean, 5.2; the empty ones onto the points farthest
    # from the centre they were assigned to (1): 13, then 10
    np.testing.assert_allclose(km.cluster_centers_, [[5.2], [13.0], [10.0]])


def test_the_best_of_n_init_runs_is_kept() -> None:
    X = BLOBS
    for seed in range(3):
        rng = np.random.default_rng(seed)
        tol = 1e-4 * float(X.var(axis=0).mean())
        runs = [lloyd(X, kmeans_plus_plus(X, 7, rng), 300, tol) for _ in range(4)]
        best = min(runs, key=lambda run: run[2])
        km = KMeans(n_clusters=7, n_init=4, random_state=seed).fit(X)
        np.testing.assert_array_equal(km.cluster_centers_, best[0])
        assert (km.inertia_, km.n_iter_) == (best[2], best[3])
        assert km.inertia_ < max(run[2] for run in runs)  # the runs differ, the best is kept


def test_a_given_start_runs_once() -> None:
    start = BLOBS[[0, 1, 2]]
    once = KMeans(n_clusters=3, init=start, n_init=1).fit(BLOBS)
    many = KMeans(n_clusters=3, init=start, n_init=5).fit(BLOBS)
    np.testing.assert_array_equal(once.cluster_centers_, many.cluster_centers_)
    np.testing.assert_array_equal(start, BLOBS[[0, 1, 2]])  # the start is not changed


def test_new_rows_are_measured_against_the_centres() -> None:
    km = KMeans(n_clusters=4, random_state=0).fit(BLOBS)
    Xn = datasets.make_blobs(40, n_features=2, centers=3, random_state=9)[0]
    d2 = ((Xn[:, None, :] - km.cluster_centers_[None]) ** 2).sum(axis=2)
    np.testing.assert_allclose(km.transform(Xn), np.sqrt(d2), rtol=1e-9)
    np.testing.assert_array_equal(km.predict(Xn), d2.argmin(axis=1))
    assert km.score(Xn) == pytest.approx(-d2.min(axis=1).sum(), rel=1e-12)
    np.testing.assert_array_equal(km.fit_predict(BLOBS), km.labels_)
    np.testing.assert_allclose(
        squared_distances(Xn, Xn), ((Xn[:, None] - Xn[None]) ** 2).sum(2), atol=1e-9
    )


def test_squared_distances_are_clipped_at_zero() -> None:
    X = datasets.make_blobs(40, n_features=2, centers=3, random_state=9)[0]
    raw = (X**2).sum(axis=1)[:, None] - 2.0 * X @ X.T + (X**2).sum(axis=1)[None, :]
    if raw.min() >= 0.0:
        pytest.skip("the expansion did not go below 0 with this BLAS")
    assert squared_distances(X, X).min() == 0.0


def test_a_centre_with_one_point_stays_on_it() -> None:
    X = np.array([[0.0], [10.0], [11.0]])
    km = KMeans(n_clusters=2, init=np.array([[0.0], [10.5]]), max_iter=1).fit(X)
    np.testing.assert_array_equal(km.cluster_centers_, [[0.0], [10.5]])
    assert km.labels_.tolist() == [0, 1, 1]


def test_fitted_means_the_centres_exist() -> None:
    km = KMeans(n_clusters=2)
    km.feature_names_in_ = np.array(["a", "b"])  # type: ignore[attr-defined]  # a wrapper's
    for method in (km.predict, km.transform, km.score):
        with pytest.raises(NotFittedError, match=r"^this KMeans instance is not fitted yet"):
            method(X)


def test_defaults() -> None:
    assert KMeans().get_params() == {
        "n_clusters": 8,
        "init": "k-means++",
        "n_init": 10,
        "max_iter": 300,
        "tol": 1e-4,
        "random_state": None,
    }


def test_random_init_starts_from_distinct_rows() -> None:
    rows = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [9.0, 9.0]])
    for seed in range(10):  # five draws out of five: a repeat would show within a few seeds
        km = KMeans(n_clusters=5, init="random", n_init=1, max_iter=1, random_state=seed)
        centres = km.fit(rows).cluster_centers_
        assert sorted(map(tuple, centres.tolist())) == sorted(map(tuple, rows.tolist()))


def test_a_given_start_is_checked_as_init() -> None:
    start = np.array([[np.nan, 0.0], [1.0, 1.0]])
    message = "init: column 0 holds missing or infinite values (1 of 2); impute them first"
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        KMeans(n_clusters=2, init=start).fit(X)


def test_of_runs_with_the_same_inertia_the_first_is_kept() -> None:
    X = SEPARATED  # one partition, reached by every run, with its clusters numbered differently
    rng = np.random.default_rng(5)
    tol = 1e-4 * float(X.var(axis=0).mean())
    runs = [lloyd(X, kmeans_plus_plus(X, 3, rng), 300, tol) for _ in range(6)]
    assert len({run[2] for run in runs}) == 1
    assert len({tuple(run[1][:3].tolist()) for run in runs}) > 1  # numbered differently
    km = KMeans(n_clusters=3, n_init=6, random_state=5).fit(X)
    np.testing.assert_array_equal(km.labels_, runs[0][1])
