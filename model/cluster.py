"""k-means: ``k`` centres minimising the inertia ``Σ_i min_c ‖x_i − μ_c‖²``.

Lloyd's algorithm alternates the two steps that each lower the inertia while the other is held:

* assign every point to its nearest centre,  ``label_i = argmin_c ‖x_i − μ_c‖²``;
* move every centre to the mean of its points, ``μ_c = mean{x_i : label_i = c}``
  (the mean is the point with the least summed squared distance to them).

It stops at a local minimum, so the start matters: k-means++ (Arthur & Vassilvitskii, 2007)
draws each new centre with probability proportional to ``D(x)²``, the squared distance to the
nearest centre chosen so far, which spreads the centres out and is O(log k)-competitive in
expectation. As scikit-learn does, each draw tries ``2 + ln k`` candidates and keeps the one
that lowers the potential most ("greedy" k-means++), and the whole run is restarted
``n_init`` times from different seeds, keeping the lowest inertia.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from model.base import (
    BaseEstimator,
    FloatArray,
    TransformerMixin,
    check_array,
    check_int,
    check_is_fitted,
    check_n_features,
    check_real,
)

IntArray = NDArray[np.intp]


def squared_distances(X: FloatArray, centers: FloatArray) -> FloatArray:
    """``‖x − μ‖² = ‖x‖² − 2 x·μ + ‖μ‖²`` for every pair: one matrix product, clipped at 0
    because the expansion can go slightly negative in floating point."""
    d2 = (X**2).sum(axis=1)[:, None] - 2.0 * X @ centers.T + (centers**2).sum(axis=1)[None, :]
    return np.maximum(d2, 0.0)


def kmeans_plus_plus(X: FloatArray, k: int, rng: np.random.Generator) -> FloatArray:
    """Greedy k-means++ seeding: sample ∝ D(x)², keep the best of ``2 + ln k`` candidates."""
    n = X.shape[0]
    n_trials = 2 + int(math.log(k))
    centers = np.empty((k, X.shape[1]))
    centers[0] = X[rng.integers(n)]
    closest = squared_distances(X, centers[:1])[:, 0]
    for c in range(1, k):
        potential = closest.sum()
        if potential <= 0.0:  # every point already sits on a centre: any point will do
            candidates = rng.integers(n, size=n_trials)
        else:
            candidates = rng.choice(n, size=n_trials, p=closest / potential)
        # For each candidate, the new D(x)² if it were added; keep the lowest total.
        trial = np.minimum(closest[None, :], squared_distances(X[candidates], X))
        best = int(np.argmin(trial.sum(axis=1)))
        centers[c] = X[candidates[best]]
        closest = trial[best]
    return centers


def lloyd(
    X: FloatArray, centers: FloatArray, max_iter: int, tol: float
) -> tuple[FloatArray, IntArray, float, int]:
    """Alternate assignment and mean updates until the centres move less than ``tol``.

    ``tol`` bounds the summed squared shift of the centres. A cluster left empty is moved onto
    the point farthest from its centre, the one that lowers the inertia most. The returned
    labels and inertia are those of the returned centres (a final assignment step).
    """
    k = centers.shape[0]
    n_iter = 0
    while n_iter < max_iter:
        n_iter += 1
        d2 = squared_distances(X, centers)
        labels = np.argmin(d2, axis=1)
        counts = np.bincount(labels, minlength=k)
        sums = np.zeros_like(centers)
        np.add.at(sums, labels, X)
        new = centers.copy()
        filled = counts > 0
        new[filled] = sums[filled] / counts[filled, None]
        if not filled.all():
            far = np.argsort(d2[np.arange(len(X)), labels])[::-1]
            new[~filled] = X[far[: int((~filled).sum())]]
        shift = float(((new - centers) ** 2).sum())
        centers = new
        if shift <= tol:
            break
    d2 = squared_distances(X, centers)
    labels = np.argmin(d2, axis=1)
    inertia = float(d2[np.arange(len(X)), labels].sum())
    return centers, labels, inertia, n_iter


class KMeans(TransformerMixin, BaseEstimator):
    """k-means clustering with k-means++ seeding and ``n_init`` restarts.

    ``init`` is ``"k-means++"``, ``"random"`` (``k`` distinct data points) or an array of
    ``n_clusters`` starting centres (then a single run). ``tol`` is relative to the data: runs
    stop when the centres' summed squared shift falls below ``tol`` times the mean feature
    variance, so the criterion does not depend on the units of ``X`` (as in scikit-learn).
    """

    def __init__(
        self,
        n_clusters: int = 8,
        init: str | ArrayLike = "k-means++",
        n_init: int = 10,
        max_iter: int = 300,
        tol: float = 1e-4,
        random_state: int | None = None,
    ) -> None:
        self.n_clusters = n_clusters
        self.init = init
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state

    def _start(self, X: FloatArray, rng: np.random.Generator) -> FloatArray:
        k = self.n_clusters
        if isinstance(self.init, str):
            if self.init == "k-means++":
                return kmeans_plus_plus(X, k, rng)
            if self.init == "random":
                return X[rng.choice(X.shape[0], size=k, replace=False)].copy()
            raise ValueError(f"init must be 'k-means++', 'random' or an array, got {self.init!r}")
        centers = check_array(self.init, name="init")
        if centers.shape != (k, X.shape[1]):
            raise ValueError(
                f"init: expected {k} centres of {X.shape[1]} features, got shape {centers.shape}"
            )
        return centers.copy()

    def fit(self, X: ArrayLike, y: Any = None) -> KMeans:
        for name in ("n_clusters", "n_init", "max_iter"):
            check_int(name, getattr(self, name), 1)
        check_real("tol", self.tol, 0.0, np.inf, low_open=False, high_open=True)
        Xa = check_array(X)
        if self.n_clusters > Xa.shape[0]:
            raise ValueError(
                f"n_clusters={self.n_clusters} is greater than the {Xa.shape[0]} samples"
            )
        rng = np.random.default_rng(self.random_state)
        tol = self.tol * float(Xa.var(axis=0).mean())
        runs = 1 if not isinstance(self.init, str) else self.n_init
        best: tuple[FloatArray, IntArray, float, int] | None = None
        for _ in range(runs):
            result = lloyd(Xa, self._start(Xa, rng), self.max_iter, tol)
            if best is None or result[2] < best[2]:
                best = result
        assert best is not None
        self.cluster_centers_, self.labels_, self.inertia_, self.n_iter_ = best
        self.n_features_in_ = Xa.shape[1]
        return self

    def _check(self, X: ArrayLike) -> FloatArray:
        check_is_fitted(self, "cluster_centers_")
        Xa = check_array(X)
        check_n_features(self, Xa)
        return Xa

    def transform(self, X: ArrayLike) -> FloatArray:
        """Euclidean distance of every row to every centre, shape ``(n, n_clusters)``."""
        return np.sqrt(squared_distances(self._check(X), self.cluster_centers_))

    def predict(self, X: ArrayLike) -> IntArray:
        """Index of the nearest centre."""
        return np.argmin(squared_distances(self._check(X), self.cluster_centers_), axis=1)

    def fit_predict(self, X: ArrayLike, y: Any = None) -> IntArray:
        return self.fit(X).labels_

    def score(self, X: ArrayLike, y: Any = None) -> float:
        """Minus the inertia of ``X`` (higher is better, as scikit-learn's)."""
        d2 = squared_distances(self._check(X), self.cluster_centers_)
        return -float(d2.min(axis=1).sum())
