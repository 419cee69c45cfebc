"""The model card's per-segment test errors (:func:`model.workflow.train.segment_metrics`) from
sums, for an engine that never holds the rows.

- Which categorical feature to split by: the largest ε² of the target (its log when every
  training target is positive) grouped by the feature's categories on the training rows. ε²
  needs the one-way sums of squares only, so pass 2 keeps per part, for both scales, the
  rows' count, mean and sum of squared deviations (merged with Chan et al.'s formula, free of
  cancellation) and per category the count and the sum of the target (:class:`TargetGroups`).
  A row's category is the index pass 1 gave it (:meth:`.sums.Block.segment_codes`).
- Pass 3 then sums, per candidate model and per segment of the test rows (each category of
  that feature, and each quintile of the actual target, whose edges come from pass 2's
  sample of the test part), what :func:`model.workflow.train._segment_scores` reports:
  squared, absolute, relative and log errors and the signed error (:class:`SegmentSums`).

The quintile edges are exact while the test part holds at most the sample's rows (the
median's rank error otherwise, see :mod:`model.workflow.stream`); everything else equals
the memory engine's figures to rounding.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from model.base import FloatArray

if TYPE_CHECKING:
    from model.workflow.stream.sums import Layout


@dataclass
class Moments:
    """Count, mean and sum of squared deviations of a stream of numbers."""

    n: int = 0
    mean: float = 0.0
    m2: float = 0.0

    def add(self, x: FloatArray) -> None:
        if x.size:
            d = x - x.mean()
            self.merge(Moments(int(x.size), float(x.mean()), float(d @ d)))

    def merge(self, other: Moments) -> Moments:
        n = self.n + other.n
        if other.n:
            delta = other.mean - self.mean
            self.m2 += other.m2 + delta * delta * self.n * other.n / n
            self.mean += delta * other.n / n
            self.n = n
        return self


@dataclass
class TargetGroups:
    """One part's sums for the one-way analysis of the target by each categorical feature, on
    the linear and on the log scale (the log only where the target is positive)."""

    sizes: list[int]  # categories per feature, plus one for missing
    nonpositive: int = 0
    total: list[Moments] = field(default_factory=lambda: [Moments(), Moments()])
    counts: list[NDArray[np.int64]] = field(default_factory=list)
    sums: list[list[FloatArray]] = field(default_factory=lambda: [[], []])

    def __post_init__(self) -> None:
        if not self.counts:
            self.counts = [np.zeros(s, dtype=np.int64) for s in self.sizes]
            self.sums = [[np.zeros(s) for s in self.sizes] for _ in range(2)]

    def add(self, codes: Sequence[NDArray[np.intp]], y: FloatArray) -> None:
        positive = y > 0
        self.nonpositive += int(y.size - positive.sum())
        with np.errstate(divide="ignore", invalid="ignore"):
            scaled = (y, np.where(positive, np.log(np.where(positive, y, 1.0)), 0.0))
        for s, values in enumerate(scaled):
            self.total[s].add(values)
            for i, c in enumerate(codes):
                self.sums[s][i] += np.bincount(c, weights=values, minlength=self.sizes[i])
        for i, c in enumerate(codes):
            self.counts[i] += np.bincount(c, minlength=self.sizes[i])

    def merge(self, other: TargetGroups) -> TargetGroups:
        self.nonpositive += other.nonpositive
        for s in range(2):
            self.total[s].merge(other.total[s])
            for i in range(len(self.sizes)):
                self.sums[s][i] = self.sums[s][i] + other.sums[s][i]
        for i in range(len(self.sizes)):
            self.counts[i] = self.counts[i] + other.counts[i]
        return self

    def signals(self, names: Sequence[str]) -> dict[str, float]:
        """ε² of each feature (:func:`model.workflow.explore.category_signal`), rounded and
        without the NaNs, as :func:`model.workflow.train.segment_metrics` records them."""
        from model.workflow.explore import epsilon_squared

        s = 1 if self.nonpositive == 0 else 0  # explore.target_scale's choice
        tot = self.total[s]
        out = {}
        for i, name in enumerate(names):
            n_g = self.counts[i]
            seen = n_g > 0
            mean_g = self.sums[s][i][seen] / n_g[seen]
            between = float(n_g[seen] @ (mean_g - tot.mean) ** 2)
            value = epsilon_squared(between, tot.m2, tot.n, int(seen.sum()))
            if not math.isnan(value):
                out[name] = round(value, 6)
        return out


@dataclass
class SegmentSums:
    """Per candidate model and segment: the sums behind ``_segment_scores``."""

    n: NDArray[np.int64]  # (segments,) the rows are the same for every candidate
    y_min: FloatArray
    y_max: FloatArray
    y_zero: NDArray[np.int64]
    se: FloatArray  # (candidates, segments)
    ae: FloatArray
    ape: FloatArray
    sle: FloatArray
    bias: FloatArray
    log_bad: NDArray[np.int64]

    @classmethod
    def empty(cls, candidates: int, segments: int) -> SegmentSums:
        z = np.zeros((candidates, segments))
        return cls(
            np.zeros(segments, dtype=np.int64),
            np.full(segments, math.inf),
            np.full(segments, -math.inf),
            np.zeros(segments, dtype=np.int64),
            z.copy(),
            z.copy(),
            z.copy(),
            z.copy(),
            z.copy(),
            np.zeros((candidates, segments), dtype=np.int64),
        )

    def add(self, seg: NDArray[np.intp], y: FloatArray, P: FloatArray) -> None:
        """Rows of segments ``seg`` with actual ``y`` and each candidate's prediction ``P``."""
        size = self.n.size
        self.n += np.bincount(seg, minlength=size)
        np.minimum.at(self.y_min, seg, y)
        np.maximum.at(self.y_max, seg, y)
        self.y_zero += np.bincount(seg, weights=(y == 0), minlength=size).astype(np.int64)
        with np.errstate(divide="ignore", invalid="ignore"):
            for c in range(P.shape[1]):
                p = P[:, c]
                e = p - y
                ok = (y > 0) & (p > 0)
                d = np.where(ok, np.log(np.where(ok, p, 1.0)) - np.log(np.where(ok, y, 1.0)), 0.0)
                rel = np.where(y != 0, np.abs(e) / np.where(y != 0, np.abs(y), 1.0), 0.0)
                for total, w in (
                    (self.se, e * e),
                    (self.ae, np.abs(e)),
                    (self.ape, rel),
                    (self.sle, d * d),
                    (self.bias, e),
                ):
                    total[c] += np.bincount(seg, weights=w, minlength=size)
                self.log_bad[c] += np.bincount(seg, weights=~ok, minlength=size).astype(np.int64)

    def merge(self, other: SegmentSums) -> SegmentSums:
        self.n += other.n
        self.y_min = np.minimum(self.y_min, other.y_min)
        self.y_max = np.maximum(self.y_max, other.y_max)
        self.y_zero += other.y_zero
        for name in ("se", "ae", "ape", "sle", "bias", "log_bad"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        return self

    def scores(self, c: int, g: int) -> dict[str, Any]:
        """``_segment_scores``' record of segment ``g`` under candidate ``c``."""
        n = int(self.n[g])
        return {
            "rows": n,
            "rmse_log": math.sqrt(self.sle[c, g] / n) if self.log_bad[c, g] == 0 else math.nan,
            "rmse": math.sqrt(self.se[c, g] / n),
            "mae": float(self.ae[c, g] / n),
            "mape": float(self.ape[c, g] / n) if self.y_zero[g] == 0 else math.nan,
            "bias": float(self.bias[c, g] / n),
        }


@dataclass(frozen=True)
class SegmentPlan:
    """What pass 3 needs to place a test row in its segments."""

    feature: int | None  # index among the layout's categorical features, or None
    price_edges: FloatArray  # the inner quintile edges of the test part's actual target


def price_edges(y_test: FloatArray) -> FloatArray:
    """:func:`model.workflow.train.segment_metrics`' band edges, from the test part's sample."""
    from model.workflow.train import PRICE_BANDS

    return np.asarray(np.quantile(y_test, np.arange(1, PRICE_BANDS) / PRICE_BANDS))


def record(
    lay: Layout,
    plan: SegmentPlan,
    signals: dict[str, float],
    train_counts: Sequence[FloatArray],
    n_train: int,
    by_category: SegmentSums | None,
    by_price: SegmentSums,
    c: int,
) -> dict[str, Any]:
    """Contract 1's ``segments`` for candidate ``c``, as ``segment_metrics`` writes it.

    ``train_counts``: per categorical feature, the training rows of each category (of
    ``n_train``; the rest miss it)."""
    category = None
    if plan.feature is not None and by_category is not None:
        f = lay.categorical[plan.feature]
        names = lay.categories[plan.feature]
        counts = train_counts[plan.feature]
        missing_train = n_train - round(float(np.sum(counts)))
        groups = []
        for g in np.flatnonzero(by_category.n > 0).tolist():
            label = names[g] if g < len(names) else None
            rows_train = round(float(counts[g])) if g < len(names) else missing_train
            groups.append({"category": label, "rows_train": rows_train, **by_category.scores(c, g)})
        groups.sort(key=lambda g: (-g["rows"], str(g["category"])))
        category = {
            "feature": f.name,
            "signal": signals[f.name],
            "signals": signals,
            "groups": groups,
        }
    bands = []
    for b in np.flatnonzero(by_price.n > 0).tolist():
        lo, hi = float(by_price.y_min[b]), float(by_price.y_max[b])
        bands.append({"band": b + 1, "min": lo, "max": hi, **by_price.scores(c, b)})
    return {"by_category": category, "by_price": bands}
