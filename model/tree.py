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
class-count analogue). Thresholds are midpoints between consecutive distinct values, as in
scikit-learn.

**No sorting after the first.** Each feature is sorted once, at fit: its exact bins, one per
distinct value. Every node keeps, for every feature, its rows in that order (an *attribute
list*, as in SPRINT, Shafer et al. 1996, and XGBoost's exact greedy method): the node's
histogram over the exact bins, stored sparsely, so its cost is the node's rows and not the
feature's number of distinct values. A split partitions each list stably (the rows going left,
then the rows going right, each in the order they had), so both children's lists are in order
without a sort. The tree grows level by level: all the nodes of one depth are searched, split
and partitioned together, each list segmented by node (a cumulative sum over the whole level
minus its value at each node's start), so a level is a fixed number of array passes over
``rows × features``. Nodes are then numbered in pre-order, as a depth-first builder numbers
them.

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
    check_is_fitted,
    check_target,
    check_X_y,
)

IntArray = NDArray[np.intp]
BoolArray = NDArray[np.bool_]
LEAF = -1


@dataclass
class _Level:
    """The open nodes of one depth: their rows in every feature's order, segment by segment.

    ``lists[j]`` holds the rows of the open nodes one node after another, each node's rows
    sorted by feature ``j``; node ``v``'s segment is ``start[v] : start[v] + size[v]`` in every
    list, and ``center[v]`` its mean target (subtracted before summing).
    """

    lists: IntArray  # (d, N)
    start: IntArray  # (V,)
    size: IntArray  # (V,)
    center: FloatArray  # (V, K)

    @property
    def owner(self) -> IntArray:
        """The node of each position of a list."""
        return np.repeat(np.arange(self.size.size), self.size)


@dataclass
class _Splits:
    """The best split of each open node of a level (``found`` false: none is valid)."""

    found: BoolArray  # (V,)
    feature: IntArray  # (V,)
    last_left: IntArray  # (V,) position, in the feature's list, of the last row sent left
    threshold: FloatArray  # (V,)


def _best_splits(
    level: _Level, Xt: FloatArray, Y: FloatArray, min_samples_leaf: int, keys: FloatArray
) -> _Splits:
    """For every open node, the split maximising ``Σ_k (Σ_L Y_k)²/n_L + (Σ_R Y_k)²/n_R``.

    ``Y`` is ``(n, K)``: the target for regression (K = 1), one-hot classes for
    classification; it is centred per node, which leaves the ranking unchanged and keeps the
    squares small. A split must fall between two distinct values and leave
    ``min_samples_leaf`` rows on each side. Among the features, the one with the lowest
    ``keys[v, j]`` that reaches the node's best wins, and within it the first position.
    """
    lists, start, size = level.lists, level.start, level.size
    d, n_pos = lists.shape
    owner = level.owner
    Yc = np.empty_like(Y)
    Yc[lists[0]] = Y[lists[0]] - np.repeat(level.center, size, axis=0)
    cum = np.cumsum(Yc[lists], axis=1)  # (d, N, K)
    before = np.zeros((d, start.size, Y.shape[1]))  # the cumulative sum before each node
    before[:, 1:] = cum[:, start[1:] - 1]
    total = cum[:, start + size - 1] - before  # (d, V, K)
    sum_l = cum - np.repeat(before, size, axis=1)
    sum_r = np.repeat(total, size, axis=1) - sum_l
    n_left = (np.arange(1, n_pos + 1) - np.repeat(start, size)).astype(np.float64)
    n_right = np.repeat(size, size) - n_left
    with np.errstate(divide="ignore", invalid="ignore"):
        score = _squared_norm(sum_l) / n_left
        score += _squared_norm(sum_r) / n_right
    x = np.take_along_axis(Xt, lists, axis=1)  # (d, N): each list's values, in order
    invalid = np.ones((d, n_pos), dtype=bool)
    np.less_equal(x[:, 1:], x[:, :-1], out=invalid[:, :-1])
    invalid |= (n_left < min_samples_leaf) | (n_right < min_samples_leaf)
    score[invalid] = -np.inf
    per_feature = np.maximum.reduceat(score, start, axis=1)  # (d, V)
    best = per_feature.max(axis=0)
    found = best > -np.inf
    ranked = np.where(per_feature == best, keys.T, np.inf)
    feature = np.argmin(ranked, axis=0)
    positions = np.arange(n_pos)
    at_best = score[feature[owner], positions] == best[owner]
    last_left = np.minimum.reduceat(np.where(at_best, positions, n_pos), start)
    last_left = np.where(found, last_left, start)  # a node without a split: any position
    x_left = x[feature, last_left]
    x_right = x[feature, np.minimum(last_left + 1, n_pos - 1)]
    threshold = (x_left + x_right) / 2.0
    # A midpoint rounded up to the right value keeps that value on the left: take the left one.
    threshold = np.where(threshold == x_right, x_left, threshold)
    return _Splits(found, feature, last_left, threshold)


def _squared_norm(s: FloatArray) -> FloatArray:
    """``Σ_k s_k²`` over the last axis."""
    return s[..., 0] ** 2 if s.shape[-1] == 1 else np.einsum("...k,...k->...", s, s)


def _partition(level: _Level, splits: _Splits, kept: BoolArray, n_rows: int) -> IntArray:
    """The next level's lists: every split node's left rows, node after node, then every
    split node's right rows, each in the order they had (a stable partition, no sort); only
    the children in ``kept`` (``(2, V)``: left ones, right ones) stay."""
    lists, size = level.lists, level.size
    owner = level.owner
    positions = np.arange(owner.size)
    # A row goes left iff it is at or before the split position in the split feature's list.
    go_left = np.zeros(n_rows, dtype=bool)
    go_left[lists[splits.feature[owner], positions]] = positions <= splits.last_left[owner]
    left = go_left[lists]  # (d, N)
    d = lists.shape[0]
    keep_left = left & np.repeat(kept[0], size)
    keep_right = ~left
    keep_right &= np.repeat(kept[1], size)
    return np.concatenate((lists[keep_left].reshape(d, -1), lists[keep_right].reshape(d, -1)), 1)


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


def _check_int(name: str, value: Any, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")


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
        if self.max_depth is not None:
            _check_int("max_depth", self.max_depth, 0)
        _check_int("min_samples_split", self.min_samples_split, 2)
        _check_int("min_samples_leaf", self.min_samples_leaf, 1)

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
        """Level-by-level growth over per-feature row lists sorted once (module docstring)."""
        self._check_params()
        rng = np.random.default_rng(self.random_state)
        max_depth = np.inf if self.max_depth is None else self.max_depth
        min_leaf, min_split = int(self.min_samples_leaf), int(self.min_samples_split)
        n, d = X.shape
        Xt = np.ascontiguousarray(X.T)

        def may_split(size: IntArray, pure: BoolArray, depth: int) -> BoolArray:
            return (size >= min_split) & (size >= 2 * min_leaf) & ~pure & (depth < max_depth)

        size = np.array([n], dtype=np.intp)
        value, impurity, pure = self._stats(Y, size)
        # Per level, over all its nodes (numbered level by level from 0): the columns below.
        parts: dict[str, list[Any]] = {k: [] for k in ("feature", "threshold", "left", "right")}
        values, impurities, sizes, levels = [value], [impurity], [size], []
        is_open = may_split(size, pure, 0)
        lists = np.argsort(X, axis=0, kind="stable").T.copy() if is_open.any() else None
        first, depth = 0, 0
        while True:
            n_level = size.size
            nodes = np.arange(first, first + n_level)
            levels.append(nodes)
            feature = np.full(n_level, LEAF, dtype=np.intp)
            threshold = np.full(n_level, np.nan)
            kids = np.full((n_level, 2), LEAF, dtype=np.intp)
            open_at = np.flatnonzero(is_open)
            if open_at.size:
                assert lists is not None
                level = _Level(
                    lists, np.cumsum(size[open_at]) - size[open_at], size[open_at], value[open_at]
                )
                splits = _best_splits(level, Xt, Y, min_leaf, rng.random((open_at.size, d)))
                split_at = open_at[splits.found]
                feature[split_at] = splits.feature[splits.found]
                threshold[split_at] = splits.threshold[splits.found]
                # the next level: the left children, then the right ones
                ids = first + n_level + np.arange(2 * split_at.size)
                kids[split_at] = ids.reshape(2, -1).T
            parts["feature"].append(feature)
            parts["threshold"].append(threshold)
            parts["left"].append(kids[:, 0])
            parts["right"].append(kids[:, 1])
            if not open_at.size or not split_at.size:
                break
            # The children's rows, grouped (left children, then right ones): each split
            # node's segment of its split feature's list holds its left rows, then its right.
            found = splits.found
            n_left = (splits.last_left - level.start + 1)[found]
            size = np.concatenate((n_left, level.size[found] - n_left))
            positions = np.flatnonzero(np.repeat(found, level.size))
            owner = level.owner[positions]
            rows = level.lists[splits.feature[owner], positions]
            goes_left = positions <= splits.last_left[owner]
            value, impurity, pure = self._stats(
                Y[np.concatenate((rows[goes_left], rows[~goes_left]))], size
            )
            values.append(value)
            impurities.append(impurity)
            sizes.append(size)
            first += n_level
            depth += 1
            is_open = may_split(size, pure, depth)
            if not is_open.any():
                lists = None
                continue
            kept = np.zeros((2, level.size.size), dtype=bool)
            kept[:, found] = is_open.reshape(2, -1)
            lists = _partition(level, splits, kept, n)

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
        if Xa.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {Xa.shape[1]} features, but {type(self).__name__} was fitted with "
                f"{self.n_features_in_}"
            )
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
