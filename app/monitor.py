"""Live drift monitor: the last ``window`` rows of every feature, and of the prediction,
compared bucket by bucket with the reference profile that training stored in the artifact.

Why buckets and a ring buffer. PSI and a binned Kolmogorov–Smirnov statistic only need the
count of live rows in each reference bucket, so the state is the bucket index of every row in
the window, one small-int column per feature (a ``(window, columns)`` ``uint8`` ring, wider
only for vocabularies over 254 categories) plus the running count per bucket. Writing ``n``
rows overwrites ``n`` ring rows and moves ``n`` counts per column from the evicted rows'
buckets to the new rows' ones: O(n) work, O(bins) to read a score, and memory fixed at
creation. Each column has one extra "empty" bucket that the ring's never-written slots hold,
so the same ``bincount`` that removes evicted rows also absorbs the slots that held nothing;
all columns' buckets sit side by side in one counts vector, so a batch costs two
``bincount`` calls in total, not two per feature.

Why bucketing is lazy. Bucketing is a NumPy call per column (about as dear for one value as
for a hundred) and only the last ``window`` rows matter when a score is read. So ``update``
just queues the request's columns (by reference: callers must not mutate them afterwards)
and drops from the front of the queue what newer rows have already pushed out of the window;
the reads (``gauges`` at each scrape, ``report``) bucket the newest ``window`` queued rows at
once per column. The queue holds fewer than ``window`` rows plus one batch (a batch is cut to
its last ``window`` rows), so memory stays bounded whether or not anyone reads.

The maths (bucket layout, ``bin_index``, ``psi`` and its epsilon) live in :mod:`model.drift`,
shared with training; this module only keeps the window and reads it out.

Defaults (the industry rule of thumb for PSI): below 0.1 stable, 0.1–0.25 moderate, above
0.25 significant, so ``threshold=0.25`` flags only significant shifts. Below ``min_samples``
rows no score is reported at all: under no drift a PSI's expected value is about
``(buckets - 1) / n``, mostly sampling noise for a handful of rows.
"""

from __future__ import annotations

import itertools
import math
import threading
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from model import drift

#: The name under which the prediction's window is reported, beside the features.
PREDICTION = "prediction"
#: Kolmogorov–Smirnov critical coefficient c(α) for α = 0.05 (two samples, two-sided).
KS_C_ALPHA = 1.358


def ks_binned(e: NDArray[np.float64], a: NDArray[np.float64]) -> float:
    """``D = max_k |E_k - A_k|``, the largest gap between the two cumulative shares.

    ``E_k`` and ``A_k`` are the cumulative reference and live shares over the ordered
    numeric bins (the missing bin excluded, the rest renormalised). The CDFs are only
    compared at the bin edges, so this is a lower bound of the continuous two-sample KS
    statistic: when it exceeds the critical value, the continuous one does too.
    Why keep it beside PSI: it reads as "the largest fraction of rows on the wrong side
    of some edge", and unlike PSI it has a sampling distribution, hence a critical value.
    """
    se, sa = float(e.sum()), float(a.sum())
    if se <= 0.0 or sa <= 0.0:
        return math.nan
    return float(np.max(np.abs(np.cumsum(e) / se - np.cumsum(a) / sa)))


def ks_critical(n: int, m: int, c_alpha: float = KS_C_ALPHA) -> float:
    """Two-sample KS critical value ``c(α) · sqrt((n + m) / (n m))`` (α = 0.05 by default)."""
    if n <= 0 or m <= 0:
        return math.nan
    return c_alpha * math.sqrt((n + m) / (n * m))


def bin_labels(profile: Mapping[str, Any]) -> list[str]:
    """Human-readable names of a profile's buckets, in the order of its shares.

    Numeric bins are closed on the right, ``(e[i-1], e[i]]``, as :func:`model.drift.bin_index`
    assigns them.
    """
    if profile["kind"] == "categorical":
        return [str(c) for c in profile["categories"]] + ["(unseen)", "(missing)"]
    edges = [float(v) for v in profile["edges"]]
    if not edges:
        return ["(all)", "(missing)"]
    labels = [f"<= {edges[0]:g}"]
    labels += [f"({lo:g}, {hi:g}]" for lo, hi in itertools.pairwise(edges)]
    labels.append(f"> {edges[-1]:g}")
    return [*labels, "(missing)"]


class _Ring:
    """The bucket indices of the last ``size`` rows of every column, and the counts.

    Column ``j`` owns ``counts[offset[j] : offset[j] + k_j + 1]``: its ``k_j`` buckets, then
    its "empty" bucket ``k_j``, which the unwritten ring slots hold.
    """

    def __init__(self, buckets: list[int], size: int) -> None:
        self.k = np.asarray(buckets, dtype=np.intp)
        self.offset = np.concatenate([[0], np.cumsum(self.k + 1)[:-1]]).astype(np.intp)
        self.ring = np.empty((size, len(buckets)), dtype=np.min_scalar_type(int(self.k.max())))
        self.ring[:] = self.k  # every slot empty
        self.counts = np.zeros(int((self.k + 1).sum()), dtype=np.int64)
        self.counts[self.offset + self.k] = size
        self.pos = 0

    def push(self, idx: NDArray[np.intp]) -> None:
        """Write the ``(n, columns)`` bucket indices of ``n`` new rows, evicting the oldest."""
        size = self.ring.shape[0]
        idx = idx[-size:]  # of a batch longer than the window only its tail stays
        n = idx.shape[0]
        if n == 0:
            return
        slots = (self.pos + np.arange(n)) % size
        total = self.counts.shape[0]
        self.counts -= np.bincount((self.ring[slots] + self.offset).ravel(), minlength=total)
        self.counts += np.bincount((idx + self.offset).ravel(), minlength=total)
        self.ring[slots] = idx
        self.pos = (self.pos + n) % size

    def column(self, j: int) -> NDArray[np.int64]:
        """The live bucket counts of column ``j`` (a copy, empty slots excluded)."""
        lo = int(self.offset[j])
        return self.counts[lo : lo + int(self.k[j])].copy()


class DriftMonitor:
    """PSI of the last ``window`` live rows against the training reference, per feature.

    ``reference`` is the artifact's ``metadata["reference"]``: ``{"features": {name:
    profile}, "prediction": profile}`` (docs/ARCHITECTURE.md, Contract 1). A feature is
    flagged when its PSI exceeds ``threshold`` and the window holds at least
    ``min_samples`` rows. One lock guards the queue and the window, so the monitor can be
    shared by the request handlers of one process (threads or one event loop).
    """

    method = "psi"

    def __init__(
        self,
        reference: dict[str, Any],
        model_version: str,
        window: int = 1000,
        min_samples: int = 200,
        threshold: float = 0.25,
    ) -> None:
        if window < 1:
            raise ValueError(f"window must be at least 1, got {window}")
        if not 1 <= min_samples <= window:
            raise ValueError(f"min_samples must be in [1, window={window}], got {min_samples}")
        if not threshold > 0:
            raise ValueError(f"threshold must be positive, got {threshold}")
        if "features" not in reference or "prediction" not in reference:
            raise ValueError(
                f"reference: expected keys 'features' and 'prediction', got {sorted(reference)}"
            )
        if PREDICTION in reference["features"]:
            raise ValueError(f"reference: a feature may not be named {PREDICTION!r}")
        self.reference = reference
        self.model_version = model_version
        self.window = window
        self.min_samples = min_samples
        self.threshold = threshold
        # columns in report order: the features, then the prediction (always last)
        self._names = [str(name) for name in reference["features"]] + [PREDICTION]
        self._profiles = [*reference["features"].values(), reference["prediction"]]
        self._shares = [
            _reference_shares(n, p) for n, p in zip(self._names, self._profiles, strict=True)
        ]
        self._ring = _Ring([s.shape[0] for s in self._shares], window)
        # (table, predictions, rows) per update, bucketed when read
        self._queue: deque[tuple[Mapping[str, Sequence[Any]], Sequence[float], int]] = deque()
        # a column's dtype: None becomes NaN in a float64 column, stays None in an object one
        self._dtypes = [
            object if p["kind"] == "categorical" else np.float64 for p in self._profiles
        ]
        self._queued = 0  # rows in the queue
        self._lock = threading.Lock()

    @property
    def feature_names(self) -> list[str]:
        return self._names[:-1]

    def update(self, columns: Mapping[str, Sequence[Any]], predictions: Sequence[float]) -> None:
        """Add a table, ``{feature: values}`` (API names, ``None`` for missing), and its
        predictions. The table is queued as it is: it must not change afterwards.

        A reference feature absent from ``columns`` counts as missing on every row, which is
        what the pipeline's imputer sees; columns the reference does not know are ignored.
        """
        n = len(predictions)
        for name, col in columns.items():
            if len(col) != n:
                raise ValueError(
                    f"column {name!r} has {len(col)} values but there are {n} predictions"
                )
        self.add(columns, predictions)

    def add(self, columns: Mapping[str, Sequence[Any]], predictions: Sequence[float]) -> None:
        """:meth:`update` without its length check, for a table whose columns hold one value
        per prediction by construction (the service's: a request's validated table)."""
        n = len(predictions)
        if n > self.window:  # only the tail can stay in the window; copy it, drop the rest
            columns = {name: list(col[-self.window :]) for name, col in columns.items()}
            predictions = list(predictions[-self.window :])
            n = self.window
        with self._lock:
            self._queue.append((columns, predictions, n))
            self._queued += n
            # drop the oldest items that the newer queued rows already push out
            while self._queued - self._queue[0][2] >= self.window:
                self._queued -= self._queue.popleft()[2]

    def _flush(self) -> None:
        """Bucket the queued rows, all at once per column, and push them into the ring."""
        if not self._queue:
            return
        queue, self._queue, self._queued = list(self._queue), deque(), 0
        n = min(sum(rows for _, _, rows in queue), self.window)  # older rows would be evicted
        idx = np.empty((n, len(self._names)), dtype=np.intp)
        for j, (name, profile, dtype) in enumerate(
            zip(self._names, self._profiles, self._dtypes, strict=True)
        ):
            if j == len(self._names) - 1:
                parts = [predictions for _, predictions, _ in queue]
            else:
                parts = [columns.get(name, (None,) * rows) for columns, _, rows in queue]
            values = np.array(list(itertools.chain.from_iterable(parts)), dtype=dtype)
            idx[:, j] = drift.bin_index(profile, values[len(values) - n :])
        self._ring.push(idx)

    def _score(self, j: int) -> tuple[float, NDArray[np.int64]]:
        """PSI of column ``j`` (NaN below ``min_samples``) and its live bucket counts."""
        counts = self._ring.column(j)
        ready = counts.sum() >= self.min_samples
        return (drift.psi(self._shares[j], counts) if ready else math.nan), counts

    def _entry(self, j: int) -> dict[str, Any]:
        score, counts = self._score(j)
        profile, reference = self._profiles[j], self._shares[j]
        samples = int(counts.sum())
        live = counts / samples if samples else np.zeros(counts.shape[0])
        entry: dict[str, Any] = {
            "kind": profile["kind"],
            "method": self.method,
            "score": None if math.isnan(score) else score,
            "threshold": self.threshold,
            "drifted": bool(score > self.threshold),
            "samples": samples,
            "window": self.window,
            "min_samples": self.min_samples,
            "level": None if math.isnan(score) else drift.psi_level(score),
            "bins": bin_labels(profile),
            "reference_shares": reference.tolist(),
            "live_shares": live.tolist(),
        }
        if profile["kind"] == "numeric":
            # The ordered bins only: the missing bucket (last) has no place on the number line.
            d, crit = math.nan, math.nan
            if not math.isnan(score):
                d = ks_binned(reference[:-1], counts[:-1].astype(np.float64))
                n_ref = round(int(profile["count"]) * float(reference[:-1].sum()))
                crit = ks_critical(n_ref, int(counts[:-1].sum()))
            entry["ks"] = None if math.isnan(d) else d
            entry["ks_critical"] = None if math.isnan(crit) else crit
        return entry

    def report(self) -> dict[str, Any]:
        """The JSON of ``GET /drift``: the settings, then one entry per feature and one for
        the prediction, each with its score and the shares per bucket that explain it."""
        with self._lock:
            self._flush()
            entries = {name: self._entry(j) for j, name in enumerate(self._names)}
        prediction = entries.pop(PREDICTION)
        return {
            "model_version": self.model_version,
            "method": self.method,
            "threshold": self.threshold,
            "window": self.window,
            "min_samples": self.min_samples,
            "drifted": [name for name, e in entries.items() if e["drifted"]],
            "features": entries,
            "prediction": prediction,
        }

    def gauges(self) -> list[tuple[str, float, bool, int]]:
        """``(feature, score, drifted, samples)`` per feature, then ``"prediction"``, for the
        Prometheus gauges; the score is NaN while the window holds fewer than min_samples."""
        out: list[tuple[str, float, bool, int]] = []
        with self._lock:
            self._flush()
            for j, name in enumerate(self._names):
                score, counts = self._score(j)
                out.append((name, score, bool(score > self.threshold), int(counts.sum())))
        return out


def _reference_shares(name: str, profile: Mapping[str, Any]) -> NDArray[np.float64]:
    shares = np.asarray(profile["shares"], dtype=np.float64)
    k = drift.n_buckets(profile)
    if shares.shape != (k,):
        raise ValueError(
            f"reference for {name!r}: expected {k} shares for its buckets, got {shares.size}"
        )
    return shares
