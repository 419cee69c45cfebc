"""Pass 2: each kept row's part from its index alone, and per part the sums ``S = Σ u uᵀ`` of the
augmented row vector ``u`` (see :mod:`model.workflow.stream`), the numeric ranges and samples."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from model.base import FloatArray
from model.workflow.config import Feature
from model.workflow.stream.cache import ColumnCache
from model.workflow.stream.reading import Parsed, Reader, Span, parse_chunk
from model.workflow.stream.sample import Sample, row_hash
from model.workflow.stream.segments import TargetGroups, category_codes

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
    lay: Layout, xs: list[FloatArray], codes: list[NDArray[np.intp]], y: FloatArray
) -> FloatArray:
    """The augmented matrix ``u`` of rows (see the module docstring): their numeric features
    ``xs`` (NaN missing), each categorical feature's layout index (``-1``: none), target."""
    n = y.size
    U = np.zeros((n, lay.width))
    logged = lay.logged
    for j, x in enumerate(xs):
        miss = np.isnan(x)
        t = np.log1p(np.where(miss, 0.0, x)) if logged[j] else x
        U[:, lay.num(j)] = np.where(miss, 0.0, t - lay.shift[j])
        U[:, lay.miss(j)] = miss
        if logged[j]:
            U[:, lay.raw(j)] = np.where(miss, 0.0, x - lay.raw_shift[j])
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
    for start, U, pc, keep in blocks(rd, plan, span):
        part = parts[start : start + U.shape[0]]
        values = np.column_stack(
            [*(pc.numbers[f.column][keep] for f in lay.numeric), pc.target[keep]]
        )
        codes = category_codes(lay, U)
        keys = row_hash(np.arange(idx0 + start, idx0 + start + U.shape[0]), plan.seed)
        for k in range(K + 1):
            sel = part == k
            if not sel.any():
                continue
            Uk = U[sel]
            S[k] += Uk.T @ Uk
            rk = values[sel]
            lo[k] = np.fmin(lo[k], np.min(np.where(np.isnan(rk), np.inf, rk), axis=0))
            hi[k] = np.fmax(hi[k], np.max(np.where(np.isnan(rk), -np.inf, rk), axis=0))
            samples[k].add(keys[sel], rk)
            groups[k].add([c[sel] for c in codes], rk[:, m])
    return S, lo, hi, samples, groups


def blocks(
    rd: Reader, plan: Plan, span: Span | None
) -> Iterator[tuple[int, FloatArray, Parsed, NDArray[np.bool_]]]:
    """``(index of its first row among the partition's kept rows, u, parsed chunk, kept rows)``
    per block of a chunk."""
    start = 0
    lay = plan.lay
    rows = max(1, _BLOCK_ELEMENTS // lay.width)
    if plan.cache is not None and plan.cache.ok:
        names = [f.column for f in lay.numeric]
        for nums, y, codes in plan.cache.blocks(rows, plan.cache.lookup(plan.cat_maps)):
            xs = [nums[:, j] for j in range(len(names))]
            keep = np.ones(y.size, dtype=bool)
            pc = Parsed(dict(zip(names, xs, strict=True)), {}, y, np.empty(0, np.int64), keep)
            yield start, _augmented(lay, xs, codes, y), pc, keep
            start += y.size
        return
    for chunk in rd.chunks(span):
        pc = parse_chunk(rd, chunk, None, plan.numeric_filters)
        kept = np.flatnonzero(pc.keep)
        for b in range(0, kept.size, rows):
            keep = np.zeros(pc.keep.size, dtype=bool)
            keep[kept[b : b + rows]] = True
            xs = [pc.numbers[f.column][keep] for f in lay.numeric]
            codes = [
                np.fromiter(
                    map(index.get, pc.text[f.column][keep].tolist(), itertools.repeat(-1)),
                    np.intp,
                    int(keep.sum()),
                )
                for f, index in zip(lay.categorical, plan.cat_maps, strict=True)
            ]
            U = _augmented(lay, xs, codes, pc.target[keep])
            yield start, U, pc, keep
            start += U.shape[0]
