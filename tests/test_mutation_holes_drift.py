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


def test_drift_errors_name_their_input() -> None:
    from model.drift import bin_index, n_buckets, psi

    with pytest.raises(ValueError, match=r"^x: "):
        numeric_profile(["a", "b"])
    with pytest.raises(ValueError, match=r"^x: expected a 1-D array"):
        bin_index(numeric_profile([1.0, 2.0]), [[1.0, 2.0]])
    with pytest.raises(ValueError, match=r"^expected: shares or counts must be non-negative"):
        psi([1, -1], [1, 1])
    with pytest.raises(ValueError, match=r"^actual: the histogram is empty"):
        psi([1, 1], [0, 0])
    with pytest.raises(ValueError, match=r"^expected: "):
        psi([1, np.nan], [1, 1])
    with pytest.raises(ValueError, match=r"^unknown profile kind 'text'$"):
        n_buckets({"kind": "text"})


def test_numeric_profile_bins_and_keys() -> None:
    x = [1.0, 2.0, 3.0, 4.0, None]
    one = numeric_profile(np.array(x, dtype=object), n_bins=1)  # None in an object array: missing
    assert (one["edges"], one["shares"]) == ([], [0.8, 0.2])
    two = numeric_profile(np.array(x, dtype=object), n_bins=2)
    assert two["edges"] == [2.0] and two["shares"] == pytest.approx([0.4, 0.4, 0.2])
    assert set(two) == {"kind", "edges", "shares", "count"} and two["count"] == 5


def test_profile_psi_passes_eps_and_build_reference_without_categories() -> None:
    from model.drift import build_reference

    profile = categorical_profile(["a", "a", "b"])
    live = ["a", "c", "c"]  # "c" lands in the training-empty unseen bucket
    assert profile_psi(profile, live, eps=0.1) < profile_psi(profile, live)
    ref = build_reference({"c": ["a", "b"]}, {"c": "categorical"}, [1.0, 2.0])
    assert ref["features"]["c"]["categories"] == ["a", "b"]
