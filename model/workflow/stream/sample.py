"""The bottom-k sample: a uniform sample of rows that merges exactly across chunks and
partitions, for the medians and quantiles that sums cannot give (:mod:`model.workflow.stream`)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from model.base import FloatArray

#: Rows kept per part by the bottom-k sample (medians, quantile edges); see the docstring.
SAMPLE_ROWS = 65_536


def row_hash(index: NDArray[np.int64], seed: int) -> NDArray[np.uint64]:
    """splitmix64 of (row index + seed): a fixed pseudo-random key per row, for the sample."""
    with np.errstate(over="ignore"):
        z = index.astype(np.uint64) + np.uint64((seed * 0x9E3779B97F4A7C15) % (1 << 64))
        z = z + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return np.asarray(z ^ (z >> np.uint64(31)), dtype=np.uint64)


class Sample:
    """The ``k`` rows with the smallest hashes (keys) seen so far, with their values.

    Rows are kept in arrival order until twice ``k`` are held, then cut to the ``k`` smallest
    (one ``argpartition``), whose largest key bounds what can still get in: the cut is
    amortised over ``k`` rows instead of paid at every chunk. ``keys`` and ``values`` give
    the ``k`` smallest sorted by key, so the sample is the same whatever the order of the
    chunks and partitions that made it.
    """

    def __init__(self, k: int, width: int) -> None:
        self.k = k
        self.width = width
        self._keys: list[NDArray[np.uint64]] = []
        self._values: list[FloatArray] = []
        self._held = 0
        self._bound: np.uint64 | None = None  # a key >= this is not among the k smallest
        self._sorted = True

    def add(self, keys: NDArray[np.uint64], values: FloatArray) -> None:
        values = values.reshape(len(keys), self.width)
        if self._bound is not None:
            below = keys < self._bound
            keys, values = keys[below], values[below]
        if not keys.size:
            return
        self._keys.append(keys)
        self._values.append(values)
        self._held += keys.size
        self._sorted = False
        if self._held >= 2 * self.k:
            self._cut()

    def _cut(self) -> tuple[NDArray[np.uint64], FloatArray]:
        keys = np.concatenate(self._keys) if self._keys else np.empty(0, dtype=np.uint64)
        values = np.concatenate(self._values) if self._values else np.empty((0, self.width))
        if keys.size > self.k:
            keep = np.argpartition(keys, self.k - 1)[: self.k]
            keys, values = keys[keep], values[keep]
        if keys.size >= self.k:
            self._bound = keys.max()
        self._keys, self._values, self._held = [keys], [values], keys.size
        return keys, values

    def _final(self) -> tuple[NDArray[np.uint64], FloatArray]:
        if not self._sorted:
            keys, values = self._cut()
            order = np.argsort(keys)
            self._keys, self._values = [keys[order]], [values[order]]
            self._sorted = True
        if not self._keys:
            return np.empty(0, dtype=np.uint64), np.empty((0, self.width))
        return self._keys[0], self._values[0]

    @property
    def keys(self) -> NDArray[np.uint64]:
        return self._final()[0]

    @property
    def values(self) -> FloatArray:
        return self._final()[1]

    @classmethod
    def merge(cls, samples: Sequence[Sample]) -> Sample:
        out = cls(samples[0].k, samples[0].width)
        for s in samples:
            out.add(s.keys, s.values)
        return out


def medians(sample: Sample) -> FloatArray:
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.asarray(np.nanmedian(sample.values, axis=0), dtype=np.float64)
