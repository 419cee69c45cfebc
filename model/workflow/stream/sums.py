"""Pass 2: each kept row's part from its index alone, and per part the sums ``S = Σ u uᵀ`` of the
augmented row vector ``u`` (see :mod:`model.workflow.stream`), the numeric ranges and samples."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from model.base import FloatArray
from model.workflow.config import Feature
from model.workflow.stream.cache import ColumnCache
from model.workflow.stream.reading import Reader, Span, parse_chunk
from model.workflow.stream.sample import Sample, row_hash
from model.workflow.stream.segments import TargetGroups

#: Rows per block when building the augmented matrix: ~8 MB of float64 at a time.
_BLOCK_ELEMENTS = 1 << 20


@dataclass(frozen=True)
class Layout:
    """Where each piece of the augmented row vector ``u`` sits (see the module docstring).

    ``numeric`` lists the numeric features in the pipeline's order (plain, then logged);
    ``categories`` the sorted categories of each categorical feature over the kept rows.
    """

    numeric: tuple[Feature, ...]
    categorical: tuple[Feature, ...]
    categories: tuple[tuple[str, ...], ...]
    shift: FloatArray  # c: mean of t(x) over present kept values, per numeric feature
    raw_shift: FloatArray  # r: mean of raw x, per numeric feature
    y_shift: float
    log_target: bool

    @property
    def n_num(self) -> int:
        return len(self.numeric)

    @property
    def logged(self) -> NDArray[np.bool_]:
        return np.array([f.transform == "log" for f in self.numeric], dtype=bool)

    def num(self, j: int) -> int:
        return j

    def miss(self, j: int) -> int:
        return self.n_num + j

    def raw(self, j: int) -> int:
        return 2 * self.n_num + j

    def onehot_start(self) -> int:
        return 3 * self.n_num

    def cat_offsets(self) -> list[int]:
        out, pos = [], self.onehot_start()
        for cats in self.categories:
            out.append(pos)
            pos += len(cats)
        return out

    @property
    def y(self) -> int:
        return self.onehot_start() + sum(len(c) for c in self.categories)

    @property
    def one(self) -> int:
        return self.y + 1

    @property
    def width(self) -> int:
        return self.y + 2


def permutation(n: int, seed: int) -> NDArray[np.signedinteger[Any]]:
    """``np.random.default_rng(seed).permutation(n)`` in half the memory: the same shuffle of
    ``arange(n)`` (the draws do not depend on the dtype; tests check it)."""
    out: NDArray[np.signedinteger[Any]] = np.arange(n, dtype=np.int32 if n < 2**31 else np.int64)
    np.random.default_rng(seed).shuffle(out)
    return out


def assign_parts(n: int, test_size: float, folds: int, seed: int) -> NDArray[np.int8]:
    """Each kept row's part: its CV fold ``0..folds-1``, or ``folds`` for the test part.

    Exactly the rows of ``train_test_split(..., test_size, random_state=seed)`` followed by
    ``KFold(folds, shuffle=True, random_state=seed)`` on the training rows: both draw one
    seeded permutation of a known length, so the row count is all they need.
    """
    n_test = math.ceil(test_size * n)
    n_train = n - n_test
    train = permutation(n, seed)[:n_train]  # train_test_split's training rows, in its order
    parts = np.full(n, folds, dtype=np.int8)
    order = permutation(n_train, seed)  # KFold's shuffle of the training positions
    sizes = np.full(folds, n_train // folds)
    sizes[: n_train % folds] += 1
    start = 0
    for k, size in enumerate(sizes.tolist()):
        parts[train[order[start : start + size]]] = k
        start += size
    return parts


def _augmented(
    lay: Layout, x: FloatArray, codes: list[NDArray[np.intp]], y: FloatArray
) -> FloatArray:
    """The augmented matrix ``u`` of rows (see the module docstring), column-major so that each
    piece is written in one contiguous sweep: their numeric features ``x`` (one column each,
    NaN missing), each categorical feature's index among its categories (``-1``: none), the
    target."""
    n, m = x.shape
    U = np.zeros((n, lay.width), order="F")
    x = np.asfortranarray(x)
    miss = np.isnan(x)
    present = np.where(miss, 0.0, x)
    logged = lay.logged
    t = present.copy(order="F")
    if logged.any():
        t[:, logged] = np.log1p(present[:, logged])
        raw = U[:, 2 * m : 3 * m]
        raw[:, logged] = np.where(miss, 0.0, present - lay.raw_shift)[:, logged]
    U[:, :m] = np.where(miss, 0.0, t - lay.shift)
    U[:, m : 2 * m] = miss
    rows = np.arange(n)
    for off, c in zip(lay.cat_offsets(), codes, strict=True):
        hit = c >= 0
        U[rows[hit], off + c[hit]] = 1.0
    U[:, lay.y] = (np.log(y) if lay.log_target else y) - lay.y_shift
    U[:, lay.one] = 1.0
    return U


@dataclass(frozen=True)
class Plan:
    """What every pass after the first needs to know, shipped to each partition."""

    lay: Layout
    cat_maps: list[dict[str, int]]
    numeric_filters: dict[str, bool]
    folds: int
    seed: int
    sample_rows: int
    cache: ColumnCache | None = None  # pass 1's columns, when the runner keeps them


def pass2(
    rd: Reader, span: Span | None, plan: Plan, parts: NDArray[np.int8], idx0: int
) -> tuple[FloatArray, FloatArray, FloatArray, list[Sample], list[TargetGroups]]:
    """Per part: ``S = Σ u uᵀ``; min and max of the raw numeric values and of the target (its
    last column); the sample of the same; the target's sums by category (for the segments)."""
    lay, K = plan.lay, plan.folds
    m = lay.n_num
    S = np.zeros((K + 1, lay.width, lay.width))
    lo = np.full((K + 1, m + 1), math.inf)
    hi = np.full((K + 1, m + 1), -math.inf)
    samples = [Sample(plan.sample_rows, m + 1) for _ in range(K + 1)]
    sizes = [len(c) + 1 for c in lay.categories]
    groups = [TargetGroups(sizes) for _ in range(K + 1)]
    for b in blocks(rd, plan, span, parts, idx0):
        values = np.column_stack([b.x, b.y])
        codes = b.segment_codes(lay)
        for k in range(K + 1):
            rows = b.part(k)
            if rows.start == rows.stop:
                continue
            Uk = b.U[rows]
            S[k] += Uk.T @ Uk
            rk = values[rows]
            lo[k] = np.fmin(lo[k], np.fmin.reduce(rk, axis=0))  # fmin: NaN (missing) skipped
            hi[k] = np.fmax(hi[k], np.fmax.reduce(rk, axis=0))
            samples[k].add(b.keys[rows], rk)
            groups[k].add([c[rows] for c in codes], rk[:, m])
    return S, lo, hi, samples, groups


@dataclass
class Block:
    """A block of a partition's kept rows, grouped by part (the rows of part ``k`` are
    :meth:`part` ``(k)``, in file order within it), with their augmented matrix ``U``."""

    U: FloatArray
    x: FloatArray  # numeric features in the layout's order, NaN missing
    y: FloatArray
    codes: list[NDArray[np.intp]]  # per categorical feature: the category's index, -1 none
    keys: NDArray[np.uint64]  # each row's bottom-k sample key (its index's hash)
    bounds: list[int]  # part k is rows bounds[k]:bounds[k + 1]

    def part(self, k: int) -> slice:
        return slice(self.bounds[k], self.bounds[k + 1])

    def segment_codes(self, lay: Layout) -> list[NDArray[np.intp]]:
        """The codes with ``len(categories)`` for none, as the segments count them."""
        return [
            np.where(c >= 0, c, len(names))
            for c, names in zip(self.codes, lay.categories, strict=True)
        ]


def blocks(
    rd: Reader, plan: Plan, span: Span | None, parts: NDArray[np.int8], idx0: int
) -> Iterator[Block]:
    """The partition's kept rows a block at a time (``parts``: theirs, from the partition's
    first; ``idx0``: the index of its first kept row in the file's), grouped by part."""
    for start, x, y, codes in _kept_rows(rd, plan, span):
        part = parts[start : start + y.size]
        order = np.argsort(part, kind="stable")
        bounds = [0, *np.cumsum(np.bincount(part, minlength=plan.folds + 1)).tolist()]
        x, y, codes = x[order], y[order], [c[order] for c in codes]
        keys = row_hash(idx0 + start + order, plan.seed)
        yield Block(_augmented(plan.lay, x, codes, y), x, y, codes, keys, bounds)


def _kept_rows(
    rd: Reader, plan: Plan, span: Span | None
) -> Iterator[tuple[int, FloatArray, FloatArray, list[NDArray[np.intp]]]]:
    """``(index of the first among the partition's kept rows, numeric features, target,
    category indices)`` per block of kept rows: read back from pass 1's cache, or parsed."""
    lay = plan.lay
    rows = max(1, _BLOCK_ELEMENTS // lay.width)
    if plan.cache is not None and plan.cache.ok:
        start = 0
        for nums, y, codes in plan.cache.blocks(rows, plan.cache.lookup(plan.cat_maps)):
            yield start, nums, y, codes
            start += y.size
        return
    start = 0
    for chunk in rd.chunks(span):
        pc = parse_chunk(rd, chunk, None, plan.numeric_filters)
        kept = np.flatnonzero(pc.keep)
        for b in range(0, kept.size, rows):
            keep = kept[b : b + rows]
            x = np.empty((keep.size, lay.n_num))
            for j, f in enumerate(lay.numeric):
                x[:, j] = pc.numbers[f.column][keep]
            codes = []
            for f, index in zip(lay.categorical, plan.cat_maps, strict=True):
                factors = pc.text[f.column]
                lut = [index.get(v, -1) for v in factors.distinct.tolist()]  # None: -1
                codes.append(np.array(lut, dtype=np.intp)[factors.index[keep]])
            yield start, x, pc.target[keep], codes
            start += keep.size
