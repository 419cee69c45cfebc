"""model.quickscorer: the bit-vector prediction equals the level-by-level walk of every tree."""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from model import quickscorer
from model.ensemble import HistGradientBoostingRegressor, RandomForestRegressor
from model.hist import Forest


def data(n: int, seed: int, categories: int = 0) -> tuple[NDArray[Any], NDArray[Any]]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5))
    y = X[:, 0] * X[:, 1] + np.sin(2 * X[:, 2]) + 0.3 * rng.normal(size=n)
    if categories:
        codes = rng.integers(0, categories, size=n)
        X[:, 4] = codes
        y += np.sin(1.7 * codes)
    X[rng.random(n) < 0.1, 2] = np.nan
    X[rng.random(n) < 0.05, 0] = np.nan
    return X, y


def awkward_rows(categories: int) -> NDArray[Any]:
    """New rows with missing values, values beyond the training range and, in the category
    column, missing, never-seen, negative and fractional codes."""
    X, _ = data(400, seed=99, categories=categories + 3 if categories else 0)
    X[::7, 1] = np.nan
    X[::9, 3] = 1e9
    X[::10, 3] = -1e9
    if categories:
        X[::11, 4] = np.nan
        X[::13, 4] = -1.0
        X[::17, 4] = 2.5
    return X


def assert_same_as_levelwise(forest: Forest, X: NDArray[Any]) -> None:
    for rows in (X, X[:1], X[5:7]):
        np.testing.assert_allclose(
            forest.predict_sum(rows), forest.predict_sum_levelwise(rows), rtol=0, atol=1e-12
        )


@pytest.mark.parametrize("categories", [0, 12], ids=["numeric", "categorical"])
@pytest.mark.parametrize("leaves", [2, 8, 16, 31, 32, 33, 64])
def test_boosting_predictions_equal_the_levelwise_path(categories: int, leaves: int) -> None:
    X, y = data(1500, seed=leaves, categories=categories)
    model = HistGradientBoostingRegressor(
        max_iter=40,
        max_leaf_nodes=leaves,
        min_samples_leaf=5,
        categorical_features=[4] if categories else None,
        early_stopping=False,
    ).fit(X, y)
    bits, rest = model.forest_._parts()
    assert bits is not None and rest is None
    assert bits.words.dtype == {
        2: np.uint8,
        8: np.uint8,
        16: np.uint16,
        31: np.uint32,
        32: np.uint32,
    }.get(leaves, np.uint64)
    assert_same_as_levelwise(model.forest_, awkward_rows(categories))


def test_trees_too_large_for_a_word_are_walked_level_by_level() -> None:
    X, y = data(170, seed=3, categories=6)
    model = RandomForestRegressor(
        n_estimators=12,
        min_samples_leaf=2,
        categorical_features=[4],
        max_features=0.6,
        random_state=0,
    ).fit(X, y)
    leaves = [int(t.is_leaf.sum()) for t in model.trees_]
    assert min(leaves) <= quickscorer.MAX_LEAVES < max(leaves)  # both kinds in one forest
    bits, rest = model.forest_._parts()
    assert bits is not None and rest is not None
    assert bits.leaf_value.shape[0] + rest.roots.size == len(model.trees_)
    assert_same_as_levelwise(model.forest_, awkward_rows(6))


def test_rows_in_several_chunks_and_pickling(monkeypatch: pytest.MonkeyPatch) -> None:
    X, y = data(800, seed=4, categories=5)
    model = HistGradientBoostingRegressor(
        max_iter=30, categorical_features=[4], early_stopping=False
    ).fit(X, y)
    rows = awkward_rows(5)
    expected = model.forest_.predict_sum_levelwise(rows)
    monkeypatch.setattr(quickscorer, "CHUNK_WORDS", 1000)  # a few rows a chunk
    monkeypatch.setattr(quickscorer, "BLOCK_BYTES", 16)  # blocks of 4 trees, the last padded
    np.testing.assert_allclose(model.forest_.predict_sum(rows), expected, rtol=0, atol=1e-12)
    bits, _ = model.forest_._parts()
    assert bits is not None and bits.blocks.shape[0] == 8 and bits.blocks.shape[2] == 4
    assert bits.words.shape[1] == 30
    monkeypatch.setattr(quickscorer, "LOOP_ROWS", 10**6)  # every row gathered whole, in chunks
    np.testing.assert_allclose(model.forest_.predict_sum(rows), expected, rtol=0, atol=1e-12)
    small = rows[:3]
    np.testing.assert_allclose(
        model.forest_.predict_sum(small),
        model.forest_.predict_sum_levelwise(small),
        rtol=0,
        atol=1e-12,
    )
    # the tables are derived data: not pickled, rebuilt on first use
    state = pickle.dumps(model)
    assert "_parts_cache" in model.forest_.__dict__
    loaded = pickle.loads(state)
    assert "_parts_cache" not in loaded.forest_.__dict__
    np.testing.assert_array_equal(loaded.predict(rows), model.predict(rows))


def test_table_size_is_thresholds_by_trees() -> None:
    """One row per distinct threshold of a feature, plus two (above all, missing), a tree a
    column; one row per category seen and one for missing for a categorical feature."""
    X, y = data(600, seed=5, categories=4)
    model = HistGradientBoostingRegressor(
        max_iter=10, max_leaf_nodes=4, categorical_features=[4], early_stopping=False
    ).fit(X, y)
    bits, _ = model.forest_._parts()
    assert bits is not None
    numeric_rows = sum(u.size + 2 for u in bits.thresholds)
    categorical_rows = int(model.bin_mapper_.seen[bits.cat_features].sum())  # + missing bin
    assert bits.words.shape == (numeric_rows + categorical_rows, 10)


def test_trees_without_a_split() -> None:
    """A constant target grows single-leaf trees: no feature has a table, every row gets
    the baseline."""
    X, _ = data(300, seed=6)
    model = HistGradientBoostingRegressor(max_iter=5, early_stopping=False).fit(X, np.ones(300))
    bits, _ = model.forest_._parts()
    assert bits is not None and bits.num_features.size == 0 and bits.cat_features.size == 0
    rows = awkward_rows(0)
    assert_same_as_levelwise(model.forest_, rows)
    np.testing.assert_array_equal(model.predict(rows), np.ones(rows.shape[0]))


def grid_cases() -> list[tuple[list[NDArray[Any]], int]]:
    """Thresholds of a few features and the most of them a grid cell holds."""
    rng = np.random.default_rng(11)
    return [
        ([np.sort(rng.normal(size=200)), np.array([0.5]), np.array([-1.0, 2.0])], 2),
        # crowded: four thresholds share a cell of the finest grid
        ([np.unique(np.concatenate((np.linspace(0, 1, 50), 0.5 + np.arange(4) * 1e-6)))], 4),
        # +inf thresholds (missing values split from the rest) are below no value
        ([np.array([-3.0, 0.0, 4.0, np.inf]), np.array([np.inf])], 1),
    ]


@pytest.mark.parametrize(("thresholds", "most"), grid_cases(), ids=["normal", "crowded", "inf"])
def test_grid_ranks_equal_binary_searches(thresholds: list[NDArray[Any]], most: int) -> None:
    first = np.cumsum([0] + [u.size + 2 for u in thresholds[:-1]]).astype(np.intp)
    grid = quickscorer.RankGrid.build(thresholds, first)
    assert grid is not None and grid.slots.shape[1] == most
    np.testing.assert_array_equal(grid.features, np.arange(len(thresholds)))
    rng = np.random.default_rng(12)
    columns = []
    for u in thresholds:
        finite = u[np.isfinite(u)]
        near = np.concatenate((finite, np.nextafter(finite, -np.inf), np.nextafter(finite, np.inf)))
        values = np.concatenate(
            (near, rng.normal(size=300), rng.normal(scale=1e7, size=30), [np.inf, -np.inf, 0.0])
        )
        columns.append(rng.permutation(np.resize(values, 600)))
    X = np.column_stack(columns)
    expected = np.column_stack(
        [np.searchsorted(u, X[:, i], side="left") + first[i] for i, u in enumerate(thresholds)]
    )
    np.testing.assert_array_equal(grid.rows(X), expected)
    # a missing value gets some row of its own feature (table_rows replaces it)
    X[::3] = np.nan
    rows = grid.rows(X)
    np.testing.assert_array_equal(rows[1::3], expected[1::3])
    sizes = np.array([u.size for u in thresholds])
    assert ((rows[::3] >= first) & (rows[::3] <= first + sizes)).all()


def test_no_grid_where_it_cannot_rank_exactly(monkeypatch: pytest.MonkeyPatch) -> None:
    first = np.zeros(1, dtype=np.intp)
    for u in (np.array([-np.inf, 0.0]), np.array([0.0, np.nan]), np.array([-1e308, 1e308])):
        assert quickscorer.RankGrid.build([u], first) is None
    monkeypatch.setattr(quickscorer, "GRID_SLOTS", 1)  # a cell of two thresholds is too many
    assert quickscorer.RankGrid.build([np.array([0.0, 0.5, 0.5 + 1e-12, 1.0])], first) is None


def test_a_feature_the_grid_cannot_rank_is_searched() -> None:
    """A heavy-tailed feature (its thresholds crowd one cell of any grid of at most
    ``GRID_CELLS_MAX`` cells a threshold) is left to a binary search, the others not."""
    X, y = data(1500, seed=9)
    X[:, 3] = np.exp(10 * X[:, 3])
    y += np.log(X[:, 3]) / 10
    model = HistGradientBoostingRegressor(max_iter=20, early_stopping=False).fit(X, y)
    bits, _ = model.forest_._parts()
    assert bits is not None and bits.grid is not None
    assert 3 in bits.num_features and 3 not in bits.num_features[bits.grid.features]
    assert bits.grid.features.size == bits.num_features.size - 1
    rows = awkward_rows(0)
    normal = np.abs(rows[:, 3]) < 100  # the ±1e9 rows stay beyond the range
    rows[normal, 3] = np.exp(10 * rows[normal, 3])
    assert_same_as_levelwise(model.forest_, rows)


def test_batches_ranked_by_binary_searches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a grid (too many thresholds a cell), a large batch is ranked by searchsorted."""
    X, y = data(800, seed=7)
    monkeypatch.setattr(quickscorer, "GRID_SLOTS", 0)
    model = HistGradientBoostingRegressor(max_iter=20, early_stopping=False).fit(X, y)
    bits, _ = model.forest_._parts()
    assert bits is not None and bits.grid is None
    assert_same_as_levelwise(model.forest_, awkward_rows(0))


def test_each_block_stores_a_row_where_it_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    X, y = data(800, seed=8)
    monkeypatch.setattr(quickscorer, "BLOCK_BYTES", 8)  # blocks of 8 trees of uint8
    model = HistGradientBoostingRegressor(max_iter=30, max_leaf_nodes=8, early_stopping=False).fit(
        X, y
    )
    bits, _ = model.forest_._parts()
    assert bits is not None and bits.row_of.shape[0] == 4
    start = 0
    for rows in bits.row_of:  # a block's rows in a range of their own, in table order
        stored = bits.table[start : start + rows[-1] - start + 1]
        assert rows[0] == start and set(np.diff(rows)) <= {0, 1}
        assert (stored[1:] != stored[:-1]).any(axis=1).all()  # no row kept twice in a run
        start = rows[-1] + 1
    assert start == bits.table.shape[0] < bits.row_of.size
    np.testing.assert_array_equal(bits.row_of_t, bits.row_of.T)
    assert_same_as_levelwise(model.forest_, awkward_rows(0))


def test_blocks_skip_the_features_none_of_their_trees_splits_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Small trees in small blocks: the trees are ordered so that blocks share unused
    features, which a large batch then skips; the table reads the same in tree order."""
    X, y = data(800, seed=21, categories=5)
    monkeypatch.setattr(quickscorer, "BLOCK_BYTES", 4)  # blocks of 4 trees of uint8
    model = HistGradientBoostingRegressor(
        max_iter=40, max_leaf_nodes=3, categorical_features=[4], early_stopping=False
    ).fit(X, y)
    bits, _ = model.forest_._parts()
    assert bits is not None
    n_features = bits.num_features.size + bits.cat_features.size
    assert any(used.size < n_features for used in bits.used)
    assert sorted(bits.tree_of_slot[:40]) == list(range(40))
    assert_same_as_levelwise(model.forest_, awkward_rows(5))
    # past the work the ordering may take, the trees keep their order: the same table
    monkeypatch.setattr(quickscorer, "ORDER_WORK", 40 * n_features * 10 - 1)
    plain, _ = model.forest_._split_by_size()
    assert plain is not None and (plain.tree_of_slot[:40] == np.arange(40)).all()
    assert not (bits.tree_of_slot[:40] == np.arange(40)).all()
    np.testing.assert_array_equal(bits.words, plain.words)
    model.forest_.__dict__["_parts_cache"] = (plain, None)
    assert_same_as_levelwise(model.forest_, awkward_rows(5))


def test_a_block_of_trees_without_splits_beside_one_with(monkeypatch: pytest.MonkeyPatch) -> None:
    """A block whose trees split on nothing starts from all-ones words (its leaf 0)."""
    monkeypatch.setattr(quickscorer, "BLOCK_BYTES", 1)  # a block a tree
    seen = np.zeros((1, 256), dtype=bool)
    seen[:, -1] = True
    forest = Forest(
        col=np.array([0, 3, 3, 3]),  # a stump on feature 0, then a single leaf
        threshold=np.array([0.5, np.inf, np.inf, np.inf]),
        left=np.array([1, 1, 2, 3]),
        value=np.array([0.0, -1.0, 2.0, 0.25]),
        cat_row=np.full(4, -1),
        cat_left=np.zeros((0, 256), dtype=bool),
        roots=np.array([0, 3]),
        depth=1,
        n_features=1,
        categorical=np.zeros(1, dtype=bool),
        seen=seen,
    )
    bits, _ = forest._parts()
    assert bits is not None and sorted(u.tolist() for u in bits.used) == [[], [0]]
    X = np.linspace(-1, 2, 300)[:, None]
    X[::7] = np.nan
    assert_same_as_levelwise(forest, X)
    expected = np.where(np.isnan(X[:, 0]) | (X[:, 0] > 0.5), 2.0, -1.0) + 0.25
    np.testing.assert_array_equal(forest.predict_sum(X), expected)
