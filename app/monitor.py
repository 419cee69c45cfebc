"""Live drift monitor: the last ``window`` rows of every feature, and of the prediction,
compared bucket by bucket with the reference profile that training stored in the artifact.

Why raw values in one preallocated list. PSI and a binned Kolmogorov–Smirnov statistic only
need the count of live rows in each reference bucket, and bucketing is a NumPy call per column
(about as dear for one value as for a thousand), so a request only writes its rows' values,
row after row, over the oldest ones of a flat list of ``window x columns`` slots made at
creation; the reads (``gauges`` at each scrape, ``report``) bucket the window once per column.
The slots hold plain numbers, strings and ``None``, which the cyclic garbage collector does not
track: a request leaves no container alive for the young collections to scan. Memory is fixed
at creation whether or not anyone reads.

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
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from app import rings
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


class DriftMonitor:
    """PSI of the last ``window`` live rows against the training reference, per feature.

    ``reference`` is the artifact's ``metadata["reference"]``: ``{"features": {name:
    profile}, "prediction": profile}`` (docs/ARCHITECTURE.md, Contract 1). A feature is
    flagged when its PSI exceeds ``threshold`` and the window holds at least
    ``min_samples`` rows. One lock guards the window, so the monitor can be
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
        order: Sequence[str] | None = None,
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
        # a column's dtype: None becomes NaN in a float64 column, stays None in an object one
        self._dtypes = [
            object if p["kind"] == "categorical" else np.float64 for p in self._profiles
        ]
        # the window's values row after row, a row's columns in report order; rows written
        # over the oldest, the next at ``_pos``; the first ``_filled`` rows hold values
        self._slots: list[Any] = [None] * (window * len(self._names))
        self._pos = 0
        self._filled = 0
        # a row of ``order`` (the model's features) into report order; None when they agree
        self._pick = _picker(order, self._names[:-1])
        self._lock = threading.Lock()

    @property
    def feature_names(self) -> list[str]:
        return self._names[:-1]

    def update(self, columns: Mapping[str, Sequence[Any]], predictions: Sequence[float]) -> None:
        """Add a table, ``{feature: values}`` (API names, ``None`` for missing), and its
        predictions, lengths checked (the shadow's worker and tests; the service hands rows to
        :meth:`add_rows`).

        A reference feature absent from ``columns`` counts as missing on every row, which is
        what the pipeline's imputer sees; columns the reference does not know are ignored.
        """
        n = len(predictions)
        for name, col in columns.items():
            if len(col) != n:
                raise ValueError(
                    f"column {name!r} has {len(col)} values but there are {n} predictions"
                )
        absent = (None,) * n
        table = [columns.get(name, absent) for name in self._names[:-1]]
        self._write(list(itertools.chain.from_iterable(zip(*table, predictions, strict=True))), n)

    def add_rows(self, rows: Sequence[Sequence[Any]], predictions: Sequence[float]) -> None:
        """Add a table given row by row, each row's values in the ``order`` the monitor was
        made with (the service's: ``LoadedModel.tabulate``), one row per prediction."""
        n = len(predictions)
        if len(rows) != n:
            raise ValueError(f"{len(rows)} rows: there must be one per prediction")
        if self._pick is not None:
            rows = list(map(self._pick, rows))
        width = len(self._names) - 1
        if n == 1:  # one house, the usual request: its row is the window's row but the price
            values = [*rows[0], predictions[0]]
            if len(values) != width + 1:
                raise ValueError(self._width_error)
        else:
            if any(len(row) != width for row in rows):  # a short row and a long one would pass
                raise ValueError(self._width_error)
            flat = itertools.chain.from_iterable
            values = list(flat(flat(zip(rows, zip(predictions), strict=True))))
        self._write(values, n)

    @property
    def _width_error(self) -> str:
        return f"every row must hold {len(self._names) - 1} values, one per prediction"

    def _write(self, values: list[Any], n: int) -> None:
        """``n`` rows' values, row after row (``n`` times the columns: the callers check), over
        the oldest in the window."""
        window = self.window
        if n > window:  # only the tail can stay in the window
            values = values[len(values) - len(self._slots) :]
            n = window
        lock = self._lock
        lock.acquire()  # not ``with``: the statement costs twice the two calls on every request
        try:
            pos = self._pos
            rings.write(self._slots, pos * len(self._names), values)
            self._pos = (pos + n) % window
            if self._filled < window:
                self._filled = min(self._filled + n, window)
        finally:
            lock.release()

    def _counts(self) -> list[NDArray[np.int64]]:
        """The live bucket counts of every column: the window's values bucketed at once per
        column, from a copy taken under the lock (writers never wait for the bucketing)."""
        width = len(self._names)
        with self._lock:
            written = self._slots[: self._filled * width]
        return [
            np.bincount(
                drift.bin_index(profile, np.array(written[j::width], dtype=dtype)),
                minlength=shares.shape[0],
            )
            for j, (profile, dtype, shares) in enumerate(
                zip(self._profiles, self._dtypes, self._shares, strict=True)
            )
        ]

    def _score(self, j: int, counts: NDArray[np.int64]) -> float:
        """PSI of column ``j`` with these live bucket counts (NaN below ``min_samples``)."""
        ready = counts.sum() >= self.min_samples
        return drift.psi(self._shares[j], counts) if ready else math.nan

    def _entry(self, j: int, counts: NDArray[np.int64]) -> dict[str, Any]:
        score = self._score(j, counts)
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
        counts = self._counts()
        entries = {name: self._entry(j, counts[j]) for j, name in enumerate(self._names)}
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
        counts = self._counts()
        out: list[tuple[str, float, bool, int]] = []
        for j, name in enumerate(self._names):
            score = self._score(j, counts[j])
            out.append((name, score, bool(score > self.threshold), int(counts[j].sum())))
        return out


def _picker(
    order: Sequence[str] | None, names: list[str]
) -> Callable[[Sequence[Any]], Sequence[Any]] | None:
    """A function taking a row of ``order`` to a row of ``names`` (``None`` for a name not in
    ``order``), or ``None`` when the two orders are the same."""
    if order is None or list(order) == names:
        return None
    where = {name: i for i, name in enumerate(order)}
    positions = [where.get(name, len(order)) for name in names]  # past the end: the None
    return lambda row: tuple(map((*row, None).__getitem__, positions))


def _reference_shares(name: str, profile: Mapping[str, Any]) -> NDArray[np.float64]:
    shares = np.asarray(profile["shares"], dtype=np.float64)
    k = drift.n_buckets(profile)
    if shares.shape != (k,):
        raise ValueError(
            f"reference for {name!r}: expected {k} shares for its buckets, got {shares.size}"
        )
    return shares
