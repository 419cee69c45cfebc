"""Pass 3: every fold model and final model applied to the rows (a matrix product per block)
for the CV and test metrics in the target's units, the drift reference's bins and the samples
of predictions."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from model.base import FloatArray
from model.workflow.stream.reading import Reader, Span
from model.workflow.stream.sample import Sample
from model.workflow.stream.segments import SegmentPlan, SegmentSums
from model.workflow.stream.sums import Plan, blocks

_EPS = float(np.finfo(np.float64).eps)


@dataclass
class Metric:
    """Sums for the regression metrics of one model on one set of rows (dollars)."""

    n: int = 0
    se: float = 0.0
    ae: float = 0.0
    ape: float = 0.0
    sle: float = 0.0
    log_ok: bool = True
    y_sum: float = 0.0
    y_sq: float = 0.0

    def merge(self, other: Metric) -> Metric:
        self.n += other.n
        self.se += other.se
        self.ae += other.ae
        self.ape += other.ape
        self.sle += other.sle
        self.log_ok = self.log_ok and other.log_ok
        self.y_sum += other.y_sum
        self.y_sq += other.y_sq
        return self

    def values(self) -> dict[str, float]:
        from model.workflow.train import METRICS

        n = self.n
        mse = self.se / n
        ss_tot = self.y_sq - self.y_sum**2 / n
        r2 = (1.0 if self.se == 0.0 else 0.0) if ss_tot <= 0 else 1.0 - self.se / ss_tot
        out = {
            "mse": mse,
            "rmse": math.sqrt(mse),
            "mae": self.ae / n,
            "r2": r2,
            "mape": self.ape / n,
            "rmse_log": math.sqrt(self.sle / n) if self.log_ok else math.nan,
        }
        return {k: float(out[k]) for k in METRICS}


def add_columns(metrics: Sequence[Metric], y: FloatArray, P: FloatArray, shift: float) -> None:
    """Add the rows with actual ``y`` to ``metrics[i]``, the sums of the model predicting
    ``P[:, i]`` (one pass over the rows for every model)."""
    if not y.size:
        return
    D = y[:, None] - P
    A = np.abs(D)
    se, ae = (D * D).sum(axis=0), A.sum(axis=0)
    ape = (A / np.maximum(np.abs(y), _EPS)[:, None]).sum(axis=0)
    y_pos = bool((y > 0).all())
    p_pos = np.asarray((P > 0).all(axis=0))
    log_y = np.log(y) if y_pos else None
    ys = y - shift
    y_sum, y_sq = float(ys.sum()), float(ys @ ys)
    for i, m in enumerate(metrics):
        m.n += int(y.size)
        m.se += float(se[i])
        m.ae += float(ae[i])
        m.ape += float(ape[i])
        m.log_ok = m.log_ok and y_pos and bool(p_pos[i])
        if m.log_ok and log_y is not None:
            ld = log_y - np.log(P[:, i])
            m.sle += float(ld @ ld)
        m.y_sum += y_sum
        m.y_sq += y_sq


@dataclass
class Pass3:
    """The partial results of pass 3 (see :func:`pass3`), summed over partitions."""

    cv: list[list[Metric]]  # [candidate][fold]
    test: list[Metric]  # [candidate], its final model on the test rows
    test_sample: Sample  # y, then each candidate's prediction
    oof_sample: Sample  # training rows: y, then each candidate's out-of-fold prediction
    pred_sample: Sample
    bins: dict[str, NDArray[np.int64]]
    by_category: SegmentSums | None  # test rows by the category of the segment plan's feature
    by_price: SegmentSums  # test rows by quintile of the actual target

    def merge(self, other: Pass3) -> Pass3:
        for row, orow in zip(self.cv, other.cv, strict=True):
            for a, b in zip(row, orow, strict=True):
                a.merge(b)
        for a, b in zip(self.test, other.test, strict=True):
            a.merge(b)
        self.test_sample = Sample.merge([self.test_sample, other.test_sample])
        self.pred_sample = Sample.merge([self.pred_sample, other.pred_sample])
        self.oof_sample = Sample.merge([self.oof_sample, other.oof_sample])
        for key, v in other.bins.items():
            self.bins[key] = self.bins[key] + v
        if self.by_category is not None and other.by_category is not None:
            self.by_category.merge(other.by_category)
        self.by_price.merge(other.by_price)
        return self


def pass3(
    rd: Reader,
    span: Span | None,
    plan: Plan,
    parts: NDArray[np.int8],
    idx0: int,
    B: FloatArray,
    finals: FloatArray,
    edges: dict[str, dict[str, Any]],
    y_center: float,
    segments: SegmentPlan,
) -> Pass3:
    """Every fold model's metrics on its validation rows (``B``: one column per candidate and
    fold), every candidate's final model (``finals``) on the test rows, in dollars, overall
    and per segment, and the drift reference's counts on the training rows."""
    from model.drift import bin_counts

    lay, K = plan.lay, plan.folds
    n_c = finals.shape[1]
    feature = segments.feature
    n_bands = segments.price_edges.size + 1
    out = Pass3(
        [[Metric() for _ in range(K)] for _ in range(n_c)],
        [Metric() for _ in range(n_c)],
        Sample(plan.sample_rows, 1 + n_c),
        Sample(plan.sample_rows, 1 + n_c),
        Sample(plan.sample_rows, n_c),
        {f.name: np.zeros(len(edges[f.name]["edges"]) + 2, dtype=np.int64) for f in lay.numeric},
        None if feature is None else SegmentSums.empty(n_c, len(lay.categories[feature]) + 1),
        SegmentSums.empty(n_c, n_bands),
    )
    W = np.column_stack([B, finals])
    for b in blocks(rd, plan, span, parts, idx0):
        F = b.U @ W
        pred = np.exp(F) if lay.log_target else F
        y, final = b.y, pred[:, n_c * K :]
        oof = []  # each training row's prediction by the fold model that did not see it
        for k in range(K):
            rows = b.part(k)
            cols = pred[rows, k : n_c * K : K]  # every candidate's fold-k model
            add_columns([out.cv[c][k] for c in range(n_c)], y[rows], cols, y_center)
            oof.append(cols)
        te = b.part(K)
        if te.start < te.stop:
            add_columns(out.test, y[te], final[te], y_center)
            out.test_sample.add(b.keys[te], np.column_stack([y[te], final[te]]))
            band = np.searchsorted(segments.price_edges, y[te], side="right")
            out.by_price.add(band, y[te], final[te])
            if out.by_category is not None and feature is not None:
                codes = b.segment_codes(lay)[feature][te]
                out.by_category.add(codes, y[te], final[te])
        tr = slice(0, b.bounds[K])  # the training rows: parts 0..K-1 come first
        out.pred_sample.add(b.keys[tr], final[tr])
        if tr.start < tr.stop:
            out.oof_sample.add(b.keys[tr], np.column_stack([y[tr], np.concatenate(oof)]))
        for j, f in enumerate(lay.numeric):
            out.bins[f.name] += bin_counts(edges[f.name], b.x[tr, j])
    return out
