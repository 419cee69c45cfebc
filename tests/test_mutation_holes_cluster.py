"""model.cluster: what mutation testing found the other tests let through (issue 20).

Each hyperparameter is refused with an error that names it, its lower limit and the value
given; the limits themselves are accepted.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest

from model.cluster import KMeans

X = np.array([[0.0, 0.0], [0.1, 0.0], [5.0, 5.0], [5.1, 5.0]])


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"n_clusters": 0}, "n_clusters must be an integer >= 1, got 0"),
        ({"n_clusters": 2.0}, "n_clusters must be an integer >= 1, got 2.0"),
        ({"n_clusters": True}, "n_clusters must be an integer >= 1, got True"),
        ({"n_init": 0}, "n_init must be an integer >= 1, got 0"),
        ({"max_iter": 0}, "max_iter must be an integer >= 1, got 0"),
        ({"max_iter": np.int64(-3)}, "max_iter must be an integer >= 1, got np.int64(-3)"),
        ({"n_clusters": 5}, "n_clusters=5 is greater than the 4 samples"),
        ({"tol": -1e-9}, "tol must be >= 0, got -1e-09"),
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
