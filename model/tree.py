"""CART decision trees: greedy binary splits that most reduce the impurity of the children.

A node holding rows ``S`` with impurity ``H(S)`` is split on feature ``j`` at threshold ``t``
into ``L = {x_j <= t}`` and ``R = {x_j > t}``, choosing ``(j, t)`` that maximises the decrease

    Δ = n_S·H(S) − n_L·H(L) − n_R·H(R)

with ``H`` the variance of ``y`` (MSE) for regression and the Gini index ``1 − Σ_k p_k²`` for
classification. Both sums of child impurities can be written with per-side sums only:

    n·Var = Σy² − (Σy)²/n,        n·Gini = n − Σ_k c_k²/n

so, with a node's rows in the order of a feature, cumulative sums of ``y`` (or of one-hot
class counts ``c``) give the children's impurity for *every* threshold of that feature in a
few array operations; the best split maximises ``(Σ_L y)²/n_L + (Σ_R y)²/n_R`` (resp. the
class-count analogue). With ``y`` centred at the node's mean (which shifts every candidate's
score alike), ``Σ_R y = −Σ_L y`` and the score is ``(Σ_L y)²·n/(n_L·n_R)``. Thresholds are
midpoints between consecutive distinct values, as in scikit-learn.

**No sorting after the first.** Each feature is sorted once, at fit, which gives its exact
bins: one per distinct value, so every threshold scikit-learn could choose stays available.
A node's split search then needs, per feature, the sums of ``y`` per bin in bin order (the
node's histogram over the exact bins), kept in one of two forms, whichever costs less:

* a feature with at most :data:`HIST_MAX_BINS` distinct values has dense histograms per node
  (row counts and sums of ``y``, one slot per value), built as :mod:`model.hist` builds the
  boosting's: only the smaller child of a split is counted, the larger one is its parent
  minus it; the cumulative sums over the slots give every threshold's score;
* a feature with more values keeps, per node, its rows in the feature's order (an *attribute
  list*, as in SPRINT, Shafer et al. 1996, and XGBoost's exact greedy method): the same
  histogram stored sparsely, costing the node's rows, not the feature's number of values.
  A split partitions each list stably (the rows going left, then the rows going right, each
  in the order they had), so the children's lists are in order without a sort.

The tree grows level by level: the nodes of one depth are searched, split and partitioned
together, every array segmented by node (a cumulative sum over the whole level minus its value
at each node's start), so a level is a fixed number of array passes. When the deep levels
hold so many small nodes that the histograms' slots outnumber the rows, the binned features
are listed too (their lists made once, by a sort of each node's rows by bin). Nodes are then
numbered in pre-order, as a depth-first builder numbers them.

A node stays a leaf when it is pure, is at ``max_depth``, holds fewer than
``min_samples_split`` rows, or has no threshold leaving ``min_samples_leaf`` rows on each
side. Several splits may score exactly the same (two features ordering the rows alike);
each node ranks the features by keys drawn from ``random_state`` and the first best wins, so
ties are broken at random like scikit-learn's, and reproducibly for a fixed seed.

The fitted tree is kept as flat arrays indexed by node number (``children_left_``,
``feature_``, ``threshold_``, ``value_``...), not as Python node objects: ``predict`` moves all
rows down one level per step with array indexing, and the fitted model pickles as a few arrays.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from model.base import (
    BaseEstimator,
    ClassifierMixin,
    FloatArray,
    RegressorMixin,
    check_array,
    check_int,
    check_is_fitted,
    check_n_features,
    check_target,
    check_X_y,
)

IntArray = NDArray[np.intp]
BoolArray = NDArray[np.bool_]
LEAF = -1


#: A feature with at most this many distinct values is searched on histograms (one bin per
#: value, as :mod:`model.hist`'s binning of such a feature), the others on sorted row lists.
HIST_MAX_BINS = 255
#: Histograms stay while a level's slots are at most this many times its rows x features.
SLOTS_PER_ROW = 1.0


@dataclass
class _Features:
    """How each feature is searched, fixed at fit from the sort of each feature (the only one).

    ``listed`` features keep sorted row lists; ``binned`` ones (at most
    :data:`HIST_MAX_BINS` distinct values) have histograms with one slot per distinct value:
    feature ``binned[i]``'s slots are ``offset[i] : offset[i + 1]``, holding ``bin_value``.
    """

    listed: IntArray
    binned: IntArray
    slots: IntArray  # (n, len(binned)): each row's slot for each binned feature
    offset: IntArray  # (len(binned) + 1,)
    bin_value: FloatArray  # (S,)
    order: IntArray  # (len(listed), n): the rows sorted by each listed feature
    listed_x: FloatArray  # (len(listed), n): the listed features' columns

    @classmethod
    def of(cls, Xt: FloatArray) -> _Features:
        # Rows of equal values may come in any order: no split falls between them.
        order = np.argsort(Xt, axis=1)  # (d, n)
        xs = np.take_along_axis(Xt, order, axis=1)
        new = np.ones(xs.shape, dtype=bool)  # a value differing from the one before it
        np.not_equal(xs[:, 1:], xs[:, :-1], out=new[:, 1:])
        n_distinct = new.sum(axis=1)
        binned = np.flatnonzero(n_distinct <= HIST_MAX_BINS)
        codes = np.empty((binned.size, xs.shape[1]), dtype=np.intp)
        np.put_along_axis(codes, order[binned], np.cumsum(new[binned], axis=1) - 1, axis=1)
        offset = np.concatenate(([0], np.cumsum(n_distinct[binned]))).astype(np.intp)
        return cls(
            listed=np.flatnonzero(n_distinct > HIST_MAX_BINS),
            binned=binned,
            slots=np.ascontiguousarray((codes + offset[:-1, None]).T),
            offset=offset,
            bin_value=xs[binned][new[binned]],
            order=order[n_distinct > HIST_MAX_BINS],
            listed_x=Xt[n_distinct > HIST_MAX_BINS],
        )

    def switch_to_lists(self, Xt: FloatArray) -> None:
        """From now on, every feature is searched on lists (the caller builds them)."""
        self.listed = np.concatenate((self.listed, self.binned))
        self.binned = self.binned[:0]
        self.listed_x = Xt[self.listed]


@dataclass
class _Level:
    """The open nodes of one depth, one after another: node ``v`` owns positions
    ``start[v] : start[v] + size[v]`` of ``members`` (its rows) and of every row of ``lists``
    (its rows sorted by that listed feature); ``count``/``sums`` are the nodes' histograms of
    the binned features (row count, and Σ of ``Y`` centred at the root's mean)."""

    members: IntArray  # (N,)
    size: IntArray  # (V,)
    center: FloatArray  # (V, K): each node's mean of Y
    lists: IntArray  # (len(listed), N)
    count: FloatArray  # (V, S)
    sums: FloatArray  # (V, S, K)

    @property
    def start(self) -> IntArray:
        return np.cumsum(self.size) - self.size

    @property
    def owner(self) -> IntArray:
        """The node of each position."""
        return np.repeat(np.arange(self.size.size), self.size)


@dataclass
class _Splits:
    """The best split of each open node of a level (``found`` false: none is valid)."""

    found: BoolArray  # (V,)
    feature: IntArray  # (V,)
    threshold: FloatArray  # (V,)


def _squared_norm(s: FloatArray) -> FloatArray:
    """``Σ_k s_k²`` over the last axis."""
    return s[..., 0] ** 2 if s.shape[-1] == 1 else np.einsum("...k,...k->...", s, s)


def _scores(sum_l: FloatArray, n_left: FloatArray, n_right: FloatArray) -> FloatArray:
    """``Σ_k (Σ_L Y_k)²/n_L + (Σ_R Y_k)²/n_R`` for ``Y`` centred at the node's mean, so that
    ``Σ_R = −Σ_L``: ``‖Σ_L‖²·n/(n_L·n_R)``; a side with no row scores inf or NaN."""
    score = _squared_norm(sum_l)
    with np.errstate(divide="ignore", invalid="ignore"):
        score *= (n_left + n_right) / (n_left * n_right)
    return score


def _list_scores(
    level: _Level, x_listed: FloatArray, Yc: FloatArray, min_samples_leaf: int
) -> tuple[FloatArray, FloatArray]:
    """The score of every split of every listed feature (``-inf`` where none may be), and the
    lists' values: position ``i`` of a node's list sends its rows up to ``i`` left."""
    lists, size, start = level.lists, level.size, level.start
    d, n_pos = lists.shape
    # one column is gathered as a vector: several times faster than as rows of one
    gathered = Yc[:, 0][lists][..., None] if Yc.shape[1] == 1 else Yc[lists]
    sum_l = np.cumsum(gathered, axis=1, out=gathered)  # (d, N, K), then less each node's start
    before = np.zeros((d, size.size, Yc.shape[1]))  # the cumulative sum before each node
    before[:, 1:] = sum_l[:, start[1:] - 1]
    sum_l -= np.repeat(before, size, axis=1)
    n_left = (np.arange(1, n_pos + 1) - np.repeat(start, size)).astype(np.float64)
    n_right = np.repeat(size, size) - n_left
    score = _scores(sum_l, n_left, n_right)
    x = np.take_along_axis(x_listed, lists, axis=1)  # (d, N)
    invalid = np.ones((d, n_pos), dtype=bool)  # only between two distinct values
    np.less_equal(x[:, 1:], x[:, :-1], out=invalid[:, :-1])
    invalid |= (n_left < min_samples_leaf) | (n_right < min_samples_leaf)
    np.putmask(score, invalid, -np.inf)
    return score, x


def _hist_scores(level: _Level, f: _Features, root_mean: FloatArray, msl: int) -> FloatArray:
    """The score of sending bins ``<= b`` left, for every slot ``b`` of every binned feature
    (``-inf`` where none may be): cumulative histograms, restarted at each feature."""
    count, sums, size = level.count, level.sums, level.size
    width = np.diff(f.offset)
    first = f.offset[:-1]
    n_cum = np.cumsum(count, axis=1)
    s_cum = np.cumsum(sums, axis=1)
    n_before = np.zeros((size.size, first.size))
    s_before = np.zeros((size.size, first.size, sums.shape[2]))
    n_before[:, 1:] = n_cum[:, first[1:] - 1]
    s_before[:, 1:] = s_cum[:, first[1:] - 1]
    n_left = n_cum - np.repeat(n_before, width, axis=1)
    center = (level.center - root_mean)[:, None, :]  # each node's mean, centred as ``sums``
    sum_l = s_cum - np.repeat(s_before, width, axis=1) - n_left[..., None] * center
    n_right = size[:, None] - n_left
    score = _scores(sum_l, n_left, n_right)
    invalid = (count == 0) | (n_left < msl) | (n_right < msl)  # a bin the node has, then
    np.putmask(score, invalid, -np.inf)
    return score


def _midpoint(x_left: FloatArray, x_right: FloatArray) -> FloatArray:
    """The threshold between two consecutive values, as scikit-learn places it."""
    threshold = (x_left + x_right) / 2.0
    # A midpoint rounded up to the right value keeps that value on the left: take the left one.
    return np.where(threshold == x_right, x_left, threshold)


def _best_splits(
    level: _Level,
    f: _Features,
    Xt: FloatArray,
    Y: FloatArray,
    root_mean: FloatArray,
    min_samples_leaf: int,
    keys: FloatArray,
) -> _Splits:
    """For every open node, the split maximising ``Σ_k (Σ_L Y_k)²/n_L + (Σ_R Y_k)²/n_R``.

    ``Y`` is ``(n, K)``: the target for regression (K = 1), one-hot classes for
    classification; it is centred per node, which leaves the ranking unchanged and keeps the
    squares small. A split must fall between two distinct values and leave
    ``min_samples_leaf`` rows on each side. Among the features, the one with the lowest
    ``keys[v, j]`` that reaches the node's best wins, and within it the first threshold.
    """
    d, n_nodes = Xt.shape[0], level.size.size
    start, owner, n_pos = level.start, level.owner, level.members.size
    per_feature = np.full((d, n_nodes), -np.inf)
    if f.listed.size:
        Yc = np.empty_like(Y)
        Yc[level.members] = Y[level.members] - np.repeat(level.center, level.size, axis=0)
        list_score, x = _list_scores(level, f.listed_x, Yc, min_samples_leaf)
        per_feature[f.listed] = np.maximum.reduceat(list_score, start, axis=1)
    if f.binned.size:
        hist_score = _hist_scores(level, f, root_mean, min_samples_leaf)
        per_feature[f.binned] = np.maximum.reduceat(hist_score, f.offset[:-1], axis=1).T
    best = per_feature.max(axis=0)
    found = best > -np.inf
    feature = np.argmin(np.where(per_feature == best, keys.T, np.inf), axis=0)
    threshold = np.full(n_nodes, np.nan)

    row = np.full(d, -1)
    row[f.listed] = np.arange(f.listed.size)
    by_list = found & (row[feature] >= 0)
    if by_list.any():
        r = row[feature][owner]
        positions = np.arange(n_pos)
        at_best = (r >= 0) & (list_score[r, positions] == best[owner])
        last_left = np.minimum.reduceat(np.where(at_best, positions, n_pos), start)[by_list]
        r = row[feature[by_list]]
        threshold[by_list] = _midpoint(x[r, last_left], x[r, last_left + 1])

    row[:] = -1
    row[f.binned] = np.arange(f.binned.size)
    by_hist = np.flatnonzero(found & (row[feature] >= 0))
    if by_hist.size:
        r = row[feature[by_hist]]
        slot = np.arange(f.offset[-1])
        in_feature = (slot >= f.offset[r, None]) & (slot < f.offset[r + 1, None])
        b = np.argmax(in_feature & (hist_score[by_hist] == best[by_hist, None]), axis=1)
        after = in_feature & (slot > b[:, None]) & (level.count[by_hist] > 0)
        threshold[by_hist] = _midpoint(f.bin_value[b], f.bin_value[np.argmax(after, axis=1)])
    return _Splits(found, feature, threshold)


def _histograms(
    rows: IntArray, node: IntArray, n_nodes: int, f: _Features, Y0: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Count and Σ ``Y0`` histograms ``(n_nodes, S)`` of the binned features over ``rows``,
    row ``rows[i]`` counted in node ``node[i]``."""
    n_slots = int(f.offset[-1])
    index = (node[:, None] * n_slots + f.slots[rows]).ravel()
    length = n_nodes * n_slots
    count = np.bincount(index, minlength=length).astype(np.float64)
    sums = np.empty((Y0.shape[1], length))
    for k in range(Y0.shape[1]):
        sums[k] = np.bincount(index, np.repeat(Y0[rows, k], f.binned.size), minlength=length)
    return count.reshape(n_nodes, n_slots), sums.T.reshape(n_nodes, n_slots, Y0.shape[1])


@dataclass
class _Children:
    """The children of a level's split nodes, the left ones then the right ones: their rows
    one child after another (``rows``, ``size``), and the side each row went (``left``, over
    all rows)."""

    rows: IntArray
    size: IntArray
    left: BoolArray

    @classmethod
    def of(cls, level: _Level, splits: _Splits, Xt: FloatArray) -> _Children:
        """A row goes left iff its value of its node's split feature is <= the threshold."""
        owner = level.owner
        in_split = splits.found[owner]
        rows, node = level.members[in_split], owner[in_split]
        go_left = Xt[splits.feature[node], rows] <= splits.threshold[node]
        n_left = np.bincount(node[go_left], minlength=splits.found.size)[splits.found]
        left = np.zeros(Xt.shape[1], dtype=bool)
        left[rows] = go_left
        # the rows of a level are node after node: so are those going left, and right
        return cls(
            np.concatenate((rows[go_left], rows[~go_left])),
            np.concatenate((n_left, level.size[splits.found] - n_left)),
            left,
        )


def _next_level(
    level: _Level,
    splits: _Splits,
    kids: _Children,
    is_open: BoolArray,
    value: FloatArray,
    f: _Features,
    Xt: FloatArray,
    Y0: FloatArray,
) -> _Level | None:
    """The level of the children that may split (``is_open``), or ``None``.

    Each node's lists are partitioned stably (its left rows, then its right rows, each in the
    order they had: no sort). The binned features' histograms are the smaller child's,
    counted, and the larger one's, the parent's minus the smaller; while the level's slots
    stay fewer than its rows times the binned features, then those features are listed too.
    """
    if not is_open.any():
        return None
    size = kids.size
    n_split = size.size // 2
    members = kids.rows[np.repeat(is_open, size)]
    new_size = size[is_open]
    n_new = new_size.size
    kept = np.zeros((2, level.size.size), dtype=bool)
    kept[:, splits.found] = is_open.reshape(2, -1)
    lists = level.lists
    left = kids.left[lists]
    keep_left = left & np.repeat(kept[0], level.size)
    keep_right = ~left
    keep_right &= np.repeat(kept[1], level.size)
    n_lists = lists.shape[0]
    # every list keeps as many rows, so the flat selections reshape back into lists
    flat = lists.ravel()
    n_kept = (size * is_open).reshape(2, -1).sum(axis=1)
    lists = np.concatenate(
        (
            np.compress(keep_left.ravel(), flat).reshape(n_lists, n_kept[0]),
            np.compress(keep_right.ravel(), flat).reshape(n_lists, n_kept[1]),
        ),
        axis=1,
    )
    n_slots = int(f.offset[-1])
    K = Y0.shape[1]
    count, sums = np.zeros((n_new, 0)), np.zeros((n_new, 0, K))
    if f.binned.size and n_new * n_slots <= SLOTS_PER_ROW * members.size * f.binned.size:
        n_left = size[:n_split]
        small_left = n_left <= size[n_split:]
        small = np.where(small_left, np.arange(n_split), n_split + np.arange(n_split))
        of_row = np.repeat(np.arange(2 * n_split), size)
        is_small = np.zeros(2 * n_split, dtype=bool)
        is_small[small] = True
        pick = is_small[of_row]
        c_small, s_small = _histograms(kids.rows[pick], of_row[pick] % n_split, n_split, f, Y0)
        c_big = level.count[splits.found] - c_small
        s_big = level.sums[splits.found] - s_small
        sl = small_left[:, None]
        count = np.concatenate((np.where(sl, c_small, c_big), np.where(sl, c_big, c_small)))
        sl = sl[..., None]
        sums = np.concatenate((np.where(sl, s_small, s_big), np.where(sl, s_big, s_small)))
        count, sums = count[is_open], sums[is_open]
    elif f.binned.size:
        # Too many small nodes for histograms: list the binned features from here on, each
        # node's rows sorted by slot (one sort, once per fit).
        owner = np.repeat(np.arange(n_new), new_size)
        key = owner * n_slots + f.slots[members].T  # (binned, N)
        by_value = members[np.argsort(key, axis=1)]
        lists = np.concatenate((lists, by_value))
        f.switch_to_lists(Xt)
    return _Level(members, new_size, value[is_open], lists, count, sums)


def _preorder(left: IntArray, right: IntArray, levels: list[IntArray]) -> IntArray:
    """The pre-order number (left subtree first) of each node numbered level by level."""
    n_nodes = left.size
    subtree = np.ones(n_nodes, dtype=np.intp)
    for nodes in reversed(levels):
        inner = nodes[left[nodes] != LEAF]
        subtree[inner] += subtree[left[inner]] + subtree[right[inner]]
    order = np.zeros(n_nodes, dtype=np.intp)
    for nodes in levels:
        inner = nodes[left[nodes] != LEAF]
        order[left[inner]] = order[inner] + 1
        order[right[inner]] = order[inner] + 1 + subtree[left[inner]]
    return order


class _BaseTree(BaseEstimator):
    """Shared growth and traversal; subclasses say what ``Y`` and a leaf's value are."""

    def __init__(
        self,
        max_depth: int | None = None,
        min_samples_split: int = 2,
        min_samples_leaf: int = 1,
        random_state: int | None = None,
    ) -> None:
        self.max_depth = max_depth
        self.min_samples_split = min_samples_split
        self.min_samples_leaf = min_samples_leaf
        self.random_state = random_state

    def _check_params(self) -> None:
        check_int("max_depth", self.max_depth, 0, none=True)
        check_int("min_samples_split", self.min_samples_split, 2)
        check_int("min_samples_leaf", self.min_samples_leaf, 1)

    # Subclass hooks ---------------------------------------------------------------------------

    def _impurity(self, Yg: FloatArray, start: IntArray, mean: FloatArray) -> FloatArray:
        """Each group's impurity, from its rows (``Yg[start[i]:start[i+1]]``) and mean."""
        raise NotImplementedError

    # Growth -----------------------------------------------------------------------------------

    def _stats(self, Yg: FloatArray, size: IntArray) -> tuple[FloatArray, FloatArray, BoolArray]:
        """Mean (the leaf value), impurity and purity of consecutive groups of rows of ``Y``."""
        start = np.cumsum(size) - size
        mean = np.add.reduceat(Yg, start, axis=0) / size[:, None]
        pure = (
            np.maximum.reduceat(Yg, start, axis=0) == np.minimum.reduceat(Yg, start, axis=0)
        ).all(1)
        return mean, self._impurity(Yg, start, mean), pure

    def _grow(self, X: FloatArray, Y: FloatArray) -> None:
        """Level-by-level growth on row lists and histograms (see the module docstring)."""
        self._check_params()
        rng = np.random.default_rng(self.random_state)
        max_depth = np.inf if self.max_depth is None else self.max_depth
        min_leaf, min_split = int(self.min_samples_leaf), int(self.min_samples_split)
        n, d = X.shape
        Xt = np.ascontiguousarray(X.T)
        root_mean = Y.mean(axis=0)
        Y0 = Y - root_mean  # the histograms' sums: centred, so that they stay small

        def may_split(size: IntArray, pure: BoolArray, depth: int) -> BoolArray:
            return (size >= min_split) & (size >= 2 * min_leaf) & ~pure & (depth < max_depth)

        size = np.array([n], dtype=np.intp)
        value, impurity, pure = self._stats(Y, size)
        # Per level, over all its nodes (numbered level by level from 0): the columns below.
        parts: dict[str, list[Any]] = {k: [] for k in ("feature", "threshold", "left", "right")}
        values, impurities, sizes, levels = [value], [impurity], [size], []
        is_open = may_split(size, pure, 0)
        level: _Level | None = None
        if is_open.any():
            f = _Features.of(Xt)
            count, sums = _histograms(np.arange(n), np.zeros(n, dtype=np.intp), 1, f, Y0)
            level = _Level(np.arange(n), size, value, f.order, count, sums)
        first, depth = 0, 0
        while True:
            n_level = size.size
            levels.append(np.arange(first, first + n_level))
            feature = np.full(n_level, LEAF, dtype=np.intp)
            threshold = np.full(n_level, np.nan)
            child = np.full((n_level, 2), LEAF, dtype=np.intp)
            open_at = np.flatnonzero(is_open)
            split_at = open_at[:0]
            if level is not None:
                keys = rng.random((open_at.size, d))
                splits = _best_splits(level, f, Xt, Y, root_mean, min_leaf, keys)
                split_at = open_at[splits.found]
                feature[split_at] = splits.feature[splits.found]
                threshold[split_at] = splits.threshold[splits.found]
                # the next level: the left children, then the right ones
                ids = first + n_level + np.arange(2 * split_at.size)
                child[split_at] = ids.reshape(2, -1).T
            parts["feature"].append(feature)
            parts["threshold"].append(threshold)
            parts["left"].append(child[:, 0])
            parts["right"].append(child[:, 1])
            if level is None or not split_at.size:
                break
            first += n_level
            depth += 1
            kids = _Children.of(level, splits, Xt)
            size = kids.size
            value, impurity, pure = self._stats(Y[kids.rows], size)
            values.append(value)
            impurities.append(impurity)
            sizes.append(size)
            is_open = may_split(size, pure, depth)
            level = _next_level(level, splits, kids, is_open, value, f, Xt, Y0)

        left = np.concatenate(parts["left"])
        right = np.concatenate(parts["right"])
        order = _preorder(left, right, levels)
        n_nodes = left.size

        def renumber(a: NDArray[Any]) -> NDArray[Any]:
            out = np.empty_like(a)
            out[order] = a
            return out

        children = np.where(left != LEAF, order[left], LEAF)
        self.children_left_ = renumber(children)
        self.children_right_ = renumber(np.where(right != LEAF, order[right], LEAF))
        self.feature_ = renumber(np.concatenate(parts["feature"]))
        self.threshold_ = renumber(np.concatenate(parts["threshold"]))
        self.value_ = renumber(np.vstack(values))
        self.impurity_ = renumber(np.concatenate(impurities))
        self.n_node_samples_ = renumber(np.concatenate(sizes))
        self.node_count_ = n_nodes
        self.max_depth_ = len(levels) - 1
        self.n_features_in_ = d
        self.feature_importances_ = self._importances()

    def _importances(self) -> FloatArray:
        """Σ over the nodes split on feature j of n·H(node) − n_L·H(L) − n_R·H(R), normalised.

        The total impurity decrease a feature brought (scikit-learn's "Gini importance");
        normalised to sum to one so that trees of different sizes compare.
        """
        inner = np.flatnonzero(self.feature_ != LEAF)
        weighted = self.n_node_samples_ * self.impurity_
        kid_l, kid_r = self.children_left_[inner], self.children_right_[inner]
        decrease = weighted[inner] - weighted[kid_l] - weighted[kid_r]
        importances = np.zeros(self.n_features_in_)
        np.add.at(importances, self.feature_[inner], np.maximum(decrease, 0.0))
        total = importances.sum()
        return importances / total if total > 0 else importances

    # Traversal --------------------------------------------------------------------------------

    def apply(self, X: ArrayLike) -> IntArray:
        """The leaf each row ends in: every row moves down one level per step, all at once."""
        check_is_fitted(self, "children_left_")
        Xa = check_array(X)
        check_n_features(self, Xa)
        node = np.zeros(Xa.shape[0], dtype=np.intp)
        rows = np.arange(Xa.shape[0])
        for _ in range(self.max_depth_):
            j = self.feature_[node]
            inner = j != LEAF
            if not inner.any():
                break
            r, nd = rows[inner], node[inner]
            go_left = Xa[r, j[inner]] <= self.threshold_[nd]
            node[inner] = np.where(go_left, self.children_left_[nd], self.children_right_[nd])
        return node


class DecisionTreeRegressor(RegressorMixin, _BaseTree):
    """CART regression tree: splits minimise the children's summed squared error; a leaf
    predicts the mean of its rows (the constant with the least squared error)."""

    def _impurity(self, Yg: FloatArray, start: IntArray, mean: FloatArray) -> FloatArray:
        size = np.diff(np.append(start, Yg.shape[0]))
        deviation = Yg[:, 0] - np.repeat(mean[:, 0], size)
        return np.add.reduceat(deviation * deviation, start) / size

    def fit(self, X: ArrayLike, y: ArrayLike) -> DecisionTreeRegressor:
        Xa, ya = check_X_y(X, y)
        self._grow(Xa, ya[:, None])
        return self

    def predict(self, X: ArrayLike) -> FloatArray:
        leaves = self.apply(X)  # first: it checks that the tree is fitted
        return self.value_[leaves, 0]


class DecisionTreeClassifier(ClassifierMixin, _BaseTree):
    """CART classification tree: splits minimise the children's summed Gini impurity; a leaf
    holds its rows' class shares, which are ``predict_proba`` (the majority is ``predict``)."""

    def _impurity(self, Yg: FloatArray, start: IntArray, mean: FloatArray) -> FloatArray:
        return 1.0 - (mean * mean).sum(axis=1)

    def fit(self, X: ArrayLike, y: ArrayLike) -> DecisionTreeClassifier:
        Xa = check_array(X)
        ya = check_target(y, Xa.shape[0])
        self.classes_, codes = np.unique(ya, return_inverse=True)
        self.n_classes_ = len(self.classes_)
        Y = np.eye(self.n_classes_)[codes.ravel()]
        self._grow(Xa, Y)
        return self

    def predict_proba(self, X: ArrayLike) -> FloatArray:
        leaves = self.apply(X)  # first: it checks that the tree is fitted
        return self.value_[leaves]

    def predict(self, X: ArrayLike) -> NDArray[Any]:
        proba = self.predict_proba(X)  # first: it checks that the tree is fitted
        return self.classes_[np.argmax(proba, axis=1)]
