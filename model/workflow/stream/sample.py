"""The bottom-k sample: a uniform sample of rows that merges exactly across chunks and
partitions, for the medians and quantiles that sums cannot give (:mod:`model.workflow.stream`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

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


@dataclass
class Sample:
    """The ``k`` rows with the smallest hashes (keys) seen so far, with their values."""

    k: int
    width: int
    keys: NDArray[np.uint64] = field(default_factory=lambda: np.empty(0, dtype=np.uint64))
    values: FloatArray = field(default_factory=lambda: np.empty((0, 0)))

    def __post_init__(self) -> None:
        if self.values.shape != (0, self.width):
            self.values = np.empty((0, self.width))

    def add(self, keys: NDArray[np.uint64], values: FloatArray) -> None:
        values = values.reshape(len(keys), self.width)
        if self.keys.size >= self.k:  # full: a key above the largest kept cannot get in
            below = keys < self.keys.max()
            keys, values = keys[below], values[below]
            if not keys.size:
                return
        self.keys = np.concatenate([self.keys, keys])
        self.values = np.concatenate([self.values, values])
        if self.keys.size > self.k:
            keep = np.argpartition(self.keys, self.k - 1)[: self.k]
            self.keys, self.values = self.keys[keep], self.values[keep]

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
