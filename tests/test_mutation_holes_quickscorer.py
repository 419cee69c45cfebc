"""model.quickscorer: what mutation testing found the other tests let through (issue 20).

The word type is the smallest unsigned integer holding a tree's leaves, a tree of more than
64 leaves is refused with a message saying so, and the lowest set bit is found for every bit
position of every word size.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from model import quickscorer
from model.ensemble import HistGradientBoostingRegressor
from model.quickscorer import _one_past_lowest_bit, _word_type


@pytest.mark.parametrize(
    ("leaves", "word"),
    [
        (1, np.uint8),
        (8, np.uint8),
        (9, np.uint16),
        (16, np.uint16),
        (17, np.uint32),
        (32, np.uint32),
        (33, np.uint64),
        (64, np.uint64),
    ],
)
def test_the_word_is_the_smallest_that_holds_the_leaves(leaves: int, word: type) -> None:
    assert _word_type(leaves) is word


def test_a_tree_of_more_than_64_leaves_does_not_fit_a_word() -> None:
    message = "^a tree with 65 leaves does not fit one 64-bit word$"
    with pytest.raises(ValueError, match=message):
        _word_type(65)
    assert quickscorer.MAX_LEAVES == 64


@pytest.mark.parametrize("word", [np.uint8, np.uint16, np.uint32, np.uint64])
def test_lowest_bit_of_every_position(word: type[np.unsignedinteger]) -> None:
    bits = np.iinfo(word).bits
    ones = np.iinfo(word).max
    single = np.array([1 << k for k in range(bits)], dtype=word)
    np.testing.assert_array_equal(_one_past_lowest_bit(single), np.arange(1, bits + 1))
    # every bit above the lowest set too: the answer does not change
    above = np.array([(ones >> k) << k for k in range(bits)], dtype=word)
    np.testing.assert_array_equal(_one_past_lowest_bit(above), np.arange(1, bits + 1))
    assert _one_past_lowest_bit(single).dtype == np.uint8
    assert re.fullmatch(r"uint\d+", single.dtype.name)


@pytest.mark.parametrize("grid", [True, False], ids=["grid", "binary-search"])
def test_a_value_equal_to_a_threshold_goes_left_in_every_row_path(
    grid: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A split sends ``x <= threshold`` left: a row holding a threshold exactly selects the
    table row of the thresholds strictly below it, in the few-rows path and the others
    (ranks from the grid, or from binary searches where there is none)."""
    if not grid:
        monkeypatch.setattr(quickscorer, "GRID_SLOTS", 0)
    rng = np.random.default_rng(8)
    X = rng.normal(size=(400, 3))
    y = X[:, 0] - 2.0 * X[:, 1] + 0.1 * rng.normal(size=400)
    model = HistGradientBoostingRegressor(max_iter=10, early_stopping=False).fit(X, y)
    bits, _ = model.forest_._parts()
    assert bits is not None and (bits.grid is not None) == grid
    rows = np.tile(X[:1], (max(u.size for u in bits.thresholds), 1))
    for i, j in enumerate(bits.num_features):
        u = bits.thresholds[i]
        rows[: u.size, j] = u
    for batch in (rows[:4], np.repeat(rows, 60, axis=0)):  # few rows, then many
        np.testing.assert_allclose(
            model.forest_.predict_sum(batch),
            model.forest_.predict_sum_levelwise(batch),
            rtol=0,
            atol=1e-12,
        )
