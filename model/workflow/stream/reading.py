"""Reading a config's file in chunks (or one partition's byte range) and parsing the columns a
pass needs, with the memory engine's rules; :class:`Runner` maps a pass over the partitions."""

from __future__ import annotations

import functools
import itertools
import math
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from model.base import FloatArray
from model.workflow.arrowcsv import ArrowColumns
from model.workflow.config import Config, RowFilter
from model.workflow.data import Chunk, DataError, parse_column, read_header
from model.workflow.fastcsv import iter_chunks_fast, iter_span

if TYPE_CHECKING:
    from model.workflow.stream.statistics import Pass1

#: Aim of the default chunk size: about this many bytes of parsed fields in memory.
CHUNK_BYTES = 64 << 20


def default_chunk_rows(n_columns: int) -> int:
    """Rows of a chunk of about :data:`CHUNK_BYTES` (a parsed field costs ~80 bytes)."""
    return max(1_000, CHUNK_BYTES // (80 * max(n_columns, 1)))


@dataclass
class Parsed:
    """One chunk's needed columns, parsed: numbers (NaN missing) or raw stripped strings."""

    numbers: dict[str, FloatArray]
    text: dict[str, Factors]
    target: FloatArray
    lines: NDArray[np.int64]
    keep: NDArray[np.bool_]


def to_numbers(raw: Sequence[str], na: frozenset[str]) -> tuple[FloatArray, int | None]:
    """Floats (NaN missing) and the index of the first value that is not a number, if any.

    :func:`model.workflow.data.parse_column`'s rule, with the missing spellings swapped for
    ``"nan"`` by a dict lookup mapped in C (the parse dominates a pass).
    """
    spell = _nan_spellings(na)
    try:
        return np.array(list(map(spell.get, raw, raw)), dtype=np.float64), None
    except ValueError:
        pass
    col, kind = parse_column(raw, na)
    if kind == "numeric":  # pragma: no cover  (the first attempt parses the same values)
        return col, None
    out = np.full(len(raw), math.nan)
    bad: int | None = None
    for i, v in enumerate(raw):
        if v in na:
            continue
        try:
            out[i] = float(v)
        except ValueError:
            if bad is None:
                bad = i
    return out, bad


def column_numbers(
    columns: Mapping[str, list[str]], name: str, na: frozenset[str]
) -> tuple[FloatArray, int | None]:
    """:func:`to_numbers` of a chunk's column, parsed in C when the arrow parser read it."""
    if isinstance(columns, ArrowColumns):
        return columns.numbers(name, na)
    return to_numbers(columns[name], na)


@dataclass(frozen=True)
class Factors:
    """A text column as its distinct values (``str``; ``None`` for a missing spelling) and
    each row's index among them: categories are counted and given ids once per distinct
    value, not once per row."""

    distinct: NDArray[Any]  # object array
    index: NDArray[np.integer[Any]]

    def __getitem__(self, rows: Any) -> Factors:
        return Factors(self.distinct, self.index[rows])

    @property
    def values(self) -> NDArray[Any]:
        """Each row's value (an object array, ``None`` for missing)."""
        return self.distinct[self.index]

    @property
    def missing(self) -> NDArray[np.bool_]:
        none = np.fromiter((v is None for v in self.distinct), bool, len(self.distinct))
        return none[self.index]

    def counts(self) -> Counter[str]:
        """The rows of each present value."""
        rows = np.bincount(self.index, minlength=len(self.distinct)).tolist()
        out: Counter[str] = Counter()
        for value, n in zip(self.distinct.tolist(), rows, strict=True):
            if n and value is not None:
                out[value] += n
        return out


def column_factors(columns: Mapping[str, list[str]], name: str, na: frozenset[str]) -> Factors:
    """A chunk's column as :class:`Factors` (the missing spellings ``na`` as ``None``)."""
    if isinstance(columns, ArrowColumns):
        distinct, index = columns.factors(name, na)
        return Factors(distinct, index)
    raw = columns[name]
    first = dict.fromkeys(raw)
    position = dict(zip(first, itertools.count()))
    index = np.fromiter(map(position.__getitem__, raw), np.intp, len(raw))
    distinct = np.empty(len(first), dtype=object)
    distinct[:] = [None if v in na else v for v in first]
    return Factors(distinct, index)


def column_text(
    columns: Mapping[str, list[str]], name: str, na: frozenset[str]
) -> tuple[NDArray[Any], NDArray[np.bool_]]:
    """A chunk's column as an object array of ``str`` with ``None`` for missing, and the
    missing mask."""
    factors = column_factors(columns, name, na)
    return factors.values, factors.missing


@functools.cache
def _nan_spellings(na: frozenset[str]) -> dict[str, str]:
    return dict.fromkeys(na, "nan")


class Reader:
    """Reads the chunks of the config's file and parses the columns it needs."""

    def __init__(self, cfg: Config, chunk_rows: int | None) -> None:
        self.cfg = cfg
        self.path = Path(cfg.data_path)
        header, self.delimiter, self.encoding = read_header(self.path, cfg.csv)
        self.header = header
        self.chunk_rows = chunk_rows or default_chunk_rows(len(header))
        self.filter_columns = [r.column for r in cfg.filters]
        from model.workflow.data import suggest

        if cfg.target not in header:
            raise DataError(
                f"{self.path}: no target column {cfg.target!r}; {suggest(cfg.target, header)}"
            )
        for f in cfg.features:
            if f.column not in header:
                raise DataError(
                    f"{self.path}: no feature column {f.column!r}; {suggest(f.column, header)}"
                )
        for c in self.filter_columns:
            if c not in header:
                raise DataError(f"{self.path}: no feature column {c!r}; {suggest(c, header)}")
        # Which columns are read as numbers: numeric features, the target, and the columns of
        # numeric filters; the rest (categorical features, ==/in filters on text) as text.
        self.numeric_columns = {f.column for f in cfg.features if f.numeric} | {cfg.target}
        self.text_columns = {f.column for f in cfg.features if not f.numeric}
        self.wanted = list(
            dict.fromkeys(
                [f.column for f in cfg.features]
                + [c for c in self.filter_columns if c != cfg.target]
            )
        )

    def chunks(self, span: Span | None = None) -> Iterator[Chunk]:
        """The whole file's chunks, or those of one partition (``span``)."""
        if span is None:
            for _, chunk in iter_chunks_fast(self.path, self.cfg.csv, self.chunk_rows):
                yield chunk
        else:
            yield from iter_span(
                self.path, self.cfg.csv, self.chunk_rows, span.start, span.end, span.line
            )


@dataclass(frozen=True)
class Span:
    """A partition of the file: bytes ``[start, end)``, ``line`` lines before ``start``."""

    start: int
    end: int
    line: int


class Runner:
    """Runs a pass's function on every partition; this one, on the whole file, in process.

    ``map(fn, args)`` calls ``fn(*a)`` for each ``a`` (one per partition, in file order) and
    returns the results in that order; :mod:`model.workflow.dask_engine` runs them on a
    cluster. ``spans`` is the partitions (``[None]``: the whole file as one).
    """

    name = "stream"

    def spans(self, rd: Reader) -> list[Span | None]:
        return [None]

    def map(self, fn: Callable[..., Any], args: list[tuple[Any, ...]]) -> list[Any]:
        return [fn(*a) for a in args]

    def keeps_columns(self) -> bool:
        """Whether pass 1 keeps the parsed columns on disk for the later passes
        (:mod:`model.workflow.stream.cache`): in process, yes; a cluster's tasks re-parse."""
        return True


def _filter_mask(
    rule: RowFilter, numbers: FloatArray | None, text: NDArray[Any] | None
) -> NDArray[np.bool_]:
    """The memory engine's filter rule (:func:`model.workflow.train._filter_mask`) on a chunk."""
    from model.workflow.train import _filter_mask as memory_mask

    if numbers is not None:
        return memory_mask(rule, numbers)
    assert text is not None
    return memory_mask(rule, text)


def parse_chunk(
    rd: Reader, chunk: Chunk, p1: Pass1 | None, numeric_filters: dict[str, bool]
) -> Parsed:
    """Parse the needed columns of a chunk; in pass 1 (``p1`` given) record the first problems
    instead of raising, so they are reported in the memory engine's order at the end."""
    cfg, na = rd.cfg, cfg_na(rd.cfg)
    lines = np.asarray(chunk.lines, dtype=np.int64)
    numbers: dict[str, FloatArray] = {}
    text: dict[str, Factors] = {}
    columns = chunk.columns
    for col in rd.wanted:
        as_number = col in rd.numeric_columns or numeric_filters.get(col, False)
        if as_number:  # numeric features, the target, numeric filter columns
            values, bad = column_numbers(columns, col, na)
            numbers[col] = values
            if p1 is not None:
                present = bad is not None or not np.isnan(values).all()
                p1.present[col] = p1.present.get(col, False) or present
                if bad is not None and col not in p1.first_non_number:
                    p1.first_non_number[col] = (int(lines[bad]), columns[col][bad])
                if bad is not None:
                    p1.all_numbers[col] = False
                inf = np.flatnonzero(np.isinf(values))
                if inf.size and col not in p1.first_inf:
                    p1.first_inf[col] = (int(lines[inf[0]]), columns[col][int(inf[0])])
        if col in rd.text_columns or not as_number:  # categories, text filter columns
            factors = text[col] = column_factors(columns, col, na)
            if p1 is not None and not p1.present.get(col, False):
                p1.present[col] = not factors.missing.all()
            if p1 is not None and not as_number and p1.all_numbers.get(col, True):
                vals, bad = column_numbers(columns, col, na)
                if bad is not None:
                    p1.all_numbers[col] = False
                else:
                    inf = np.flatnonzero(np.isinf(vals))
                    if inf.size and col not in p1.first_inf:
                        p1.first_inf[col] = (int(lines[inf[0]]), columns[col][int(inf[0])])
    y, bad_y = column_numbers(columns, cfg.target, frozenset())
    if p1 is not None and p1.target_error is None:
        wrong = np.flatnonzero(~np.isfinite(y))
        if wrong.size:
            raw_y = columns[cfg.target]
            i = int(wrong[0])
            v = raw_y[i]
            if bad_y is not None and bad_y <= i:
                i, v = bad_y, raw_y[bad_y]
            if bad_y is not None and bad_y == i:
                shown = "missing" if v in na else f"not a number: {v!r}"
            else:
                shown = f"not finite: {v!r}"
            p1.target_error = (
                f"{rd.path}: line {lines[i]}, column {cfg.target!r}: the target is {shown}"
            )
    keep = np.ones(len(lines), dtype=bool)
    for rule in cfg.filters:
        if rule.column == cfg.target:
            mask = _filter_mask(rule, y, None)
        else:
            try:
                words = text.get(rule.column)
                mask = _filter_mask(
                    rule, numbers.get(rule.column), None if words is None else words.values
                )
            except DataError as exc:
                if p1 is not None and p1.filter_text_error is None:
                    p1.filter_text_error = str(exc)
                mask = np.zeros(len(lines), dtype=bool)
        if p1 is not None:
            key = f"{rule.column} {rule.op} {rule.value}"
            p1.dropped[key] = p1.dropped.get(key, 0) + int((keep & ~mask).sum())
        keep &= mask
    return Parsed(numbers, text, y, lines, keep)


def cfg_na(cfg: Config) -> frozenset[str]:
    return cfg.csv.na_values
