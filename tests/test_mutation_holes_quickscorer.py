"""model.quickscorer: what mutation testing found the other tests let through (issue 20).

The word type is the smallest unsigned integer holding a tree's leaves, a tree of more than
64 leaves is refused with a message saying so, and the lowest set bit is found for every bit
position of every word size. Hand-built forests reach the corners the trained ones miss:
trees without a split (with leaf values that are not zero), a categorical split that only
its first category fails, bins never seen at fit; a large batch in many chunks of rows; the
ordering's work limit, and the rank grid's features, resolution and overflow guard.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import pytest

from model import quickscorer
from model.ensemble import HistGradientBoostingRegressor
from model.hist import Forest, category_bins
from model.quickscorer import _leaf_places, _one_past_lowest_bit, _word_type


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


@pytest.mark.parametrize("word", [np.uint8, np.uint16, np.uint32, np.uint64])
def test_leaf_place_of_every_bit_position(word: type[np.unsignedinteger]) -> None:
    bits = np.iinfo(word).bits
    ones = np.iinfo(word).max
    base = np.arange(bits, dtype=np.intp) * 100  # one base a word, broadcast
    k = np.arange(bits)
    single = np.array([1 << b for b in range(bits)], dtype=word)
    if bits <= quickscorer.TOP_DOWN_BITS:
        # read by the highest set bit, whatever lies below it
        place = quickscorer.EXPONENT_BIAS + k + base
        others = np.array([ones >> (bits - 1 - b) for b in range(bits)], dtype=word)
    else:
        # read by the lowest set bit, whatever lies above it (float64 would round these)
        place = k + 1 + base
        others = np.array([(ones >> b) << b for b in range(bits)], dtype=word)
    for words in (single, others):
        got = _leaf_places(words, base)
        np.testing.assert_array_equal(got, place)
        assert got.dtype == np.int64
    # a 2-D block of words (rows x trees) with one base a column
    block = np.tile(others, (3, 1))
    np.testing.assert_array_equal(_leaf_places(block, base), np.tile(place, (3, 1)))


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
    assert_bits_equal_levelwise(model.forest_, rows[:4], np.repeat(rows, 60, axis=0))


def test_two_categorical_features_one_in_column_0_beside_numeric_ones() -> None:
    # column 0 is categorical (its split columns read 2d + 0 = 2d exactly) and a second
    # categorical feature's table rows follow the first's
    rng = np.random.default_rng(3)
    n = 1200
    X = rng.normal(size=(n, 4))
    X[:, 0] = rng.integers(0, 7, size=n)
    X[:, 3] = rng.integers(0, 5, size=n)
    y = np.sin(1.7 * X[:, 0]) + np.cos(1.3 * X[:, 3]) + X[:, 1] * X[:, 2]
    y += 0.1 * rng.normal(size=n)
    model = HistGradientBoostingRegressor(
        max_iter=30,
        max_leaf_nodes=8,
        min_samples_leaf=5,
        categorical_features=[0, 3],
        early_stopping=False,
    ).fit(X, y)
    bits, rest = model.forest_._parts()
    assert bits is not None and rest is None
    assert bits.cat_features.tolist() == [0, 3] and bits.num_features.tolist() == [1, 2]
    rows = X[:300].copy()
    rows[::7, 0] = np.nan
    rows[::11, 3] = 9.0  # never seen
    rows[::13, 1] = np.nan
    assert_bits_equal_levelwise(model.forest_, rows, rows[:1], rows[5:7])


def test_a_tree_of_more_than_64_leaves_is_refused_by_name() -> None:
    X = np.arange(400, dtype=np.float64)[:, None]
    model = HistGradientBoostingRegressor(
        max_iter=1, max_leaf_nodes=70, min_samples_leaf=1, early_stopping=False
    ).fit(X, np.sin(X[:, 0]))
    f = model.forest_
    assert (f.left == np.arange(f.left.size)).sum() > 64  # more leaves than a word holds
    with pytest.raises(ValueError, match=r"^trees must have at most 64 leaves$"):
        quickscorer.BitForest.build(
            f.col, f.threshold, f.left, f.value, f.cat_row, f.cat_left, f.roots, 1, f.seen
        )


def assert_bits_equal_levelwise(forest: Any, *batches: Any) -> None:
    """The bit-vector sums of each batch equal the level-by-level walk's."""
    for batch in batches:
        np.testing.assert_allclose(
            forest.predict_sum(batch), forest.predict_sum_levelwise(batch), rtol=0, atol=1e-12
        )


def _blocks(changes: np.ndarray, width: int, perm: np.ndarray) -> list[set[int]]:
    """The blocks ``_order_by_unused`` makes of ``changes``' trees shuffled by ``perm``, as
    sets of the trees' unshuffled numbers."""
    order = quickscorer._order_by_unused(changes[:, perm], width)
    assert order.dtype == np.intp and sorted(order.tolist()) == list(range(perm.size))
    return [set(perm[order[i : i + width]].tolist()) for i in range(0, order.size, width)]


def test_trees_are_ordered_into_blocks_that_share_the_most_unused_features() -> None:
    """Greedy by feature: trees 0-1 split on neither feature 0 nor 1, trees 2-3 not on 0,
    4-5 not on 1, 6-7 on both (and every tree on feature 2). Blocks of two: {0, 1} first
    (two features skipped), then {2, 3} and {4, 5}, the rest last; in any column order."""
    changes = np.ones((3, 8), dtype=bool)
    changes[0, [0, 1, 2, 3]] = False
    changes[1, [0, 1, 4, 5]] = False
    for seed in range(5):
        perm = np.random.default_rng(seed).permutation(8)
        assert _blocks(changes, 2, perm) == [{0, 1}, {2, 3}, {4, 5}, {6, 7}]


def test_of_the_trees_that_avoid_a_feature_a_block_takes_those_with_fewest_splits() -> None:
    """Trees 0-4 avoid feature 0. The first block is narrowed by the features most of them
    avoid ({1, 3}: neither splits on features 2 and 3); the next, among 0, 2 and 4 (which
    share only feature 0 unused), takes the two splitting on fewest features, ties in the
    order given ({0, 2}); the rest last."""
    changes = np.zeros((4, 6), dtype=bool)
    changes[0, 5] = True  # tree 5 alone splits on feature 0
    splits = [3, 1, 2, 1, 3, 3]  # features 1-3 each tree splits on
    for tree, k in enumerate(splits):
        changes[1 : 1 + k, tree] = True
    assert _blocks(changes, 2, np.arange(6)) == [{1, 3}, {0, 2}, {4, 5}]


def test_fewer_trees_than_a_block_are_one_block_in_their_order() -> None:
    changes = np.ones((2, 3), dtype=bool)
    changes[0, 1] = False
    assert quickscorer._order_by_unused(changes, 4).tolist() == [0, 1, 2]
    assert quickscorer._order_by_unused(changes, 3).tolist() == [0, 1, 2]
    assert quickscorer._order_by_unused(np.ones((0, 5), dtype=bool), 2).tolist() == [0, 1, 2, 3, 4]


def test_a_block_is_narrowed_by_the_feature_most_trees_avoid_not_the_first() -> None:
    """Feature 1 is avoided by four trees (3-6), feature 0 by three (0-2): the first block
    comes from the four, the two splitting on fewest features."""
    changes = np.ones((2, 8), dtype=bool)
    changes[0, [0, 1, 2]] = False
    changes[1, [3, 4, 5, 6]] = False
    assert _blocks(changes, 2, np.arange(8))[0] == {3, 4}


def test_trees_that_tie_keep_their_order_in_a_long_block() -> None:
    """64 trees, blocks of 16, no feature avoided by 16 trees but not all: a block takes the
    trees splitting on fewest features, ties in the order given (a stable sort)."""
    changes = np.ones((4, 64), dtype=bool)
    changes[0] = False  # avoided by every tree: skipped by every block anyway
    changes[1, 0:10] = False
    changes[2, 5:15] = False
    changes[3, 20:30] = False
    first, second, *_ = _blocks(changes, 16, np.arange(64))
    assert first == {*range(15), 20}  # 5-9 split on one feature, then 0-4, 10-14, 20 on two
    assert second == {*range(15, 20), *range(21, 32)}  # 21-29 on two, then 15-19, 30, 31
    assert quickscorer._order_by_unused(np.zeros((2, 64), dtype=bool), 16).tolist() == list(
        range(64)
    )


def _stumps(leaf_values: list[float], block_bytes: int, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A forest of single-leaf trees (no split at all) on one numeric feature."""
    monkeypatch.setattr(quickscorer, "BLOCK_BYTES", block_bytes)
    k = len(leaf_values)
    seen = np.zeros((1, 256), dtype=bool)
    seen[:, -1] = True
    return Forest(
        col=np.full(k, 3),  # 3d: a leaf
        threshold=np.full(k, np.inf),
        left=np.arange(k),
        value=np.array(leaf_values),
        cat_row=np.full(k, -1),
        cat_left=np.zeros((0, 256), dtype=bool),
        roots=np.arange(k),
        depth=0,
        n_features=1,
        categorical=np.zeros(1, dtype=bool),
        seen=seen,
    )


@pytest.mark.parametrize("block_bytes", [256, 2], ids=["one-block", "two-blocks"])
def test_trees_without_a_split_sum_their_leaf_values(
    block_bytes: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Trees of one leaf each (values that are not all zero) price every row, small batch
    or large, at the sum of their values, in one block or in blocks of ``BLOCK_BYTES``
    one-byte words; their table is one row of all-ones words."""
    forest = _stumps([1.0, 2.0, 4.0, -0.5], block_bytes, monkeypatch)
    bits, rest = forest._parts()
    assert bits is not None and rest is None
    assert bits.words.shape == (1, 4) and (bits.words == np.iinfo(bits.words.dtype).max).all()
    assert bits.words.dtype == np.uint8 and bits.table.dtype == np.uint8
    width = min(4, block_bytes)
    assert bits.value_base.shape == (4 // width, width)
    X = np.linspace(-3, 3, 300)[:, None]
    X[::5] = np.nan
    for batch in (X, X[:1], X[: quickscorer.LOOP_ROWS + 1]):
        np.testing.assert_array_equal(forest.predict_sum(batch), np.full(batch.shape[0], 6.5))
    assert_bits_equal_levelwise(forest, X)


def _category_stump(monkeypatch: pytest.MonkeyPatch) -> Any:
    """One tree on one categorical feature (categories 0, 1, 2 seen): category 0 alone goes
    right (2.0); 1, 2, missing and unknown codes go left (-1.0)."""
    seen = np.zeros((1, 256), dtype=bool)
    seen[0, [0, 1, 2, 255]] = True
    cat_left = np.zeros((1, 256), dtype=bool)
    cat_left[0, [1, 2, 255]] = True
    return Forest(
        col=np.array([2, 3, 3]),  # 2d + 0: categorical feature 0; then two leaves
        threshold=np.full(3, np.inf),
        left=np.array([1, 1, 2]),
        value=np.array([0.0, -1.0, 2.0]),
        cat_row=np.array([0, -1, -1]),
        cat_left=cat_left,
        roots=np.array([0]),
        depth=1,
        n_features=1,
        categorical=np.ones(1, dtype=bool),
        seen=seen,
    )


def test_a_categorical_split_that_sends_only_the_first_category_right(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The tree's words differ from all ones only in the first category's row; a large batch
    still reads that feature for the tree's block (it is used), and prices category 0
    right."""
    forest = _category_stump(monkeypatch)
    bits, _ = forest._parts()
    assert bits is not None and [u.tolist() for u in bits.used] == [[0]]
    codes = np.resize([0.0, 1.0, 2.0, np.nan, 7.0], 400)[:, None]
    expected = np.where(codes[:, 0] == 0.0, 2.0, -1.0)
    for batch, want in ((codes, expected), (codes[:3], expected[:3])):
        np.testing.assert_array_equal(forest.predict_sum(batch), want)
    assert_bits_equal_levelwise(forest, codes)


def test_a_bin_not_seen_at_fit_selects_the_missing_row(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every bin of a categorical feature selects the table row of the bin
    ``category_bins`` gives its code: its own if seen at fit, else the missing values'."""
    forest = _category_stump(monkeypatch)
    bits, _ = forest._parts()
    assert bits is not None
    bins = np.arange(256)
    X = np.zeros((256, 1))
    direct = bits.table_rows(X, bins[:, None])
    folded = bits.table_rows(X, category_bins(bins.astype(np.float64), forest.seen[0])[:, None])
    np.testing.assert_array_equal(direct, folded)
    assert set(direct[:, 0].tolist()) == set(bits.cat_rows[0, [0, 1, 2, 255]].tolist())


def test_a_large_batch_in_many_chunks_of_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch of blocks in chunks of a few rows: every chunk priced, the last one short."""
    monkeypatch.setattr(quickscorer, "BLOCK_BYTES", 4)  # blocks of 4 trees of uint8
    monkeypatch.setattr(quickscorer, "CHUNK_WORDS", 40)  # 10 rows a chunk
    rng = np.random.default_rng(17)
    X = rng.normal(size=(600, 3))
    y = X[:, 0] - X[:, 1] ** 2 + 0.1 * rng.normal(size=600)
    model = HistGradientBoostingRegressor(max_iter=12, max_leaf_nodes=4, early_stopping=False)
    model.fit(X, y)
    model.forest_.__dict__.pop("_parts_cache", None)
    bits, _ = model.forest_._parts()
    assert bits is not None and bits.value_base.shape == (3, 4)
    rows = X[:405].copy()
    rows[::9, 1] = np.nan
    assert rows.shape[0] >= quickscorer.LOOP_ROWS and rows.shape[0] > 30 * 10
    assert_bits_equal_levelwise(model.forest_, rows)


def test_the_trees_are_ordered_up_to_the_stated_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """``ORDER_WORK`` is the most (feature, tree, block) triples the ordering may weigh: at
    exactly that many the trees are still ordered; one fewer and they keep their order."""
    monkeypatch.setattr(quickscorer, "BLOCK_BYTES", 4)  # blocks of 4 trees of uint8
    rng = np.random.default_rng(21)
    X = rng.normal(size=(800, 5))
    X[:, 4] = rng.integers(0, 5, size=800)
    y = X[:, 0] * X[:, 1] + np.sin(2 * X[:, 2]) + np.sin(1.7 * X[:, 4])
    model = HistGradientBoostingRegressor(
        max_iter=40, max_leaf_nodes=3, categorical_features=[4], early_stopping=False
    ).fit(X, y)
    forest = model.forest_
    bits, _ = forest._split_by_size()
    assert bits is not None and bits.row_of.shape[0] == 10
    assert not (bits.tree_of_slot == np.arange(40)).all()
    work = (bits.num_features.size + bits.cat_features.size) * 40 * 10
    monkeypatch.setattr(quickscorer, "ORDER_WORK", work)
    at_limit, _ = forest._split_by_size()
    assert at_limit is not None
    np.testing.assert_array_equal(at_limit.tree_of_slot, bits.tree_of_slot)
    monkeypatch.setattr(quickscorer, "ORDER_WORK", work - 1)
    past, _ = forest._split_by_size()
    assert past is not None and (past.tree_of_slot == np.arange(40)).all()


def test_the_grid_names_the_features_it_leaves_to_binary_searches() -> None:
    first = np.array([0, 4, 8], dtype=np.intp)
    spread = [np.array([0.0, 1.0]), np.array([-1.0, 3.0]), np.array([2.0, 5.0])]
    grid = quickscorer.RankGrid.build(spread, first)
    assert grid is not None and grid.features.tolist() == [0, 1, 2] and grid.searched.size == 0
    spread[1] = np.array([-np.inf, 3.0])  # −inf cannot be ranked on a grid
    grid = quickscorer.RankGrid.build(spread, first)
    assert grid is not None and grid.features.tolist() == [0, 2]
    assert grid.searched.tolist() == [1] and grid.searched.dtype == np.intp


def test_a_range_whose_finest_scale_overflows_is_not_gridded() -> None:
    """Thresholds 2e-306 apart with two that no grid separates: ``GRID_CELLS_MAX`` cells a
    threshold would need a scale past the largest float, so the feature has no grid."""
    u = np.linspace(0.0, 2e-306, 63)
    u = np.unique(np.append(u, np.nextafter(u[1], 1.0)))
    assert u.size == 64 and not math.isfinite(quickscorer.GRID_CELLS_MAX * u.size / float(u[-1]))
    assert quickscorer.RankGrid.build([u], np.zeros(1, dtype=np.intp)) is None


def _grid_cells(u: np.ndarray) -> tuple[int, int]:
    """Cells of the grid of one feature, and the most thresholds one holds."""
    grid = quickscorer.RankGrid.build([u], np.zeros(1, dtype=np.intp))
    assert grid is not None
    ranks = np.concatenate((u, np.nextafter(u, -np.inf), np.nextafter(u, np.inf)))
    ranks = np.concatenate((ranks, np.linspace(u[0] - 1, u[-1] + 1, 101)))
    np.testing.assert_array_equal(
        grid.rows(ranks[:, None])[:, 0], np.searchsorted(u, ranks, side="left")
    )
    return grid.start.size - 1, grid.slots.shape[1]


def test_the_grid_is_the_coarsest_tried_that_separates_the_thresholds() -> None:
    """Cells start at ``GRID_CELLS`` a threshold and double until no two thresholds share
    one, up to ``GRID_CELLS_MAX`` a threshold; where none separates a pair, the finest
    holds two, and its scale may come close to the largest float."""
    assert _grid_cells(np.array([0.0, 1.0, 2.0, 3.0])) == (quickscorer.GRID_CELLS * 4, 1)
    # 0.0 and 0.1 share a cell of 16 (3/16 wide), not of 32
    assert _grid_cells(np.array([0.0, 0.1, 1.0, 3.0])) == (2 * quickscorer.GRID_CELLS * 4, 1)
    pair = np.array([0.0, 1.0, 1.0 + 1e-9, 3.0])
    assert _grid_cells(pair) == (quickscorer.GRID_CELLS_MAX * 4, 2)
    m = 8
    u = np.linspace(0.0, quickscorer.GRID_CELLS_MAX * m / 1.2e308, m - 1)
    u = np.unique(np.append(u, np.nextafter(u[1], 1.0)))
    assert u.size == m and np.isfinite(quickscorer.GRID_CELLS_MAX * m / u[-1])
    assert _grid_cells(u) == (quickscorer.GRID_CELLS_MAX * m, 2)
