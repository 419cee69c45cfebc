"""Histogram trees: features binned once, splits found from per-node gradient histograms.

The core shared by the gradient-boosted and the random-forest models of
:mod:`model.ensemble`. A tree is fitted to per-row gradients ``g`` and hessians ``h`` of a
loss; for squared error ``g = prediction − y`` and ``h = 1``.

**Binning.** Each numeric feature is cut once, before any tree, at the midpoints between its
distinct values, or at ``max_bins − 1`` quantiles when it has more distinct values; a value
``x`` goes to bin ``b`` = the number of cut points below it, so ``x ≤ cut[b]`` for every ``x``
in bin ``b``. A categorical feature holds integer codes ``0 .. max_bins − 1``, one bin per
code. Missing values (NaN, and at predict time unseen or invalid categories) get a bin of
their own, ``max_bins``, so a split can send them either way.

**Histograms.** At a node, ``G[j, b] = Σ g`` and ``H[j, b] = Σ h`` over its rows in bin ``b``
of feature ``j`` (one ``bincount`` over all features). The histograms of two children add up
to the parent's, so only the smaller child is counted and the larger is ``parent − smaller``.

**Split gain.** Sending the rows with ``G_L, H_L`` left and ``G_R, H_R`` right, out of
``G = G_L + G_R`` and ``H = H_L + H_R``, lowers the second-order loss by

    gain = G_L²/(H_L+λ) + G_R²/(H_R+λ) − G²/(H+λ)        (the factor ½ dropped)

and a leaf's value is the Newton step ``−G/(H+λ)``, λ being ``l2_regularization``. For a
numeric feature the candidates are every bin edge, with the missing bin added to the left or
to the right (the *default direction* learned per split); when the node saw no missing value,
missing goes to the child with more rows. For a categorical feature the categories present
are ordered by ``G_c/(H_c + s)`` (s = :data:`MIN_CAT_SUPPORT`, a smoothing that keeps rare
categories near zero) and every prefix of that order (from either end, of at most half the
categories) is a candidate left set, which finds the best of the ``2^(k−1)`` partitions for
squared error in ``k − 1`` scans (Fisher 1958; the LightGBM rule, as scikit-learn applies it).
Categories with fewer than ``MIN_CAT_SUPPORT`` rows at the node are not ordered and go right.
A split must leave ``min_samples_leaf`` (hessian sum: rows, for squared error) on each side
and have a positive gain.

**Growth.** Best-first: of all the current leaves, the one whose best split gains most is
split next, until ``max_leaf_nodes`` leaves, ``max_depth`` or no positive gain remain.

The fitted tree is flat arrays indexed by node number; the two children of a node are
consecutive (``right = left + 1``), and a leaf points to itself, so a traversal is a fixed
number of identical vectorised steps.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray

from model.quickscorer import MAX_LEAVES, BitForest

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.intp]
BinArray = NDArray[np.uint8]
#: running sums: real, or G and H side by side as the parts of complex numbers
_Sums = TypeVar("_Sums", NDArray[np.float64], NDArray[np.complex128])

#: Rows a category needs at a node to be ordered by its gradient ratio (sklearn and LightGBM).
MIN_CAT_SUPPORT = 10.0
#: The most categories a left set may hold (scikit-learn's limit).
MAX_CAT_THRESHOLD = 32


# --- binning --------------------------------------------------------------------------------


def check_categorical_features(
    spec: Any, n_features: int, name: str = "categorical_features"
) -> NDArray[np.bool_]:
    """A boolean mask from ``None``, a list of column indices or a boolean mask."""
    mask = np.zeros(n_features, dtype=bool)
    if spec is None:
        return mask
    arr = np.asarray(spec)
    if arr.size == 0:
        return mask
    if arr.dtype == bool:
        if arr.shape != (n_features,):
            raise ValueError(
                f"{name}: a boolean mask needs {n_features} entries (one per feature), "
                f"got {arr.shape[0] if arr.ndim == 1 else arr.shape}"
            )
        return arr.copy()
    if arr.ndim != 1 or arr.dtype.kind not in "iu":
        raise ValueError(f"{name}: expected None, a list of column indices or a boolean mask")
    bad = arr[(arr < 0) | (arr >= n_features)]
    if bad.size:
        raise ValueError(
            f"{name}: column index {int(bad[0])} is out of range [0, {n_features - 1}]"
        )
    mask[arr] = True
    return mask


@dataclass
class BinMapper:
    """Per-feature cut points (numeric) or the codes seen (categorical); see the module doc."""

    max_bins: int
    categorical: NDArray[np.bool_]
    cuts: list[FloatArray] = field(default_factory=list)
    n_bins: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.intp))
    #: ``(d, max_bins + 1)``: the codes each categorical feature showed at fit (and missing)
    seen: NDArray[np.bool_] = field(default_factory=lambda: np.zeros((0, 0), dtype=bool))

    @property
    def missing_bin(self) -> int:
        return self.max_bins

    def fit(self, X: FloatArray) -> BinMapper:
        cuts: list[FloatArray] = []
        n_bins = np.zeros(X.shape[1], dtype=np.intp)
        seen = np.zeros((X.shape[1], self.max_bins + 1), dtype=bool)
        seen[:, self.max_bins] = True
        for j in range(X.shape[1]):
            col = X[:, j]
            col = col[~np.isnan(col)]
            if self.categorical[j]:
                bad = (col < 0) | (col >= self.max_bins) | (col != np.round(col))
                if bad.any():
                    raise ValueError(
                        f"X: categorical column {j} must hold integer codes in "
                        f"[0, {self.max_bins - 1}] (max_bins - 1) or NaN, got {col[bad][0]!r}"
                    )
                cuts.append(np.zeros(0))
                n_bins[j] = int(col.max()) + 1 if col.size else 0
                seen[j, col.astype(np.intp)] = True
                continue
            distinct = np.unique(col)
            if distinct.size <= self.max_bins:
                c = (distinct[:-1] + distinct[1:]) / 2.0
            else:
                q = np.linspace(0.0, 100.0, self.max_bins + 1)[1:-1]
                c = np.unique(np.percentile(col, q, method="averaged_inverted_cdf"))
            cuts.append(np.ascontiguousarray(c, dtype=np.float64))
            n_bins[j] = c.size + 1
        self.cuts, self.n_bins, self.seen = cuts, n_bins, seen
        return self

    def transform(self, X: FloatArray) -> BinArray:
        """Bin codes ``(n, d)`` as ``uint8``; missing (and unknown categories) -> ``max_bins``."""
        out = np.empty(X.shape, dtype=np.uint8)
        for j in range(X.shape[1]):
            col = X[:, j]
            if self.categorical[j]:
                out[:, j] = category_bins(col, self.seen[j])
            else:
                b = np.searchsorted(self.cuts[j], col, side="left")
                b[np.isnan(col)] = self.missing_bin
                out[:, j] = b
        return out


def category_bins(codes: FloatArray, seen: NDArray[np.bool_]) -> NDArray[np.intp]:
    """Category codes as bins, for one column (``seen`` 1-D) or several side by side (``seen``
    one row per column); a code not ``seen`` at fit (NaN, negative, fractional, new) goes to
    the missing bin, the last entry of each row of ``seen``."""
    missing = seen.shape[-1] - 1
    with np.errstate(invalid="ignore"):
        ok = (codes >= 0) & (codes < missing) & (codes == np.floor(codes))
    b = np.where(ok, codes, missing).astype(np.intp)
    known = seen[b] if seen.ndim == 1 else seen[np.arange(seen.shape[0]), b]
    return np.where(known, b, missing)


def _half_gains(
    GL: FloatArray, HL: FloatArray, GR: FloatArray, HR: FloatArray, lam: float
) -> FloatArray:
    """``GL²/(HL+λ) + GR²/(HR+λ)``, in place in ``GR`` (a temporary of the caller)."""
    score = GL * GL
    score /= HL + lam if lam else HL
    GR *= GR
    GR /= HR + lam if lam else HR
    score += GR
    return score


# --- one tree ---------------------------------------------------------------------------------


@dataclass
class Tree:
    """A fitted histogram tree as node arrays (children consecutive, leaves self-looping)."""

    feature: IntArray  # split feature; 0 at a leaf
    bin_threshold: IntArray  # left iff bin <= it (numeric); above every bin at a leaf
    threshold: FloatArray  # left iff x <= it (numeric; +inf at a leaf)
    missing_left: NDArray[np.bool_]  # True at a leaf
    cat_row: IntArray  # row of ``cat_left`` for a categorical split, else -1
    cat_left: NDArray[np.bool_]  # (n_categorical_splits, max_bins + 1): bins sent left
    left: IntArray  # left child; the node itself at a leaf
    value: FloatArray  # leaf value (every node holds its own −G/(H+λ), times the shrinkage)
    gain: FloatArray
    hessian: FloatArray  # Σh of the node (rows, for squared error)
    depth: int

    @property
    def is_leaf(self) -> NDArray[np.bool_]:
        return self.left == np.arange(self.left.size)

    def apply_binned(self, Xb: BinArray, missing_bin: int) -> IntArray:
        """The leaf of each row of binned data."""
        node = np.zeros(Xb.shape[0], dtype=np.intp)
        rows = np.arange(Xb.shape[0])
        for _ in range(self.depth):
            b = Xb[rows, self.feature[node]].astype(np.intp)
            go_left = np.where(
                b == missing_bin, self.missing_left[node], b <= self.bin_threshold[node]
            )
            cr = self.cat_row[node]
            cat = np.flatnonzero(cr >= 0)
            if cat.size:
                go_left[cat] = self.cat_left[cr[cat], b[cat]]
            node = self.left[node] + ~go_left
        return node


@dataclass
class SplitParams:
    """The hyperparameters one tree's growth needs."""

    max_leaf_nodes: int | None
    max_depth: int | None
    min_samples_leaf: int
    l2_regularization: float
    max_features: float
    shrinkage: float


@dataclass
class _Split:
    gain: float
    feature: int
    bin: int  # numeric: last bin sent left
    missing_left: bool
    left_bins: NDArray[np.bool_] | None  # categorical: the bins sent left


class TreeGrower:
    """Grows trees on one binned matrix; built once per fit, then ``grow`` per tree.

    The histograms are kept compact: a feature's histogram has one slot per bin it uses and
    one for missing values, so a feature with 5 values costs 6 slots, not ``max_bins + 1``.
    The bins of all numeric features come first, one after another, then the numeric
    features' missing slots, then each categorical feature's bins and missing slot; a split
    search is then a handful of vector operations over all features at once (cumulative sums
    restarted at each feature's first slot), and over the two children of a split at once.
    """

    def __init__(self, Xb: BinArray, mapper: BinMapper) -> None:
        d = Xb.shape[1]
        self.Xb = Xb
        self.columns = np.ascontiguousarray(Xb.T)  # a split reads one column
        self.mapper = mapper
        self.missing_bin = mapper.max_bins
        self.n_total_bins = mapper.max_bins + 1
        self.d = d
        n_bins = mapper.n_bins.astype(np.intp)
        self.n_bins = n_bins
        self.num = np.flatnonzero(~mapper.categorical)
        self.cat = np.flatnonzero(mapper.categorical)
        # slots: numeric bins | numeric missing | categorical bins and missing
        width = np.where(mapper.categorical, n_bins + 1, n_bins)
        order = np.concatenate((self.num, self.cat))
        start = np.concatenate(([0], np.cumsum(width[order])[:-1])).astype(np.intp)
        self.num_size = int(n_bins[self.num].sum())
        start[self.num.size :] += self.num.size
        self.offset = np.zeros(d, dtype=np.intp)
        self.offset[order] = start
        missing_slot = self.offset + n_bins
        missing_slot[self.num] = self.num_size + np.arange(self.num.size)
        self.size = int(width.sum()) + self.num.size
        missing = Xb == self.missing_bin
        self.flat = np.where(missing, missing_slot, self.offset + Xb.astype(np.intp))
        self.total_idx = (
            np.append(self.offset[0] + np.arange(n_bins[0]), missing_slot[0])
            if d
            else np.zeros(0, dtype=np.intp)
        )
        self.num_layout = self._layout(self.num, with_missing=False)
        self.num_missing_slot = missing_slot[self.num]
        had_missing = missing[:, self.num].any(axis=0)
        self.num_with_missing = np.flatnonzero(had_missing[self.num_layout[1]])
        self.num_seg_missing = self.num_layout[1].take(self.num_with_missing)
        self.cat_layout = self._layout(self.cat, with_missing=True)
        # per-fit index arrays, so that a search gathers (take) instead of repeating per node
        _, cseg, _, cwithin = self.cat_layout
        self.cat_lengths = self.n_bins[self.cat] + 1
        self.cat_bin = np.where(
            cwithin == self.n_bins[self.cat].take(cseg), self.missing_bin, cwithin
        ).astype(np.intp)
        self._cat_sorts: dict[int, tuple[IntArray, IntArray, IntArray, int]] = {}
        self._root_counts: FloatArray | None = None

    def _layout(self, features: IntArray, with_missing: bool) -> tuple[IntArray, ...]:
        """Slots of ``features`` in one vector: (slot, segment of each, segment starts)."""
        lengths = self.n_bins[features] + (1 if with_missing else 0)
        seg = np.repeat(np.arange(features.size), lengths)
        starts = np.concatenate(([0], np.cumsum(lengths)[:-1])).astype(np.intp)
        within = np.arange(seg.size) - starts[seg] if seg.size else np.zeros(0, dtype=np.intp)
        slot = self.offset[features][seg] + within
        return slot.astype(np.intp), seg.astype(np.intp), starts, within.astype(np.intp)

    # histograms ---------------------------------------------------------------------------

    def histogram(
        self, rows: IntArray, g: FloatArray, h: FloatArray | None
    ) -> tuple[FloatArray, FloatArray]:
        """``G, H`` over ``rows`` (sorted) in the compact layout; ``h=None`` means ``h = 1``."""
        every = rows.size == self.Xb.shape[0]  # sorted and unique: all rows, in order
        # take: several times faster than fancy indexing for gathering whole rows
        idx = self.flat.ravel() if every else self.flat.take(rows, axis=0).ravel()
        weights = np.repeat(g if every else g.take(rows), self.d)
        G = np.bincount(idx, weights=weights, minlength=self.size)
        if h is None:
            if every:  # the same for every tree
                if self._root_counts is None:
                    self._root_counts = np.bincount(idx, minlength=self.size).astype(np.float64)
                return np.asarray(G, dtype=np.float64), self._root_counts
            H = np.bincount(idx, minlength=self.size)
        else:
            H = np.bincount(idx, weights=np.repeat(h.take(rows), self.d), minlength=self.size)
        return np.asarray(G, dtype=np.float64), np.asarray(H, dtype=np.float64)

    def totals(self, G: FloatArray, H: FloatArray) -> tuple[float, float]:
        """The node's ``Σg, Σh`` (every feature's slots hold each row once)."""
        return float(G.take(self.total_idx).sum()), float(H.take(self.total_idx).sum())

    # split search ---------------------------------------------------------------------------

    def best_splits(
        self,
        G: FloatArray,
        H: FloatArray,
        p: SplitParams,
        features: list[NDArray[np.bool_] | None],
        sums: list[tuple[float, float]] | None = None,
    ) -> list[_Split | None]:
        """For each node's histograms (a row of ``G`` and ``H`` a node), the split of highest
        positive gain (see the module docstring) among its allowed ``features`` (``None``:
        all), or ``None``. Each search runs over all the nodes at once. ``sums``: the nodes'
        :meth:`totals`, when the caller has them."""
        if sums is None:
            sums = [self.totals(Gi, Hi) for Gi, Hi in zip(G, H, strict=True)]
        with np.errstate(divide="ignore", invalid="ignore"):
            return self._search(np.stack((G, H)), p, features, sums)

    def _search(
        self,
        GH: FloatArray,
        p: SplitParams,
        features: list[NDArray[np.bool_] | None],
        sums: list[tuple[float, float]],
    ) -> list[_Split | None]:
        """:meth:`best_splits` of ``GH`` (``G`` and ``H`` stacked: G or H, node, slot), under
        the caller's ``np.errstate`` (empty sides divide by zero)."""
        lam, msl = p.l2_regularization, p.min_samples_leaf
        T = np.array(sums)
        Gt, Ht = T[:, :1], T[:, 1:]  # (node, 1)
        best: list[_Split | None] = [None] * GH.shape[1]
        if self.num.size:
            best = self._best_numeric(GH, Gt, Ht, lam, msl, features)
        if self.cat.size:
            beat = [-np.inf if b is None else b.gain for b in best]
            for i, c in enumerate(self._best_categorical(GH, Gt, Ht, lam, msl, features, beat)):
                if c is not None:
                    best[i] = c
        for i, (gt, ht) in enumerate(sums):
            s = best[i]
            if s is None:
                continue
            parent = gt * gt / (ht + lam)
            s.gain -= parent
            if not math.isfinite(s.gain) or not s.gain > 1e-12 * max(parent, 1e-300):
                best[i] = None
        return best

    def best_split(
        self,
        G: FloatArray,
        H: FloatArray,
        p: SplitParams,
        features: NDArray[np.bool_] | None,
    ) -> _Split | None:
        """:meth:`best_splits` for one node."""
        return self.best_splits(G[None], H[None], p, [features])[0]

    @staticmethod
    def _segment_cumsum(v: FloatArray, starts: IntArray, lengths: IntArray) -> FloatArray:
        """Cumulative sums along the last axis, restarted at each of ``starts`` (segments
        of ``lengths``)."""
        return TreeGrower._restart(v.cumsum(axis=-1), starts, lengths)

    @staticmethod
    def _restart(c: _Sums, starts: IntArray, lengths: IntArray) -> _Sums:
        """Running sums ``c`` along the last axis made to restart at each of ``starts``, in
        place: each segment less the running sum before it."""
        before = np.zeros((*c.shape[:-1], starts.size), dtype=c.dtype)
        # take and repeat: much faster than fancy indexing along the last axis (every
        # segment has a slot, so each start but the first has a slot before it)
        before[..., 1:] = c.take(starts[1:] - 1, axis=-1)
        c -= before.repeat(lengths, axis=-1)
        return c

    def _best_numeric(
        self,
        GH: FloatArray,
        Gt: FloatArray,
        Ht: FloatArray,
        lam: float,
        msl: float,
        features: list[NDArray[np.bool_] | None],
    ) -> list[_Split | None]:
        _, seg, starts, within = self.num_layout
        k = GH.shape[1]
        A = self.num_size
        G, H = GH[0], GH[1]
        GHm = GH.take(self.num_missing_slot, axis=2)  # (G or H, node, feature)
        Hm = GHm[1]
        # left = bins 0..b of the feature (the numeric bins are the first A slots); missing
        # right (direction 0) or left (direction 1, tried only on the slots of features that
        # had missing values at fit)
        lengths = self.n_bins[self.num]
        # G and H as the real and imaginary parts of complex numbers: one cumulative sum
        # (NumPy's is sequential and slow) makes the same additions as two, in about half the time
        LH = np.empty((k, A, 2))
        LH[..., 0] = G[:, :A]
        LH[..., 1] = H[:, :A]
        C = LH.view(np.complex128)[..., 0]
        np.cumsum(C, axis=-1, out=C)
        self._restart(C, starts, lengths)
        allowed = None
        if any(f is not None for f in features):
            mask = np.stack([np.ones(self.d, dtype=bool) if f is None else f for f in features])
            allowed = mask[:, self.num].take(seg, axis=1)
        where = self.num_with_missing
        found: list[tuple[FloatArray, IntArray]] = []
        if where.size == A:
            # every slot may send missing values left: both directions in one batch of
            # (G or H, direction, node, slot) arrays: half the NumPy calls of one batch each
            L = np.empty((2, 2, k, A))
            L[0, 0], L[1, 0] = LH[..., 0], LH[..., 1]
            Ms = GHm.repeat(lengths, axis=2)
            np.add(L[:, 0], Ms, out=L[:, 1])
            HL = L[1, 0]  # direction 0 (missing right): what the chosen split's default reads
            HRd = Ht - L[1]
            score = _half_gains(L[0], L[1], Gt - L[0], HRd, lam)
            bad = np.minimum(L[1], HRd) < msl
            bad[1] |= Ms[1] <= 0
            if allowed is not None:
                bad |= ~allowed
            np.copyto(score, -np.inf, where=bad)
            at = np.argmax(score, axis=2)
            top = score.ravel().take(at.ravel() + np.arange(2 * k) * A).reshape(2, k)
            found = [(top[0], at[0]), (top[1], at[1])]
        else:
            # direction 0 on all A slots, then direction 1 on the W slots of the features that
            # had missing values at fit, side by side in one batch of (G or H, node, candidate)
            # arrays: the NumPy calls of one search for both (each searched apart below)
            W = where.size
            L = np.empty((2, k, A + W))
            L[0, :, :A], L[1, :, :A] = LH[..., 0], LH[..., 1]
            HL = L[1, :, :A]  # direction 0: what the chosen split's default reads
            if W:
                Hms = Hm.take(self.num_seg_missing, axis=1)
                np.add(
                    L[0, :, :A].take(where, axis=1),
                    GHm[0].take(self.num_seg_missing, axis=1),
                    out=L[0, :, A:],
                )
                np.add(L[1, :, :A].take(where, axis=1), Hms, out=L[1, :, A:])
            HRd = Ht - L[1]
            score = _half_gains(L[0], L[1], Gt - L[0], HRd, lam)
            bad = np.minimum(L[1], HRd) < msl
            if allowed is not None:
                bad[:, :A] |= ~allowed
                bad[:, A:] |= ~allowed.take(where, axis=1)
            if W:
                bad[:, A:] |= Hms <= 0
            np.copyto(score, -np.inf, where=bad)
            rows = np.arange(k)
            for direction, part in enumerate((score[:, :A], score[:, A:])):
                if direction == 1 and not W:
                    break
                at = np.argmax(part, axis=1)
                found.append((part[rows, at], at if direction == 0 else where[at]))
        out: list[_Split | None] = []
        for i in range(k):
            best, at, direction = float(found[0][0][i]), int(found[0][1][i]), 0
            if len(found) > 1 and found[1][0][i] > best:
                best, at, direction = float(found[1][0][i]), int(found[1][1][i]), 1
            if not math.isfinite(best):
                out.append(None)
                continue
            # when none was seen here, missing follows the larger child
            miss_here = Hm[i, seg[at]] > 0
            hl, ht = float(HL[i, at]), float(Ht[i, 0])
            missing_left = bool(direction) if miss_here else bool(hl >= ht - hl)
            out.append(_Split(best, int(self.num[seg[at]]), int(within[at]), missing_left, None))
        return out

    def _cat_sort(self, k: int) -> tuple[IntArray, IntArray, IntArray, int]:
        """Index arrays that sort the categories of every (order, node, feature) of ``k``
        nodes in one stable ``argsort`` along the rows of a padded table (one row a group,
        as many columns as the largest feature has slots): where each slot goes in the
        table, where the real slots are in it, and what to add to a row's sorted positions
        to get indices into a node's ``(node, slot)`` histograms."""
        got = self._cat_sorts.get(k)
        if got is None:
            _, seg, starts, within = self.cat_layout
            S, F = seg.size, self.cat.size
            width = int(self.cat_lengths.max())
            row = ((np.arange(2 * k) * F)[:, None] + seg).ravel()
            dest = row * width + np.tile(within, 2 * k)
            real = np.sort(dest)  # where the slots are, row by row (in their own order)
            first = np.tile(starts, 2 * k) + np.repeat(np.arange(2 * k) * S, F)
            first[k * F :] -= k * S  # the -ratio order indexes the same (node, slot) sums
            got = self._cat_sorts[k] = (dest, real, first.take(row), width)
        return got

    def _best_categorical(
        self,
        GH: FloatArray,
        Gt: FloatArray,
        Ht: FloatArray,
        lam: float,
        msl: float,
        features: list[NDArray[np.bool_] | None],
        beat: list[float],
    ) -> list[_Split | None]:
        """The best categorical split of each node (a row of ``G``, ``H``) if its gain is
        above the node's ``beat`` (the best numeric one): every categorical feature of every
        node, in both orders (by ``+ratio`` and ``−ratio``), in one batch of ``(order, node,
        slot)`` arrays; one stable ``argsort`` orders the categories of each (order, node,
        feature) by ratio, one cumulative sum over slots gives the left sums."""
        slot, seg, starts, within = self.cat_layout
        lengths = self.cat_lengths
        k, S = GH.shape[1], slot.size
        V = GH.take(slot, axis=2)  # (G or H, node, slot)
        Gc, Hc = V[0], V[1]
        supported = Hc >= MIN_CAT_SUPPORT
        n_sup = np.add.reduceat(supported, starts, axis=1, dtype=np.intp)  # (node, feature)
        # a left set holds at most half of the supported categories (and MAX_CAT_THRESHOLD),
        # taken from either end of the order, and leaves one right; the unsupported ones
        # always go right (limits worked out per feature, then spread over its slots)
        longest = np.minimum(np.minimum(MAX_CAT_THRESHOLD, (n_sup + 1) // 2), n_sup - 1)
        if any(f is not None for f in features):
            mask = np.stack([np.ones(self.d, dtype=bool) if f is None else f for f in features])
            longest[~mask[:, self.cat]] = 0
        bad_base = within >= longest.repeat(lengths, axis=1)
        dest, real, first, width = self._cat_sort(k)
        # (order, node, feature) rows of keys +ratio, -ratio (inf if unsupported), padded
        # with inf: a stable sort keeps the padding after the row's own unsupported slots
        key = np.empty((2, k, S))
        np.divide(Gc, Hc + MIN_CAT_SUPPORT, out=key[0])
        np.negative(key[0], out=key[1])
        np.copyto(key, np.inf, where=~supported)
        table = np.full(2 * k * self.cat.size * width, np.inf)
        table[dest] = key.ravel()
        order = np.argsort(table.reshape(-1, width), axis=1, kind="stable").ravel().take(real)
        order += first  # as indices into a node's (node, slot)
        order = order.reshape(2, k, S)
        LR = self._segment_cumsum(V.reshape(2, k * S).take(order, axis=1), starts, lengths)
        GL, HL = LR[0], LR[1]  # (order, node, slot)
        HR = Ht - HL
        score = _half_gains(GL, HL, Gt - GL, HR, lam)
        bad = np.minimum(HL, HR) < msl
        bad |= bad_base
        np.copyto(score, -np.inf, where=bad)
        at = np.argmax(score, axis=2)  # (order, node)
        top = score.ravel().take(at.ravel() + np.arange(2 * k) * S).reshape(2, k)
        sign = (top[1] > top[0]).astype(np.intp)  # the +ratio order wins ties
        out: list[_Split | None] = []
        for i in range(k):
            s, a = int(sign[i]), int(at[sign[i], i])
            if not top[s, i] > beat[i]:  # also when every candidate was masked (-inf)
                out.append(None)
                continue
            jj = int(seg[a])
            j = int(self.cat[jj])
            left = np.zeros(self.n_total_bins, dtype=bool)
            left[self.cat_bin[order[s, i, starts[jj] : a + 1] - i * S]] = True
            missing_left = bool(left[self.missing_bin])
            if GH[1, i, self.offset[j] + self.n_bins[j]] == 0:  # none seen: follow the larger child
                missing_left = bool(HL[s, i, a] >= HR[s, i, a])
                left[self.missing_bin] = missing_left
            out.append(_Split(float(top[s, i]), j, -1, missing_left, left))
        return out

    def _go_left(self, rows: IntArray, s: _Split) -> NDArray[np.bool_]:
        b = self.columns[s.feature].take(rows)
        if s.left_bins is not None:
            return s.left_bins.take(b)
        # a numeric split as a table of the bins sent left: one gather instead of three passes
        table = np.zeros(self.n_total_bins, dtype=bool)
        table[: s.bin + 1] = True
        table[self.missing_bin] = s.missing_left
        return table.take(b)

    # growth -------------------------------------------------------------------------------

    def grow(
        self,
        rows: IntArray,
        g: FloatArray,
        h: FloatArray | None,
        p: SplitParams,
        rng: np.random.Generator,
    ) -> tuple[Tree, list[tuple[int, IntArray]]]:
        """Grow one tree on ``rows``; also return each leaf's rows (to update predictions)."""
        lam = p.l2_regularization
        max_leaves = np.inf if p.max_leaf_nodes is None else p.max_leaf_nodes
        max_depth = np.inf if p.max_depth is None else p.max_depth
        n_pick = max(1, round(p.max_features * self.d))

        def features() -> NDArray[np.bool_] | None:
            if n_pick >= self.d:
                return None
            mask = np.zeros(self.d, dtype=bool)
            mask[np.argpartition(rng.random(self.d), n_pick - 1)[:n_pick]] = True
            return mask

        leaf_bin = self.n_total_bins  # a leaf sends every row "left", to itself
        feature: list[int] = [0]
        bin_thr: list[int] = [leaf_bin]
        thr: list[float] = [np.inf]
        miss: list[bool] = [True]
        cat_row: list[int] = [-1]
        cat_left: list[NDArray[np.bool_]] = []
        left: list[int] = [0]
        gains: list[float] = [0.0]
        depth: list[int] = [0]
        node_rows: dict[int, IntArray] = {0: rows}
        G, H = self.histogram(rows, g, h)
        sums = [self.totals(G, H)]
        hists: dict[int, FloatArray] = {}  # a queued node's G and H, stacked
        heap: list[tuple[float, int, _Split]] = []

        @np.errstate(divide="ignore", invalid="ignore")  # a side with no rows divides by 0
        def consider(nodes: list[int], GH: FloatArray) -> None:
            """Search the splits of the ``nodes`` (histograms: ``GH[0]``, ``GH[1]``, a row
            a node) that may split, all at once; queue them."""
            keep = [
                i
                for i, node in enumerate(nodes)
                if depth[node] < max_depth and sums[node][1] >= 2 * p.min_samples_leaf
            ]
            if not keep:
                return
            if len(keep) < len(nodes):
                GH = GH[:, keep]
            drawn = [features() for _ in keep]
            found = self._search(GH, p, drawn, [sums[nodes[i]] for i in keep])
            for row, (i, s) in enumerate(zip(keep, found, strict=True)):
                if s is not None:
                    hists[nodes[i]] = GH[:, row]
                    heapq.heappush(heap, (-s.gain, nodes[i], s))

        consider([0], np.stack((G, H))[:, None])
        n_leaves = 1
        while heap and n_leaves < max_leaves:
            _, node, s = heapq.heappop(heap)
            parent = hists.pop(node)
            r = node_rows.pop(node)
            go = self._go_left(r, s)
            # compress: faster than a boolean index on large nodes, slower on small ones
            kids = (r.compress(go), r.compress(~go)) if r.size > 1000 else (r[go], r[~go])
            first = len(feature)
            feature[node], gains[node], miss[node] = s.feature, s.gain, s.missing_left
            left[node] = first
            bin_thr[node] = s.bin
            if s.left_bins is not None:
                cat_row[node] = len(cat_left)
                cat_left.append(s.left_bins)
                thr[node] = np.nan
            else:
                cuts = self.mapper.cuts[s.feature]
                thr[node] = float(cuts[s.bin]) if s.bin < cuts.size else np.inf
            n_leaves += 1
            for k, kr in enumerate(kids):
                c = first + k
                feature.append(0)
                bin_thr.append(leaf_bin)
                thr.append(np.inf)
                miss.append(True)
                cat_row.append(-1)
                left.append(c)
                gains.append(0.0)
                depth.append(depth[node] + 1)
                node_rows[c] = kr
                sums.append((0.0, 0.0))
            small = 0 if kids[0].size <= kids[1].size else 1
            if n_leaves >= max_leaves:  # the children stay leaves: their sums will do
                rs = kids[small]
                gs, hs = float(g[rs].sum()), float(rs.size if h is None else h[rs].sum())
                sums[first + small] = (gs, hs)
                sums[first + 1 - small] = (sums[node][0] - gs, sums[node][1] - hs)
                continue
            GHk = np.empty((2, 2, self.size))  # (G or H, child, slot)
            GHk[0, small], GHk[1, small] = self.histogram(kids[small], g, h)
            np.subtract(parent, GHk[:, small], out=GHk[:, 1 - small])
            # both children's totals at once: each row sums as :meth:`totals` would
            (g0, g1), (h0, h1) = GHk.take(self.total_idx, axis=2).sum(axis=2).tolist()
            sums[first], sums[first + 1] = (g0, h0), (g1, h1)
            consider([first, first + 1], GHk)

        S = np.asarray(sums)
        value = -S[:, 0] / (S[:, 1] + lam) * p.shrinkage
        value[S[:, 1] + lam == 0] = 0.0
        tree = Tree(
            feature=np.asarray(feature, dtype=np.intp),
            bin_threshold=np.asarray(bin_thr, dtype=np.intp),
            threshold=np.asarray(thr, dtype=np.float64),
            missing_left=np.asarray(miss, dtype=bool),
            cat_row=np.asarray(cat_row, dtype=np.intp),
            cat_left=(
                np.vstack(cat_left) if cat_left else np.zeros((0, self.n_total_bins), dtype=bool)
            ),
            left=np.asarray(left, dtype=np.intp),
            value=value,
            gain=np.asarray(gains, dtype=np.float64),
            hessian=S[:, 1].copy(),
            depth=max(depth),
        )
        return tree, list(node_rows.items())


# --- many trees, predicted together -----------------------------------------------------------


@dataclass
class Forest:
    """Every tree's nodes in one set of arrays, for prediction over all trees at once.

    Row ``i`` of the data is extended to ``[x (NaN kept) | x (NaN -> −inf) | category bins |
    0]``: a numeric split whose missing values go right reads the first copy (``NaN ≤ t`` is
    false), one whose missing values go left the second (``−inf ≤ t`` is true), a leaf reads
    the trailing 0 against ``+inf`` and stays put. A step is then, for every (row, tree):
    ``node = left[node] + not (x[col[node]] ≤ threshold[node])``, with categorical splits
    looked up in their bitsets. That walk costs (rows × trees) × the deepest tree's depth;
    :meth:`predict_sum` scores the trees of at most 64 leaves by their leaf bit vectors
    instead (:mod:`model.quickscorer`, the same leaves for every row, several times faster
    at every batch size measured) and walks only the larger trees.
    """

    col: IntArray
    threshold: FloatArray
    left: IntArray
    value: FloatArray
    cat_row: IntArray
    cat_left: NDArray[np.bool_]
    roots: IntArray
    depth: int
    n_features: int
    categorical: NDArray[np.bool_]
    seen: NDArray[np.bool_]

    @property
    def cat_columns(self) -> IntArray:
        return np.flatnonzero(self.categorical)

    @classmethod
    def build(cls, trees: list[Tree], mapper: BinMapper) -> Forest:
        d = mapper.categorical.size
        max_bins = mapper.max_bins
        cols, thrs, lefts, vals, crows, cls_left, roots = [], [], [], [], [], [], []
        offset, cat_offset = 0, 0
        for t in trees:
            leaf = t.is_leaf
            col = np.where(t.missing_left, t.feature + d, t.feature)
            col = np.where(t.cat_row >= 0, 2 * d + t.feature, col)
            col = np.where(leaf, 3 * d, col)
            cols.append(col)
            thrs.append(np.where(leaf, np.inf, t.threshold))
            lefts.append(t.left + offset)
            vals.append(np.where(leaf, t.value, 0.0))
            crows.append(np.where(t.cat_row >= 0, t.cat_row + cat_offset, -1))
            cls_left.append(t.cat_left)
            roots.append(offset)
            offset += t.left.size
            cat_offset += t.cat_left.shape[0]
        nb = max_bins + 1
        return cls(
            col=np.concatenate(cols) if cols else np.zeros(0, dtype=np.intp),
            threshold=np.concatenate(thrs) if thrs else np.zeros(0),
            left=np.concatenate(lefts) if lefts else np.zeros(0, dtype=np.intp),
            value=np.concatenate(vals) if vals else np.zeros(0),
            cat_row=np.concatenate(crows) if crows else np.zeros(0, dtype=np.intp),
            cat_left=(np.vstack(cls_left) if cls_left else np.zeros((0, nb), dtype=bool)),
            roots=np.asarray(roots, dtype=np.intp),
            depth=max((t.depth for t in trees), default=0),
            n_features=d,
            categorical=mapper.categorical,
            seen=mapper.seen,
        )

    def extend(self, X: FloatArray) -> FloatArray:
        """``[x | x with NaN -> −inf | category bins | 0]`` (see the class docstring)."""
        n, d = X.shape
        E = np.empty((n, 3 * d + 1), dtype=np.float64)
        E[:, :d] = X
        np.copyto(E[:, d : 2 * d], np.where(np.isnan(X), -np.inf, X))
        E[:, 2 * d : 3 * d] = 0.0
        if self.cat_columns.size:
            cats = self.cat_columns
            E[:, 2 * d + cats] = category_bins(X[:, cats], self.seen[cats])
        E[:, 3 * d] = 0.0
        return E

    def leaves(self, X: FloatArray) -> IntArray:
        """``(n, n_trees)`` global node index of the leaf each row reaches in each tree."""
        n = X.shape[0]
        T = self.roots.size
        E = self.extend(X).ravel()
        width = 3 * self.n_features + 1
        node = np.tile(self.roots, n)
        # one row needs no row offset: a step is then one gather fewer
        base = np.repeat(np.arange(n, dtype=np.intp) * width, T) if n > 1 else None
        has_cat = self.cat_left.shape[0] > 0
        col, thr, left = self.col, self.threshold, self.left
        for _ in range(self.depth):
            x = E[col[node] if base is None else base + col[node]]
            le = x <= thr[node]
            if has_cat:
                cr = self.cat_row[node]
                c = np.flatnonzero(cr >= 0)
                if c.size:
                    le[c] = self.cat_left[cr[c], x[c].astype(np.intp)]
            node = left[node] + ~le
        return node.reshape(n, T)

    def predict_sum(self, X: FloatArray) -> FloatArray:
        """Σ over trees of the leaf values each row reaches: the trees of at most
        :data:`model.quickscorer.MAX_LEAVES` leaves by their bit vectors, any others level
        by level (:meth:`predict_sum_levelwise`)."""
        bits, rest = self._parts()
        total = np.zeros(X.shape[0])
        if bits is not None:
            cats = bits.cat_features
            cat_bins = category_bins(X[:, cats], self.seen[cats]) if cats.size else None
            total += bits.predict_sum(bits.table_rows(X, cat_bins))
        if rest is not None:
            total += rest.predict_sum_levelwise(X)
        return total

    def predict_sum_levelwise(self, X: FloatArray) -> FloatArray:
        """Σ over trees of the leaf values each row reaches, one depth level a step."""
        if self.roots.size == 0:
            return np.zeros(X.shape[0])
        return self.value[self.leaves(X)].sum(axis=1)

    # the bit-vector tables are derived data: built on first use, not pickled
    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_parts_cache", None)
        return state

    def _parts(self) -> tuple[BitForest | None, Forest | None]:
        """The small trees' :class:`~model.quickscorer.BitForest` and the other trees."""
        cached = self.__dict__.get("_parts_cache")
        if cached is None:
            cached = self._split_by_size()
            self.__dict__["_parts_cache"] = cached
        return cached

    def _split_by_size(self) -> tuple[BitForest | None, Forest | None]:
        if self.roots.size == 0:
            return None, None
        is_leaf = self.left == np.arange(self.left.size)
        n_leaves = np.add.reduceat(is_leaf.astype(np.intp), self.roots)
        small = n_leaves <= MAX_LEAVES
        bits = None
        if small.any():
            part = self if small.all() else self.subset(small)
            bits = BitForest.build(
                part.col,
                part.threshold,
                part.left,
                part.value,
                part.cat_row,
                part.cat_left,
                part.roots,
                self.n_features,
                self.seen,
            )
        rest = None if small.all() else self if not small.any() else self.subset(~small)
        return bits, rest

    def subset(self, keep: NDArray[np.bool_]) -> Forest:
        """The forest of the trees where ``keep`` is true."""
        ends = np.append(self.roots[1:], self.left.size)
        starts, stops = self.roots[keep], ends[keep]
        sizes = stops - starts
        roots = np.concatenate(([0], np.cumsum(sizes)[:-1])).astype(np.intp)
        nodes = np.concatenate([np.arange(a, b) for a, b in zip(starts, stops, strict=True)])
        shift = np.repeat(starts - roots, sizes)
        return Forest(
            col=self.col[nodes],
            threshold=self.threshold[nodes],
            left=self.left[nodes] - shift,
            value=self.value[nodes],
            cat_row=self.cat_row[nodes],
            cat_left=self.cat_left,
            roots=roots,
            depth=self.depth,
            n_features=self.n_features,
            categorical=self.categorical,
            seen=self.seen,
        )
