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
an AND across features, the lowest set bit (the leaf: ``popcount(w ^ (w − 1)) − 1``), and a
sum of leaf values. The table is stored in blocks of trees, each block's slice contiguous, so
that a large batch runs a block at a time over a table slice and an accumulator that stay
in cache. The words are the smallest unsigned integers that hold the largest tree's leaves
(8 to 64 bits); trees with more than 64 leaves are left to the caller. The tables take
``Σ_features (thresholds + 2) × trees`` words (the trees padded to whole blocks).
"""

from __future__ import annotations

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
BLOCK_BYTES = 512


def _word_type(leaves: int) -> type[np.unsignedinteger]:
    for t in (np.uint8, np.uint16, np.uint32, np.uint64):
        if leaves <= np.iinfo(t).bits:
            return t
    raise ValueError(f"a tree with {leaves} leaves does not fit one 64-bit word")


@dataclass
class BitForest:
    """The tables of the module docstring for trees given as flat node arrays.

    Built by :meth:`build` from the arrays of :class:`model.hist.Forest` (trees laid out one
    after another from ``roots``; children consecutive, ``left[v] = v`` at a leaf).
    """

    #: the table in blocks of trees, ``(blocks, table rows, trees a block)``: a block's
    #: slice of the table is contiguous; the last block is padded with all-ones words
    blocks: NDArray[np.unsignedinteger]
    leaf_value: FloatArray  # (trees, leaves): leaf values, left to right
    num_features: IntArray  # numeric features with splits
    thresholds: list[FloatArray]  # their sorted distinct thresholds
    num_offset: IntArray  # first table row of each (row m + 1 = missing)
    all_thresholds: FloatArray  # every threshold, feature by feature (one-row path)
    threshold_feature: IntArray  # position in ``num_features`` of each
    threshold_starts: IntArray  # where each feature's thresholds begin
    cat_features: IntArray  # categorical features with splits
    cat_rows: IntArray  # (len(cat_features), max_bins + 1): table row of each bin
    values: FloatArray  # leaf values tree by tree, then a 0.0 (the leaf of a padding tree)
    value_base: IntArray  # (blocks, trees a block): where each tree's leaves start in it

    @property
    def nbytes(self) -> int:
        return int(self.blocks.nbytes + self.values.nbytes + self.cat_rows.nbytes)

    @property
    def words(self) -> NDArray[np.unsignedinteger]:
        """The table as ``(table rows, trees)`` (a copy)."""
        b, r, w = self.blocks.shape
        return self.blocks.transpose(1, 0, 2).reshape(r, b * w)[:, : self.leaf_value.shape[0]]

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
        lo = first[inner].astype(np.uint64)
        cleared = ((np.uint64(1) << span) - np.uint64(1)) << lo
        mask = (~cleared & np.uint64(ones)).astype(word)
        n_max = int(n_leaves.max()) if T else 1
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
        n_blocks = -(-T // width)
        padded = np.full((words.shape[0], n_blocks * width), ones, dtype=word)
        padded[:, :T] = words
        # a padding tree's words are all ones (leaf 0): it points at the trailing 0.0
        slot_tree = np.arange(n_blocks * width).reshape(n_blocks, width)
        starts = np.cumsum([0] + [u.size for u in thresholds[:-1]]).astype(np.intp)
        return cls(
            blocks=np.ascontiguousarray(
                padded.reshape(words.shape[0], n_blocks, width).transpose(1, 0, 2)
            ),
            leaf_value=leaf_value,
            num_features=num_features.astype(np.intp),
            thresholds=thresholds,
            num_offset=num_offset,
            all_thresholds=np.concatenate(thresholds) if thresholds else np.zeros(0),
            threshold_feature=np.repeat(
                np.arange(num_features.size), [u.size for u in thresholds]
            ).astype(np.intp),
            threshold_starts=starts,
            cat_features=cat_features.astype(np.intp),
            cat_rows=cat_rows,
            values=np.append(leaf_value.ravel(), 0.0),
            value_base=np.where(slot_tree < T, slot_tree * n_max, T * n_max),
        )

    def table_rows(self, X: FloatArray, cat_bins: IntArray | None) -> IntArray:
        """``(n, features with splits)``: the table row each value of each row selects.

        ``cat_bins`` holds the bins of the categorical features with splits (missing and
        unknown codes in the last bin), from :func:`model.hist.category_bins`.
        """
        n = X.shape[0]
        Xn = X[:, self.num_features]
        if n * self.all_thresholds.size <= 1 << 14 and self.all_thresholds.size:
            # few rows: every comparison at once, then counted per feature
            below = self.all_thresholds < Xn[:, self.threshold_feature]
            k = np.add.reduceat(below, self.threshold_starts, axis=1, dtype=np.intp)
        else:
            k = np.empty(Xn.shape, dtype=np.intp)
            for i, u in enumerate(self.thresholds):
                k[:, i] = np.searchsorted(u, Xn[:, i], side="left")
        missing = np.isnan(Xn)
        if missing.any():
            sizes = np.array([u.size + 1 for u in self.thresholds], dtype=np.intp)
            k = np.where(missing, sizes, k)
        rows = k + self.num_offset
        if self.cat_features.size:
            assert cat_bins is not None
            cat = self.cat_rows[np.arange(self.cat_features.size), cat_bins]
            rows = np.concatenate((rows, cat), axis=1)
        return rows

    def predict_sum(self, rows: IntArray) -> FloatArray:
        """Σ over trees of the leaf values reached, from :meth:`table_rows`.

        A small batch gathers every table row it needs at once and ANDs across features;
        a larger one goes a block of trees at a time (:data:`BLOCK_BYTES` of each table
        row), AND-ing one feature's gathered rows after another into an accumulator of
        at most :data:`CHUNK_WORDS` words, so that the block's table slice and the
        accumulator stay in cache."""
        n, f = rows.shape
        T = self.leaf_value.shape[0]
        n_blocks, _, width = self.blocks.shape
        values, base = self.values, self.value_base
        out = np.zeros(n)
        if f == 0 or n < LOOP_ROWS:
            step = max(1, CHUNK_WORDS // max(1, f * T))
            for s in range(0, n, step):
                r = rows[s : s + step]
                if f == 0:
                    alive = np.broadcast_to(self.blocks[:, :1], (n_blocks, r.shape[0], width))
                else:
                    alive = np.bitwise_and.reduce(self.blocks[:, r], axis=2)  # (block, row, tree)
                leaf = _lowest_bit(alive) + base[:, None, :]
                out[s : s + step] = np.take(values, leaf).sum(axis=(0, 2))
            return out
        step = max(1, CHUNK_WORDS // width)
        columns = [np.ascontiguousarray(rows[:, j]) for j in range(f)]
        for words, block_base in zip(self.blocks, base, strict=True):
            for s in range(0, n, step):
                alive = words[columns[0][s : s + step]]
                for c in columns[1:]:
                    alive &= words[c[s : s + step]]
                out[s : s + step] += np.take(values, _lowest_bit(alive) + block_base).sum(axis=1)
        return out


def _lowest_bit(words: NDArray[np.unsignedinteger]) -> IntArray:
    """The index of the lowest set bit of each word (none is zero): ``w ^ (w − 1)`` sets
    that bit and every bit below it, so it is one less than their count."""
    below = np.bitwise_count(words ^ (words - words.dtype.type(1))).astype(np.intp)
    below -= 1
    return below
