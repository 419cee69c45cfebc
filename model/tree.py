"""CART decision trees: greedy binary splits that most reduce the impurity of the children.

A node holding rows ``S`` with impurity ``H(S)`` is split on feature ``j`` at threshold ``t``
into ``L = {x_j <= t}`` and ``R = {x_j > t}``, choosing ``(j, t)`` that maximises the decrease

    Δ = n_S·H(S) − n_L·H(L) − n_R·H(R)

with ``H`` the variance of ``y`` (MSE) for regression and the Gini index ``1 − Σ_k p_k²`` for
classification. Both sums of child impurities can be written with per-side sums only:

    n·Var = Σy² − (Σy)²/n,        n·Gini = n − Σ_k c_k²/n

so sorting a feature once and taking cumulative sums of ``y`` (or of one-hot class counts ``c``)
gives the children's impurity for *every* threshold of *every* feature in a few array
operations; the best split maximises ``(Σ_L y)²/n_L + (Σ_R y)²/n_R`` (resp. the class-count
analogue). Thresholds are midpoints between consecutive distinct values, as in scikit-learn.

A node stays a leaf when it is pure, is at ``max_depth``, holds fewer than
``min_samples_split`` rows, or has no threshold leaving ``min_samples_leaf`` rows on each
side. Several splits may score exactly the same (two features ordering the rows alike);
features are scanned in an order drawn from ``random_state`` and the first best wins, so
ties are broken at random like scikit-learn's, and reproducibly for a fixed seed.

The fitted tree is kept as flat arrays indexed by node number (``children_left_``,
``feature_``, ``threshold_``, ``value_``...), not as Python node objects: ``predict`` moves all
rows down one level per step with array indexing, and the fitted model pickles as a few arrays.
"""

from __future__ import annotations

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
LEAF = -1


def _best_split(
    X: FloatArray, Y: FloatArray, min_samples_leaf: int, order: IntArray
) -> tuple[int, float] | None:
    """The split maximising ``Σ_k (Σ_L Y_k)²/n_L + (Σ_R Y_k)²/n_R``, or ``None``.

    ``Y`` is ``(n, K)``: the centred target for regression (K = 1), one-hot classes for
    classification. Returns ``(feature, threshold)``. Features are scanned in the given
    ``order`` and the first maximum wins, so a seeded order breaks ties reproducibly.
    """
    n = X.shape[0]
    Xo = X[:, order]
    rows = np.argsort(Xo, axis=0, kind="stable")  # (n, d): each feature sorted once
    xs = np.take_along_axis(Xo, rows, axis=0)
    # Cumulative sums of Y down each sorted feature: (n, d, K). Row i = left child of size i+1.
    left = np.cumsum(Y[rows], axis=0)
    total = left[-1]
    n_left = np.arange(1, n + 1, dtype=np.float64)[:, None]
    n_right = n - n_left
    # Only the first n-1 positions split anything; a split must also fall between two
    # distinct values and leave at least min_samples_leaf rows on each side.
    sum_l = left[:-1]
    sum_r = total[None] - sum_l
    with np.errstate(divide="ignore", invalid="ignore"):
        score = (sum_l**2).sum(axis=2) / n_left[:-1] + (sum_r**2).sum(axis=2) / n_right[:-1]
    valid = xs[1:] > xs[:-1]
    size_ok = (n_left[:-1] >= min_samples_leaf) & (n_right[:-1] >= min_samples_leaf)
    valid &= size_ok
    if not valid.any():
        return None
    score = np.where(valid, score, -np.inf)
    # Column-major flat argmax: the first feature (in ``order``) holding the maximum.
    flat = int(np.argmax(score.T))
    j, i = divmod(flat, n - 1)
    threshold = (xs[i, j] + xs[i + 1, j]) / 2.0
    if threshold == xs[i + 1, j]:  # midpoint rounded up to the right value: keep it left
        threshold = xs[i, j]
    return int(order[j]), float(threshold)


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

    def _node_stats(self, Y: FloatArray) -> tuple[FloatArray, float]:
        """A node's leaf value and impurity from its rows of ``Y``."""
        raise NotImplementedError

    # Growth -----------------------------------------------------------------------------------

    def _grow(self, X: FloatArray, Y: FloatArray) -> None:
        """Depth-first growth with an explicit stack; nodes are numbered in pre-order."""
        self._check_params()
        rng = np.random.default_rng(self.random_state)
        max_depth = np.inf if self.max_depth is None else self.max_depth
        n, d = X.shape
        left: list[int] = []
        right: list[int] = []
        feature: list[int] = []
        threshold: list[float] = []
        value: list[FloatArray] = []
        impurity: list[float] = []
        counts: list[int] = []
        depth_reached = 0
        # (parent, is_left, rows, depth): a node is numbered when popped, giving pre-order.
        stack: list[tuple[int, bool, IntArray, int]] = [(LEAF, True, np.arange(n), 0)]
        while stack:
            parent, is_left, rows, depth = stack.pop()
            node = len(counts)
            v, h = self._node_stats(Y[rows])
            left.append(LEAF)
            right.append(LEAF)
            feature.append(LEAF)
            threshold.append(np.nan)
            value.append(v)
            impurity.append(h)
            counts.append(len(rows))
            if parent != LEAF:
                (left if is_left else right)[parent] = node
            depth_reached = max(depth_reached, depth)

            m = len(rows)
            if depth >= max_depth or m < self.min_samples_split or m < 2 * self.min_samples_leaf:
                continue
            Yn = Y[rows]
            if (Yn == Yn[0]).all():  # pure: no split can lower the impurity
                continue
            # Centring leaves the split scores' ranking unchanged and keeps the squares small.
            found = _best_split(
                X[rows], Yn - Yn.mean(axis=0), int(self.min_samples_leaf), rng.permutation(d)
            )
            if found is None:
                continue
            j, t = found
            feature[node], threshold[node] = j, t
            go_left = X[rows, j] <= t
            # Right pushed first so the left subtree is grown (and numbered) first.
            stack.append((node, False, rows[~go_left], depth + 1))
            stack.append((node, True, rows[go_left], depth + 1))

        self.children_left_ = np.asarray(left, dtype=np.intp)
        self.children_right_ = np.asarray(right, dtype=np.intp)
        self.feature_ = np.asarray(feature, dtype=np.intp)
        self.threshold_ = np.asarray(threshold, dtype=np.float64)
        self.value_ = np.vstack(value)
        self.impurity_ = np.asarray(impurity, dtype=np.float64)
        self.n_node_samples_ = np.asarray(counts, dtype=np.intp)
        self.node_count_ = len(counts)
        self.max_depth_ = depth_reached
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

    def _node_stats(self, Y: FloatArray) -> tuple[FloatArray, float]:
        mean = Y.mean(axis=0)
        return mean, float(((Y - mean) ** 2).mean())

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

    def _node_stats(self, Y: FloatArray) -> tuple[FloatArray, float]:
        p = Y.mean(axis=0)
        return p, float(1.0 - (p**2).sum())

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
