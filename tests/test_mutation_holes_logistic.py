"""model.logistic: what mutation testing found the other tests let through (issue 20).

Each hyperparameter is refused with an error that names it, the range it must lie in and the
value given, and the boundary values of each range are accepted or refused as that range says.
"""

from __future__ import annotations

import re
import warnings
from typing import Any

import numpy as np
import pytest

from model.logistic import LogisticRegression

X = np.array([[-2.0], [-1.0], [0.5], [1.0], [2.0], [-0.5]])
Y = np.array([0, 0, 1, 1, 1, 0])


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"C": 0.0}, "C must be > 0, got 0.0"),
        ({"C": -1.0}, "C must be > 0, got -1.0"),
        ({"C": float("nan")}, "C must be > 0, got nan"),
        ({"solver": "lbfgs"}, "solver must be 'newton' or 'gd', got 'lbfgs'"),
        ({"learning_rate": 0.0}, "learning_rate must be > 0, got 0.0"),
        ({"max_iter": 0}, "max_iter must be a positive integer, got 0"),
        ({"max_iter": 2.5}, "max_iter must be a positive integer, got 2.5"),
        ({"tol": -1e-9}, "tol must be >= 0, got -1e-09"),
        ({"tol": float("nan")}, "tol must be >= 0, got nan"),
        (
            {"multi_class": "ovr"},
            "multi_class must be 'auto' or 'multinomial', got 'ovr'",
        ),
    ],
)
def test_each_hyperparameter_is_refused_by_name(params: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        LogisticRegression(**params).fit(X, Y)


@pytest.mark.parametrize(
    "params",
    [{"max_iter": 1}, {"tol": 0.0}, {"C": 1e-300}, {"solver": "gd", "learning_rate": 1e-300}],
)
def test_the_edges_of_each_range_are_accepted(params: dict[str, Any]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # one step may not converge: that is not the point
        model = LogisticRegression(**{"max_iter": 1, **params}).fit(X, Y)
    assert model.coef_.shape == (1, 1)
