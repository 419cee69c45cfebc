"""model.drift: what mutation testing found the other tests let through (issue 20).

A categorical profile names each category by the text of the value as given (``1`` is "1",
not "1.0"), profiles a one-value column, and refuses an empty one with an error that names it.
"""

from __future__ import annotations

import numpy as np
import pytest

from model.drift import categorical_profile, numeric_profile, profile_psi


def test_categories_are_the_values_as_given() -> None:
    profile = categorical_profile([1, 2.5, 1, 4])  # numbers only: NumPy alone would say "1.0"
    assert profile["categories"] == ["1", "2.5", "4"]
    assert profile["shares"] == pytest.approx([0.5, 0.25, 0.25, 0.0, 0.0])
    assert profile_psi(profile, [1, 2.5, 1, 4]) == pytest.approx(0.0, abs=1e-12)
    assert categorical_profile([1, "a"])["categories"] == ["1", "a"]


def test_a_one_value_column_is_profiled() -> None:
    profile = categorical_profile(["a"])
    assert (profile["categories"], profile["shares"], profile["count"]) == (
        ["a"],
        [1.0, 0.0, 0.0],
        1,
    )
    assert numeric_profile([3.0])["shares"] == [1.0, 0.0, 0.0]  # one edge, at 3


@pytest.mark.parametrize("profile", [categorical_profile, numeric_profile])
def test_an_empty_column_is_refused_by_name(profile: object) -> None:
    with pytest.raises(ValueError, match=r"^x: cannot profile an empty column$"):
        profile([])  # type: ignore[operator]
    with pytest.raises(ValueError, match=r"^x: cannot profile an empty column$"):
        profile(np.empty(0))  # type: ignore[operator]
