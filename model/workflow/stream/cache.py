"""The parsed columns of the kept rows, kept on disk from pass 1 for passes 2 and 3.

Parsing the CSV text costs more than all the arithmetic of a pass (docs/PERFORMANCE.md), and
passes 2 and 3 need only numbers: the numeric features, the target and each categorical
feature's category. So pass 1 appends, for every kept row, those numbers to three binary
files in a temporary folder (float64 numeric features, float64 target, int32 category ids:
an id per distinct spelling met, ``-1`` for missing) and the later passes read them back a
block at a time: memory stays one block, the disk holds ``8 x (numeric features + 1) + 4 x
categorical features`` bytes per kept row, deleted at the end of the run. A category id
becomes the layout's index through a lookup table built once the categories are known.

If the disk refuses a write (full, read-only temporary folder), the cache is dropped and the
later passes parse the file again, as the Dask engine's partitions always do.
"""

from __future__ import annotations

import contextlib
import itertools
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import numpy as np
from numpy.typing import NDArray

from model.base import FloatArray
from model.workflow.config import Feature

if TYPE_CHECKING:
    from model.workflow.stream.reading import Factors


class ColumnCache:
    """Append-only binary columns of the kept rows (see the module docstring)."""

    def __init__(self, numeric: Sequence[Feature], categorical: Sequence[Feature]) -> None:
        self.numeric = [f.column for f in numeric]
        self.categorical = [f.column for f in categorical]
        # per categorical feature: spelling -> id, missing (None) -> -1
        self.ids: list[dict[str | None, int]] = [{None: -1} for _ in categorical]
        self.rows = 0
        self.ok = True
        self.folder = Path(tempfile.mkdtemp(prefix="houseprice-stream-"))
        self._out: list[BinaryIO] | None = [
            open(self.folder / name, "wb")  # noqa: SIM115 (closed in finish or close)
            for name in ("numbers", "target", "ids")
        ]

    def add(self, numbers: dict[str, FloatArray], text: dict[str, Factors], y: FloatArray) -> None:
        """Append the kept rows of a chunk: ``numbers`` and ``text`` by column, ``y``."""
        if not self.ok or self._out is None or not y.size:
            return
        n = y.size
        nums = np.column_stack([numbers[c] for c in self.numeric]) if self.numeric else None
        ids = np.empty((n, len(self.categorical)), dtype=np.int32)
        for i, c in enumerate(self.categorical):
            seen, factors = self.ids[i], text[c]
            used = np.bincount(factors.index, minlength=len(factors.distinct)) > 0
            for value in factors.distinct[used].tolist():  # a new spelling gets the next id
                seen.setdefault(value, len(seen) - 1)
            lut = np.fromiter(
                map(seen.get, factors.distinct.tolist(), itertools.repeat(-1)),
                np.int32,
                len(factors.distinct),
            )
            ids[:, i] = lut[factors.index]
        try:
            if nums is not None:
                self._out[0].write(np.ascontiguousarray(nums, dtype=np.float64).tobytes())
            self._out[1].write(np.ascontiguousarray(y, dtype=np.float64).tobytes())
            self._out[2].write(ids.tobytes())
        except OSError:
            self.close()  # the later passes parse the file again
            return
        self.rows += n

    def finish(self) -> None:
        """End of pass 1: the files complete, to be read."""
        if self._out is not None:
            try:
                for fh in self._out:
                    fh.close()
            except OSError:
                self.close()
            self._out = None

    def lookup(self, cat_maps: Sequence[dict[str, int]]) -> list[NDArray[np.intp]]:
        """Per categorical feature, the layout index of each id (``-1``: not a category)."""
        out = []
        for seen, index in zip(self.ids, cat_maps, strict=True):
            lut = np.full(len(seen) - 1, -1, dtype=np.intp)
            for spelling, i in seen.items():
                if spelling is not None:
                    lut[i] = index.get(spelling, -1)
            out.append(lut)
        return out

    def blocks(
        self, rows: int, luts: Sequence[NDArray[np.intp]]
    ) -> Iterator[tuple[FloatArray, FloatArray, list[NDArray[np.intp]]]]:
        """``(numeric features, target, category indices)`` of ``rows`` kept rows at a time."""
        m, c = len(self.numeric), len(self.categorical)
        with (
            open(self.folder / "numbers", "rb") as fn,
            open(self.folder / "target", "rb") as ft,
            open(self.folder / "ids", "rb") as fi,
        ):
            for start in range(0, self.rows, rows):
                r = min(rows, self.rows - start)
                nums = np.fromfile(fn, dtype=np.float64, count=r * m).reshape(r, m)
                y = np.fromfile(ft, dtype=np.float64, count=r)
                ids = np.fromfile(fi, dtype=np.int32, count=r * c).reshape(r, c)
                codes = [
                    np.where(ids[:, i] >= 0, lut[np.maximum(ids[:, i], 0)], -1)
                    if lut.size
                    else np.full(r, -1, dtype=np.intp)
                    for i, lut in enumerate(luts)
                ]
                yield nums, y, codes

    def close(self) -> None:
        """Delete the files (the cache is then unusable)."""
        self.ok = False
        if self._out is not None:
            for fh in self._out:
                with contextlib.suppress(OSError):
                    fh.close()
            self._out = None
        shutil.rmtree(self.folder, ignore_errors=True)
