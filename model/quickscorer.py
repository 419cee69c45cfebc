"""Many trees predicted at once with per-tree leaf bit vectors (QuickScorer, Lucchese et al. 2015).

Number the leaves of a tree left to right, ``0 .. L−1``, and give each inner node a mask
of ``L`` bits, all ones except the leaves of its *left* subtree. A row that fails a node's
test (goes right) can never end in that left subtree; the AND of the masks of all the nodes
a row fails, over the whole tree, leaves set exactly the leaves it could still reach, and
the leftmost of them is the one it reaches:

    leaf(x) = lowest set bit of  AND { mask(v) : v inner, x fails v's test }

(a leaf left of the exit leaf lies in the left subtree of the node where the two paths part,
whose test ``x`` fails; the exit leaf lies in no left subtree of a node ``x`` fails). The
masks of the nodes a row fails depend only on the row's value of each feature, so they are
AND-ed once per feature and value ahead of time: for a numeric feature with sorted distinct
thresholds ``u_0 < … < u_{m−1}``, row ``k`` of its table is the AND over the nodes with
threshold ``< u_k`` (``k = #{u < x}``, one ``searchsorted``), a prefix AND; one more row
holds missing values, which fail exactly the nodes that send missing values right. A
categorical feature has one row per category seen at fit and one for missing and unknown
codes, each the AND over the nodes whose category set leaves it out.

Predicting a row is then, for every tree at once: one gather of a table row per feature,
an AND across features, the lowest set bit (the leaf), and a sum of leaf values. Words of
up to 32 bits hold the leaves in the other order, leaf 0 in the highest bit, so that the
leaf is the highest set bit: converting the word to float64 (exact) puts it in the exponent
field, one pass where counting the lowest bit (``popcount(w ^ (w − 1))``) takes three;
64-bit words, which float64 would round, keep leaf 0 in the lowest bit.

The trees are stored in blocks; within a block, a table row equal to the one before it is
not stored again (a feature's rows change only at the thresholds of the block's own
trees), so a block's slice of the table is a fraction of ``rows × trees a block`` and
stays in cache while a large batch runs over it. A tree's words are all ones in the rows
of a feature it does not split on, so the trees are ordered (greedily) into blocks that
share such features, and a large batch skips, block by block, the features none of the
block's trees splits on. The words are the smallest unsigned integers that hold the largest
tree's leaves (8 to 64 bits); trees with more than 64 leaves are left to the caller. The
tables take at most ``Σ_features (thresholds + 2) × trees`` words (the trees padded to
whole blocks).

A value's rank among a feature's thresholds is read from a grid of equal cells over the
thresholds' range instead of a binary search: the cell is ``⌊(clip(x) − lo) × scale⌋``,
whose every step is rounded monotonically, so a threshold in a lower cell is below ``x``,
one in a higher cell above it, and only the few in ``x``'s own cell are compared.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.intp]

#: The most leaves a tree may have to be scored here (one 64-bit word a tree).
MAX_LEAVES = 64
#: The most words held at once: gathered (rows × features × trees) for a small batch, in
#: the accumulator (rows × trees of a block) for a larger one.
CHUNK_WORDS = 1 << 17
#: Rows from which a batch goes a block of trees at a time (fewer: gathered whole, in chunks).
LOOP_ROWS = 128
#: Bytes of each table row one block of trees reads (a cache-sized slice of the table).
BLOCK_BYTES = 256
#: Grid cells per threshold of a feature to start from, and the most tried.
GRID_CELLS = 4
GRID_CELLS_MAX = 32
#: Words of at most this many bits hold leaf 0 in their highest bit (read from a float64's
#: exponent, exact up to 53 bits); wider words in their lowest.
TOP_DOWN_BITS = 32
#: The exponent field of a float64 ``2**k`` is ``EXPONENT_BIAS + k``.
EXPONENT_BIAS = 1023
#: The most (feature, tree, block) triples the trees' ordering by unused features may weigh
#: (its time at build grows with them; a larger forest keeps its own order).
ORDER_WORK = 1 << 23
#: The most thresholds one grid cell may hold (else the feature's ranks come from binary
#: searches).
GRID_SLOTS = 4


def _word_type(leaves: int) -> type[np.unsignedinteger]:
    for t in (np.uint8, np.uint16, np.uint32, np.uint64):
        if leaves <= np.iinfo(t).bits:
            return t
    raise ValueError(f"a tree with {leaves} leaves does not fit one 64-bit word")


@dataclass
class RankGrid:
    """Numeric features' ranks ``#{u < x}`` (plus their first table row) by grid cells.

    The ``i``-th feature of ``features``'s cells are ``0 .. cells_i`` from ``offset[i]``;
    ``start`` holds the feature's first table row plus the thresholds in lower cells,
    ``slots`` the thresholds in the cell, padded with ``+inf`` (never below a value)."""

    features: IntArray  # positions among the numeric features with splits
    searched: IntArray  # the other positions (their ranks by binary search)
    lo: FloatArray
    hi: FloatArray
    scale: FloatArray
    offset: IntArray
    start: IntArray
    slots: FloatArray  # (cells of all features, most thresholds a cell)

    @staticmethod
    def cell(
        x: FloatArray,
        lo: FloatArray | np.float64,
        hi: FloatArray | np.float64,
        scale: FloatArray | np.float64,
    ) -> IntArray:
        # the same operations on thresholds and values: each rounds monotonically; fmax
        # and fmin put a missing value in cell 0, a row its caller replaces
        t = np.fmin(np.fmax(x, lo), hi)
        t -= lo
        t *= scale
        return t.astype(np.intp)

    @classmethod
    def build(cls, thresholds: list[FloatArray], first_row: IntArray) -> RankGrid | None:
        """The grid of the features it ranks exactly, or ``None`` if none: a feature is left
        out if a threshold is NaN or −inf or too many share a cell."""
        features, los, his, scales, sizes, cells_of = [], [], [], [], [], []
        width = 1
        for i, u in enumerate(thresholds):
            if np.isnan(u).any() or (u.size and u[0] == -np.inf):
                continue  # a value of −inf would be ranked above a threshold of −inf
            u = u[u < np.inf]  # +inf is below no value: it never counts
            lo, hi = (float(u[0]), float(u[-1])) if u.size else (0.0, 0.0)
            if hi > lo and not math.isfinite(GRID_CELLS_MAX * u.size / (hi - lo) + (hi - lo)):
                continue  # a range or a scale past the largest float
            cells = GRID_CELLS * max(1, u.size)
            while True:  # finer cells until no two thresholds share one (or the most)
                scale = cells / (hi - lo) if hi > lo else 0.0
                c = cls.cell(u, np.float64(lo), np.float64(hi), np.float64(scale))
                most = int(np.bincount(c).max()) if c.size else 0
                if most <= 1 or cells >= GRID_CELLS_MAX * u.size:
                    break
                cells *= 2
            if most > GRID_SLOTS:
                continue
            width = max(width, most)
            features.append(i)
            los.append(lo)
            his.append(hi)
            scales.append(scale)
            sizes.append(cells + 1)
            cells_of.append(c)
        if not features:
            return None
        offset = np.cumsum([0, *sizes[:-1]]).astype(np.intp)
        start = np.empty(sum(sizes), dtype=np.intp)
        slots = np.full((start.size, width), np.inf)
        for k, (i, c) in enumerate(zip(features, cells_of, strict=True)):
            below = np.searchsorted(c, np.arange(sizes[k]), side="left")
            start[offset[k] : offset[k] + sizes[k]] = first_row[i] + below
            slots[offset[k] + c, np.arange(c.size) - below[c]] = thresholds[i][: c.size]
        return cls(
            features=np.array(features, dtype=np.intp),
            searched=np.setdiff1d(np.arange(len(thresholds)), features).astype(np.intp),
            lo=np.array(los),
            hi=np.array(his),
            scale=np.array(scales),
            offset=offset,
            start=start,
            slots=slots,
        )

    def rows(self, X: FloatArray) -> IntArray:
        """``(n, len(features))``: the first table row of each of :attr:`features` plus the
        rank of each value of ``X`` (those features' columns; a missing value gets some row of
        its feature, for the caller to replace)."""
        idx = self.cell(X, self.lo, self.hi, self.scale)
        idx += self.offset
        rows = self.start[idx]
        for s in range(self.slots.shape[1]):
            rows += self.slots[idx, s] < X
        return rows


@dataclass
class BitForest:
    """The tables of the module docstring for trees given as flat node arrays.

    Built by :meth:`build` from the arrays of :class:`model.hist.Forest` (trees laid out one
    after another from ``roots``; children consecutive, ``left[v] = v`` at a leaf).
    """

    #: each block's table rows, less those equal to the row before, block after block,
    #: ``(rows, trees a block)``; the last block is padded with all-ones words
    table: NDArray[np.unsignedinteger]
    #: ``(blocks, table rows)``: the row of ``table`` holding each block's slice of each row
    row_of: IntArray
    row_of_t: IntArray  # the same as ``(table rows, blocks)``, for a few rows
    #: per block, the features (columns of :meth:`table_rows`) some of its trees split on
    used: list[IntArray]
    tree_of_slot: IntArray  # the tree in each slot of the blocks, block after block
    leaf_value: FloatArray  # (trees, leaves): leaf values, left to right
    num_features: IntArray  # numeric features with splits
    thresholds: list[FloatArray]  # their sorted distinct thresholds
    num_offset: IntArray  # first table row of each (row m + 1 = missing)
    missing_row: IntArray  # the missing values' table row of each
    all_columns: bool  # every column is a numeric feature with splits (no copy to select)
    all_thresholds: FloatArray  # every threshold, feature by feature (one-row path)
    threshold_feature: IntArray  # position in ``num_features`` of each
    threshold_starts: IntArray  # where each feature's thresholds begin
    grid: RankGrid | None  # ranks of a larger batch (``None``: binary searches)
    cat_features: IntArray  # categorical features with splits
    cat_rows: IntArray  # (len(cat_features), max_bins + 1): table row of each bin
    #: a 0.0, the leaf values tree by tree (last leaf first in words read by their highest
    #: bit), then a 0.0 (the leaf of a padding tree)
    values: FloatArray
    #: (blocks, trees a block): added to a word's leaf number (:func:`_leaf_places`), the
    #: place of its value in ``values``
    value_base: IntArray

    @property
    def nbytes(self) -> int:
        return int(
            self.table.nbytes
            + 2 * self.row_of.nbytes
            + self.values.nbytes
            + self.cat_rows.nbytes
            + (self.grid.start.nbytes + self.grid.slots.nbytes if self.grid else 0)
        )

    @property
    def blocks(self) -> NDArray[np.unsignedinteger]:
        """The table as ``(blocks, table rows, trees a block)`` (a copy)."""
        return self.table[self.row_of]

    @property
    def words(self) -> NDArray[np.unsignedinteger]:
        """The table as ``(table rows, trees)`` (a copy)."""
        b, r, w = self.row_of.shape + self.table.shape[1:]
        slot_of_tree = np.argsort(self.tree_of_slot, kind="stable")[: self.leaf_value.shape[0]]
        return self.blocks.transpose(1, 0, 2).reshape(r, b * w)[:, slot_of_tree]

    @classmethod
    def build(
        cls,
        col: IntArray,
        threshold: FloatArray,
        left: IntArray,
        value: FloatArray,
        cat_row: IntArray,
        cat_left: NDArray[np.bool_],
        roots: IntArray,
        n_features: int,
        seen: NDArray[np.bool_],
    ) -> BitForest:
        """Tables for all the trees (each must have at most :data:`MAX_LEAVES` leaves).

        ``col`` reads ``j`` (numeric, missing right), ``d + j`` (numeric, missing left),
        ``2d + j`` (categorical) or ``3d`` (leaf), as :class:`model.hist.Forest` lays it out.
        """
        d = n_features
        T = roots.size
        n_nodes = left.size
        node = np.arange(n_nodes)
        tree = np.repeat(np.arange(T), np.diff(np.append(roots, n_nodes)))
        leaf = left == node
        inner = np.flatnonzero(~leaf)
        # depth of every node, top-down (children always follow their parent)
        depth = np.zeros(n_nodes, dtype=np.intp)
        frontier = roots[~leaf[roots]]
        level = 0
        while frontier.size:
            level += 1
            kids = np.concatenate((left[frontier], left[frontier] + 1))
            depth[kids] = level
            frontier = kids[~leaf[kids]]
        # leaves under each node, bottom-up; then each node's first leaf, top-down
        count = leaf.astype(np.intp)
        by_depth = [inner[depth[inner] == k] for k in range(level)]
        for nodes in reversed(by_depth):
            count[nodes] = count[left[nodes]] + count[left[nodes] + 1]
        n_leaves = count[roots]
        if n_leaves.size and int(n_leaves.max()) > MAX_LEAVES:
            raise ValueError(f"trees must have at most {MAX_LEAVES} leaves")
        first = np.zeros(n_nodes, dtype=np.intp)
        for nodes in by_depth:
            first[left[nodes]] = first[nodes]
            first[left[nodes] + 1] = first[nodes] + count[left[nodes]]
        word = _word_type(int(n_leaves.max()) if T else 1)
        ones = np.iinfo(word).max
        # mask(v): every bit but those of the left subtree's leaves
        span = count[left[inner]].astype(np.uint64)
        n_max = int(n_leaves.max()) if T else 1
        bits = np.iinfo(word).bits
        top_down = bits <= TOP_DOWN_BITS
        # leaf j is bit j, or bit (bits - 1 - j) in a word read by its highest bit
        lo = (bits - first[inner] - span if top_down else first[inner]).astype(np.uint64)
        cleared = ((np.uint64(1) << span) - np.uint64(1)) << lo
        mask = (~cleared & np.uint64(ones)).astype(word)
        leaf_value = np.zeros((T, n_max))
        leaves = np.flatnonzero(leaf)
        leaf_value[tree[leaves], first[leaves]] = value[leaves]

        c = col[inner]
        feat = np.where(c >= 2 * d, c - 2 * d, np.where(c >= d, c - d, c))
        is_cat = c >= 2 * d
        blocks: list[NDArray[np.unsignedinteger]] = []
        n_rows = 0
        num_features = np.unique(feat[~is_cat])
        thresholds: list[FloatArray] = []
        num_offset = np.zeros(num_features.size, dtype=np.intp)
        for i, j in enumerate(num_features):
            at = np.flatnonzero((feat == j) & ~is_cat)
            th = threshold[inner[at]]
            u = np.unique(th)
            block = np.full((u.size + 2, T), ones, dtype=word)
            # a node with threshold u_i fails for rows k > i: mark row i + 1, then prefix-AND
            np.bitwise_and.at(block, (np.searchsorted(u, th) + 1, tree[inner[at]]), mask[at])
            block[: u.size + 1] = np.bitwise_and.accumulate(block[: u.size + 1], axis=0)
            right = at[c[at] < d]  # missing goes right: missing fails the node
            np.bitwise_and.at(block[u.size + 1], tree[inner[right]], mask[right])
            thresholds.append(u)
            num_offset[i] = n_rows
            blocks.append(block)
            n_rows += block.shape[0]
        cat_features = np.unique(feat[is_cat])
        n_bins = seen.shape[1]
        cat_rows = np.zeros((cat_features.size, n_bins), dtype=np.intp)
        for i, j in enumerate(cat_features):
            at = np.flatnonzero((feat == j) & is_cat)
            bins = np.flatnonzero(seen[j])  # the missing bin (the last) included
            rank = np.full(n_bins, bins.size - 1)
            rank[bins] = np.arange(bins.size)
            cat_rows[i] = n_rows + rank
            block = np.full((bins.size, T), ones, dtype=word)
            fails = ~cat_left[cat_row[inner[at]]][:, bins]  # (nodes, categories)
            k, r = np.nonzero(fails)
            np.bitwise_and.at(block, (r, tree[inner[at[k]]]), mask[at[k]])
            blocks.append(block)
            n_rows += block.shape[0]
        words = np.vstack(blocks) if blocks else np.full((1, T), ones, dtype=word)
        width = max(1, min(T, BLOCK_BYTES // words.itemsize))
        # the trees each feature's rows change (the others' words are all ones in them),
        # and the trees ordered so that a block's trees share features none splits on
        starts_of = np.cumsum([0] + [b.shape[0] for b in blocks[:-1]]).astype(np.intp)
        changes = (
            np.logical_or.reduceat(words != ones, starts_of, axis=0)
            if blocks
            else np.zeros((0, T), dtype=bool)
        )
        n_blocks = -(-T // width)
        ordered = changes.size * n_blocks <= ORDER_WORK
        order = _order_by_unused(changes, width) if ordered else np.arange(T, dtype=np.intp)
        words = words[:, order]
        changes = changes[:, order]
        padded = np.full((words.shape[0], n_blocks * width), ones, dtype=word)
        padded[:, :T] = words
        # each block keeps a row only where it differs from the row before: a feature's rows
        # change only at the thresholds of the block's own trees, so its slice fits cache
        by_block = padded.reshape(words.shape[0], n_blocks, width)
        kept = np.ones((words.shape[0], n_blocks), dtype=bool)
        kept[1:] = (by_block[1:] != by_block[:-1]).any(axis=2)
        stored = np.cumsum(kept.sum(axis=0)) - kept.sum(axis=0)
        row_of = np.cumsum(kept, axis=0).T - 1 + stored[:, None]
        table = by_block.transpose(1, 0, 2)[kept.T]  # block after block
        # a padding tree's words are all ones (leaf 0): it points at the trailing 0.0
        tree_of = np.full(n_blocks * width, T, dtype=np.intp)  # T: a padding slot
        tree_of[:T] = order
        slot_tree = tree_of.reshape(n_blocks, width)
        padded_changes = np.zeros((changes.shape[0], n_blocks * width), dtype=bool)
        padded_changes[:, :T] = changes
        by_slots = np.logical_or.reduce(padded_changes.reshape(-1, n_blocks, width), axis=2)
        if top_down:
            # a tree's values from its highest bit down, so that the bit's exponent
            # field (1023 + bit) plus the base is the value's place; a padding tree's
            # word is all ones, its highest bit ``bits - 1``
            values = leaf_value[:, ::-1].ravel()
            shift = 1 + n_max - bits - EXPONENT_BIAS
            pad_shift = 1 - (bits - 1) - EXPONENT_BIAS
        else:
            values, shift, pad_shift = leaf_value.ravel(), 0, 0
        starts = np.cumsum([0] + [u.size for u in thresholds[:-1]]).astype(np.intp)
        return cls(
            table=table,
            row_of=np.ascontiguousarray(row_of, dtype=np.intp),
            row_of_t=np.ascontiguousarray(row_of.T),
            used=[np.flatnonzero(by_slots[:, k]) for k in range(n_blocks)],
            tree_of_slot=slot_tree.ravel(),
            leaf_value=leaf_value,
            num_features=num_features.astype(np.intp),
            thresholds=thresholds,
            num_offset=num_offset,
            missing_row=num_offset + np.array([u.size + 1 for u in thresholds], dtype=np.intp),
            all_columns=num_features.size == d,
            all_thresholds=np.concatenate(thresholds) if thresholds else np.zeros(0),
            threshold_feature=np.repeat(
                np.arange(num_features.size), [u.size for u in thresholds]
            ).astype(np.intp),
            threshold_starts=starts,
            grid=RankGrid.build(thresholds, num_offset),
            cat_features=cat_features.astype(np.intp),
            cat_rows=cat_rows,
            values=np.concatenate(([0.0], values, [0.0])),
            value_base=np.where(slot_tree < T, slot_tree * n_max + shift, T * n_max + pad_shift),
        )

    def table_rows(self, X: FloatArray, cat_bins: IntArray | None) -> IntArray:
        """``(n, features with splits)``: the table row each value of each row selects.

        ``cat_bins`` holds the bins of the categorical features with splits (missing and
        unknown codes in the last bin), from :func:`model.hist.category_bins`.
        """
        n = X.shape[0]
        Xn = X if self.all_columns else X[:, self.num_features]
        missing = np.isnan(Xn)
        any_missing = bool(missing.any())
        if n * self.all_thresholds.size <= 1 << 14 and self.all_thresholds.size:
            # few rows: every comparison at once, then counted per feature
            below = self.all_thresholds < Xn[:, self.threshold_feature]
            rows = np.add.reduceat(below, self.threshold_starts, axis=1, dtype=np.intp)
            rows += self.num_offset
        elif self.grid is not None and not self.grid.searched.size:  # all on the grid
            rows = self.grid.rows(Xn)
        else:
            rows = np.empty(Xn.shape, dtype=np.intp)
            searched = np.arange(Xn.shape[1])
            if self.grid is not None:
                on, searched = self.grid.features, self.grid.searched
                rows[:, on] = self.grid.rows(Xn[:, on])
            for i in searched:
                rows[:, i] = self.num_offset[i] + np.searchsorted(
                    self.thresholds[i], Xn[:, i], side="left"
                )
        if any_missing:
            np.copyto(rows, self.missing_row, where=missing)
        if self.cat_features.size:
            assert cat_bins is not None
            cat = self.cat_rows[np.arange(self.cat_features.size), cat_bins]
            rows = np.concatenate((rows, cat), axis=1)
        return rows

    def predict_sum(self, rows: IntArray) -> FloatArray:
        """Σ over trees of the leaf values reached, from :meth:`table_rows`.

        A small batch gathers every table row it needs at once and ANDs across features;
        a larger one goes a block of trees at a time (:data:`BLOCK_BYTES` of each table
        row), AND-ing the gathered rows of one feature its trees split on after another
        (:attr:`used`) into an accumulator of at most :data:`CHUNK_WORDS` words, so that
        the block's table slice and the accumulator stay in cache."""
        n, f = rows.shape
        n_blocks, width = self.value_base.shape
        table, values, base = self.table, self.values, self.value_base
        out = np.zeros(n)
        if f == 0 or n < LOOP_ROWS:
            step = max(1, CHUNK_WORDS // max(1, f * n_blocks * width))
            for s in range(0, n, step):
                r = rows[s : s + step]
                if f == 0:
                    one = table[self.row_of_t[:1]]
                    alive = np.broadcast_to(one, (r.shape[0], n_blocks, width))
                else:  # (row, block, tree)
                    alive = np.bitwise_and.reduce(table[self.row_of_t[r]], axis=1)
                out[s : s + step] = np.take(values, _leaf_places(alive, base)).sum(axis=(1, 2))
            return out
        step = max(1, CHUNK_WORDS // width)
        ones = np.iinfo(table.dtype).max
        for s in range(0, n, step):
            by_feature = np.ascontiguousarray(rows[s : s + step].T)
            # each tree slot's values summed over the blocks first: one sum over the slots
            acc: FloatArray | None = None
            for row_of, used, block_base in zip(self.row_of, self.used, base, strict=True):
                local = np.take(row_of, by_feature)
                # np.take(axis=0) copies each selected row as one block, faster than indexing
                if used.size:
                    alive = np.take(table, local[used[0]], axis=0)
                else:
                    alive = np.full((local.shape[1], width), ones, dtype=table.dtype)
                for g in used[1:]:
                    alive &= np.take(table, local[g], axis=0)
                value = np.take(values, _leaf_places(alive, block_base))
                if acc is None:
                    acc = value
                else:
                    acc += value
            assert acc is not None
            out[s : s + step] = acc.sum(axis=1)
        return out


def _order_by_unused(changes: NDArray[np.bool_], width: int) -> IntArray:
    """The trees in an order whose blocks of ``width`` share features none of their trees
    splits on (``changes``: features × trees), greedily: a block takes the trees left
    that avoid the feature most of them avoid, then the next such feature while at
    least ``width`` trees remain, and of those the ones splitting on the fewest."""
    n_trees = changes.shape[1]
    left = np.ones(n_trees, dtype=bool)
    order: list[IntArray] = []
    while left.sum() > width:
        chosen = np.flatnonzero(left)
        while True:
            avoid = (~changes[:, chosen]).sum(axis=1)
            avoid[(avoid < width) | (avoid == chosen.size)] = -1
            j = int(np.argmax(avoid)) if avoid.size else 0
            if not avoid.size or avoid[j] < 0:
                break
            chosen = chosen[~changes[j, chosen]]
        pick = chosen[np.argsort(changes[:, chosen].sum(axis=0), kind="stable")[:width]]
        order.append(np.sort(pick))
        left[pick] = False
    order.append(np.flatnonzero(left))
    return np.concatenate(order).astype(np.intp)


def _leaf_places(words: NDArray[np.unsignedinteger], base: IntArray) -> NDArray[np.int64]:
    """Where in :attr:`BitForest.values` the leaf of each word is (``base`` broadcast on it).

    A word of at most :data:`TOP_DOWN_BITS` bits holds leaf 0 in its highest bit, so the
    leaf is its highest set bit: converted to float64 (exact), that bit is the exponent
    field, ``1023 + bit``. A 64-bit word (which float64 would round) holds leaf 0 in its
    lowest bit, counted by :func:`_one_past_lowest_bit`."""
    if words.dtype.itemsize * 8 > TOP_DOWN_BITS:
        return np.add(_one_past_lowest_bit(words), base, dtype=np.int64)
    exponent = words.astype(np.float64).view(np.int64)
    exponent >>= 52
    exponent += base
    return exponent


def _one_past_lowest_bit(words: NDArray[np.unsignedinteger]) -> NDArray[np.uint8]:
    """One more than the index of the lowest set bit of each word (none is zero):
    ``w ^ (w − 1)`` sets that bit and every bit below it, so it is their count."""
    below = words - words.dtype.type(1)
    below ^= words
    return np.bitwise_count(below)
