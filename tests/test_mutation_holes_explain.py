"""model.explain: what mutation testing found the other tests let through (issue 20).

The explanation's records and prices follow their definitions, contributions of columns from
one input are summed under its name in the order the names first appear.
"""

from __future__ import annotations

import numpy as np

from model.explain import Explanation, _group


def test_group_sums_columns_of_one_name_in_order_of_first_sight() -> None:
    c = np.array([[1.0, 2.0, 4.0, 8.0], [16.0, 32.0, 64.0, 128.0]])
    grouped, names = _group(c, ["b", "a", "b", "c"])
    assert names == ["b", "a", "c"]
    np.testing.assert_array_equal(grouped, [[5.0, 2.0, 8.0], [80.0, 32.0, 128.0]])
    same, names = _group(c, ["w", "x", "y", "z"])
    assert same is c and names == ["w", "x", "y", "z"]


def test_records_and_prices_follow_the_definitions() -> None:
    b = np.array([1.0, 2.0])
    c = np.array([[0.5, -0.25], [0.0, 1.0]])
    for space, inverse in (("price", lambda s: s), ("log", np.exp), ("log1p", np.expm1)):
        e = Explanation(space, "saabas", ["a", "b"], b, c)  # type: ignore[arg-type]
        np.testing.assert_allclose(e.prices(), inverse(np.array([1.25, 3.0])), rtol=1e-15)
        assert e.records() == [
            {
                "space": space,
                "method": "saabas",
                "baseline": 1.0,
                "contributions": {"a": 0.5, "b": -0.25},
            },
            {
                "space": space,
                "method": "saabas",
                "baseline": 2.0,
                "contributions": {"a": 0.0, "b": 1.0},
            },
        ]
