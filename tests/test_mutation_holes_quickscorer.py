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
from model.quickscorer import _lowest_bit, _word_type


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
    np.testing.assert_array_equal(_lowest_bit(single), np.arange(bits))
    # every bit above the lowest set too: the answer does not change
    above = np.array([(ones >> k) << k for k in range(bits)], dtype=word)
    np.testing.assert_array_equal(_lowest_bit(above), np.arange(bits))
    assert _lowest_bit(single).dtype == np.intp
    assert re.fullmatch(r"uint\d+", single.dtype.name)
