"""The ``stream`` training engine: a linear model from sums over chunks, never the whole file.

A linear model sees its data only through sufficient statistics (:mod:`model.linear`), and
every preprocessing step in front of it (imputation, ``log1p``, standardisation, one-hot) is
per column and affine once its fill value is fixed. So the file is read in chunks of
``chunk_rows`` rows (memory: one chunk), three times:

1. **statistics**: rows read and kept (the filters), the config's promises checked with the
   memory engine's messages (:mod:`model.workflow.checks`), categories, centring shifts. A bad
   row fails here, after at most this one pass, before anything is written.
2. **sums**: each kept row gets its part from its index alone (the test part and the CV fold of
   :func:`model.selection.train_test_split` and :class:`model.selection.KFold` with the config's
   seed, which need only the row count: one byte per row), and each part accumulates
   ``S = Σ u uᵀ`` of the row's *augmented* vector ``u = [t(x) - c, missing indicators,
   raw x - r (logged columns), one-hot, f(y) - c_y, 1]``. With the fill value ``v`` of a
   column chosen later, the imputed, transformed value is ``t(x) - c`` where present and
   ``t(v) - c`` where missing, i.e. ``u_x + (t(v) - c)·u_missing``: linear in ``u``. So any
   fold's preprocessing (its own fill values, means and scales, its own categories) and its
   ``XᵀX``, ``Xᵀy`` follow from the sum of the other folds' ``S`` by a matrix product, the
   whole alpha grid from the same sums, and the solver is the estimators' own
   (:meth:`model.linear.LinearRegression.fit_stats`). The shifts ``c`` (pass 1 means) keep
   the moments free of cancellation.
3. **predictions**: every fold model and the final one are linear maps of ``u``, so one matrix
   product per chunk gives the CV metrics in dollars (MAE, MAPE, R²...), the test metrics, the
   drift reference's bin counts and samples of the predictions.

The median needs more than sums. Each part keeps a *bottom-k sample*: the ``SAMPLE_ROWS``
rows whose seeded hash of the row index is smallest, a uniform sample without replacement
that merges exactly (the union's k smallest hashes). Medians (``impute = "median"``), the
drift reference's quantile edges and the numeric ``example`` come from it: exact while a
part holds at most ``SAMPLE_ROWS`` rows; beyond, the rank error of a sample quantile is at
most ``sqrt(ln(2/δ) / 2k)`` with probability ``1 - δ`` (Dvoretzky–Kiefer–Wolfowitz): 0.0076
for k = 65,536 and δ = 0.001, typically ``0.5/√k`` = 0.002 for the median. With ``mean``
imputation nothing is sampled for the model: its coefficients equal the memory engine's to
rounding.

The result is the memory engine's artifact: a fitted :class:`model.pipeline.Pipeline` of the
same classes, built from the statistics (``from_statistics``, ``from_moments``,
``from_categories``, ``ColumnTransformer.from_fitted``), with the same metadata; what the
stream engine cannot give without holding rows (the learning curve; plots of every test
row) it replaces by nothing and by a sample, and the metadata says which engine ran.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import math
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from model.base import FloatArray, clone
from model.linear import ElasticNet, LinearRegression, SufficientStats
from model.preprocessing import missing_mask
from model.selection import parameter_grid
from model.workflow.checks import check_row_count
from model.workflow.config import Config, ConfigError, Feature, RowFilter
from model.workflow.data import (
    Chunk,
    DataError,
    _open_binary,
    parse_column,
    read_header,
)
from model.workflow.fastcsv import iter_chunks_fast, iter_span

#: Engines: the rows in memory; sums over chunks; the same sums on a Dask cluster.
ENGINES = ("memory", "stream", "dask")
#: Rows kept per part by the bottom-k sample (medians, quantile edges); see the docstring.
SAMPLE_ROWS = 65_536
#: Aim of the default chunk size: about this many bytes of parsed fields in memory.
CHUNK_BYTES = 64 << 20
#: Rows per block when building the augmented matrix: ~8 MB of float64 at a time.
_BLOCK_ELEMENTS = 1 << 20
_EPS = float(np.finfo(np.float64).eps)
_STREAMABLE = ("linear", "ridge", "lasso", "elasticnet")


def check_engine(cfg: Config, engine: str) -> None:
    """Refuse an engine the estimator cannot train with, naming the ones it can."""
    if engine not in ENGINES:
        raise ConfigError(f"unknown engine {engine!r}; expected one of {', '.join(ENGINES)}")
    if engine != "memory" and cfg.estimator not in _STREAMABLE:
        raise ConfigError(
            f"{cfg.source}: model.estimator {cfg.estimator!r} cannot train with --engine "
            f"{engine}: it needs every row at once (supported: --engine memory); the linear "
            f"estimators ({', '.join(_STREAMABLE)}) train with {', '.join(ENGINES)}"
        )
    if engine != "memory" and cfg.derived:
        raise ConfigError(
            f"{cfg.source}: [[derived]] features cannot train with --engine {engine}: its "
            "sums are accumulated over the declared features only (supported: --engine memory)"
        )
    solvers = [cfg.params.get("solver"), *cfg.grid.get("solver", [])]
    if engine != "memory" and "sgd" in solvers:
        raise ConfigError(
            f"{cfg.source}: solver 'sgd' draws mini-batches of rows and cannot train with "
            f"--engine {engine} (supported: --engine memory); 'normal' and 'gd' can"
        )


def default_chunk_rows(n_columns: int) -> int:
    """Rows of a chunk of about :data:`CHUNK_BYTES` (a parsed field costs ~80 bytes)."""
    return max(1_000, CHUNK_BYTES // (80 * max(n_columns, 1)))


# --- row hashes and the bottom-k sample ----------------------------------------------------


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
        self.keys = np.concatenate([self.keys, keys])
        self.values = np.concatenate([self.values, values.reshape(len(keys), self.width)])
        if self.keys.size > self.k:
            keep = np.argpartition(self.keys, self.k - 1)[: self.k]
            self.keys, self.values = self.keys[keep], self.values[keep]

    @classmethod
    def merge(cls, samples: Sequence[Sample]) -> Sample:
        out = cls(samples[0].k, samples[0].width)
        for s in samples:
            out.add(s.keys, s.values)
        return out


# --- the layout of the augmented vector ----------------------------------------------------


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


# --- per-chunk parsing shared by the passes ------------------------------------------------


@dataclass
class Parsed:
    """One chunk's needed columns, parsed: numbers (NaN missing) or raw stripped strings."""

    numbers: dict[str, FloatArray]
    text: dict[str, NDArray[Any]]  # object arrays, None for missing
    target: FloatArray
    lines: NDArray[np.int64]
    keep: NDArray[np.bool_]


def _to_numbers(raw: Sequence[str], na: frozenset[str]) -> tuple[FloatArray, int | None]:
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


@functools.cache
def _nan_spellings(na: frozenset[str]) -> dict[str, str]:
    return dict.fromkeys(na, "nan")


class _Reader:
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

    def spans(self, rd: _Reader) -> list[Span | None]:
        return [None]

    def map(self, fn: Callable[..., Any], args: list[tuple[Any, ...]]) -> list[Any]:
        return [fn(*a) for a in args]


def _filter_mask(
    rule: RowFilter, numbers: FloatArray | None, text: NDArray[Any] | None
) -> NDArray[np.bool_]:
    """The memory engine's filter rule (:func:`model.workflow.train._filter_mask`) on a chunk."""
    from model.workflow.train import _filter_mask as memory_mask

    if numbers is not None:
        return memory_mask(rule, numbers)
    assert text is not None
    return memory_mask(rule, text)


# --- pass 1: statistics and checks ---------------------------------------------------------


@dataclass
class _FeatureCheck:
    """What :func:`model.workflow.checks.check_features` needs, accumulated over chunks."""

    missing: int = 0
    first_missing: int | None = None
    outside: int = 0
    first_outside: tuple[int, float] | None = None
    fractional: int = 0
    first_fractional: tuple[int, float] | None = None
    lo: float = math.inf
    hi: float = -math.inf


@dataclass
class Pass1:
    rows_read: int = 0
    kept: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    first_non_number: dict[str, tuple[int, str]] = field(default_factory=dict)
    first_inf: dict[str, tuple[int, str]] = field(default_factory=dict)
    present: dict[str, bool] = field(default_factory=dict)
    all_numbers: dict[str, bool] = field(default_factory=dict)
    target_error: str | None = None
    bad_target: int = 0
    first_bad_target: tuple[int, float] | None = None
    checks: dict[str, _FeatureCheck] = field(default_factory=dict)
    t_sum: dict[str, float] = field(default_factory=dict)
    raw_sum: dict[str, float] = field(default_factory=dict)
    count: dict[str, int] = field(default_factory=dict)
    y_sum: float = 0.0
    categories: dict[str, Counter[str]] = field(default_factory=dict)
    filter_text_error: str | None = None
    log_domain: tuple[str, int, float] | None = None

    def merge(self, later: Pass1) -> Pass1:
        """Add the statistics of the rows after these (first problems stay first)."""
        self.rows_read += later.rows_read
        self.kept += later.kept
        for key, v in later.dropped.items():
            self.dropped[key] = self.dropped.get(key, 0) + v
        for key, first in later.first_non_number.items():
            self.first_non_number.setdefault(key, first)
        for key, first in later.first_inf.items():
            self.first_inf.setdefault(key, first)
        for key, b in later.present.items():
            self.present[key] = self.present.get(key, False) or b
        for key, b in later.all_numbers.items():
            self.all_numbers[key] = self.all_numbers.get(key, True) and b
        self.target_error = self.target_error or later.target_error
        self.bad_target += later.bad_target
        self.first_bad_target = self.first_bad_target or later.first_bad_target
        for key, c in later.checks.items():
            mine = self.checks.setdefault(key, _FeatureCheck())
            mine.missing += c.missing
            mine.first_missing = mine.first_missing or c.first_missing
            mine.outside += c.outside
            mine.first_outside = mine.first_outside or c.first_outside
            mine.fractional += c.fractional
            mine.first_fractional = mine.first_fractional or c.first_fractional
            mine.lo, mine.hi = min(mine.lo, c.lo), max(mine.hi, c.hi)
        sums: list[tuple[dict[str, Any], dict[str, Any]]] = [
            (self.t_sum, later.t_sum),
            (self.raw_sum, later.raw_sum),
            (self.count, later.count),
        ]
        for table, other in sums:
            for key, v in other.items():
                table[key] = table.get(key, 0) + v
        self.y_sum += later.y_sum
        for key, counter in later.categories.items():
            self.categories.setdefault(key, Counter()).update(counter)
        self.filter_text_error = self.filter_text_error or later.filter_text_error
        self.log_domain = self.log_domain or later.log_domain
        return self


def _parse_chunk(
    rd: _Reader, chunk: Chunk, p1: Pass1 | None, numeric_filters: dict[str, bool]
) -> Parsed:
    """Parse the needed columns of a chunk; in pass 1 (``p1`` given) record the first problems
    instead of raising, so they are reported in the memory engine's order at the end."""
    cfg, na = rd.cfg, cfg_na(rd.cfg)
    lines = np.asarray(chunk.lines, dtype=np.int64)
    numbers: dict[str, FloatArray] = {}
    text: dict[str, NDArray[Any]] = {}
    for col in rd.wanted:
        raw = chunk.columns[col]
        as_number = col in rd.numeric_columns or numeric_filters.get(col, False)
        if as_number:  # numeric features, the target, numeric filter columns
            values, bad = _to_numbers(raw, na)
            numbers[col] = values
            if p1 is not None:
                present = bad is not None or not np.isnan(values).all()
                p1.present[col] = p1.present.get(col, False) or present
                if bad is not None and col not in p1.first_non_number:
                    p1.first_non_number[col] = (int(lines[bad]), raw[bad])
                if bad is not None:
                    p1.all_numbers[col] = False
                inf = np.flatnonzero(np.isinf(values))
                if inf.size and col not in p1.first_inf:
                    p1.first_inf[col] = (int(lines[inf[0]]), raw[int(inf[0])])
        if col in rd.text_columns or not as_number:  # categories, text filter columns
            arr = np.array(raw, dtype=object)
            miss = np.fromiter(map(na.__contains__, raw), dtype=bool, count=len(raw))
            arr[miss] = None
            text[col] = arr
            if p1 is not None:
                p1.present[col] = p1.present.get(col, False) or not miss.all()
            if p1 is not None and not as_number and p1.all_numbers.get(col, True):
                vals, bad = _to_numbers(raw, na)
                if bad is not None:
                    p1.all_numbers[col] = False
                else:
                    inf = np.flatnonzero(np.isinf(vals))
                    if inf.size and col not in p1.first_inf:
                        p1.first_inf[col] = (int(lines[inf[0]]), raw[int(inf[0])])
    raw_y = chunk.columns[cfg.target]
    y, bad_y = _to_numbers(raw_y, frozenset())
    if p1 is not None and p1.target_error is None:
        wrong = np.flatnonzero(~np.isfinite(y))
        if wrong.size:
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
                mask = _filter_mask(rule, numbers.get(rule.column), text.get(rule.column))
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


def _pass1_chunk(rd: _Reader, chunk: Chunk, p1: Pass1, numeric_filters: dict[str, bool]) -> None:
    cfg = rd.cfg
    pc = _parse_chunk(rd, chunk, p1, numeric_filters)
    keep = pc.keep
    p1.rows_read += len(pc.lines)
    p1.kept += int(keep.sum())
    lines = pc.lines[keep]
    y = pc.target[keep]
    ty = np.log(y) if cfg.target_transform == "log" else y
    bad = ~np.isfinite(y) | (~(y > 0) if cfg.target_transform == "log" else False)
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        p1.bad_target += int(bad.sum())
        if p1.first_bad_target is None:
            p1.first_bad_target = (int(lines[k]), float(y[k]))
    with np.errstate(invalid="ignore", divide="ignore"):
        p1.y_sum += float(np.where(bad, 0.0, ty).sum())
    for f in cfg.features:
        chk = p1.checks.setdefault(f.name, _FeatureCheck())
        if f.numeric:
            col = pc.numbers[f.column][keep]
            missing = np.isnan(col)
        else:
            tcol = pc.text[f.column][keep]
            missing = missing_mask(tcol)
            counts = p1.categories.setdefault(f.name, Counter())
            counts.update(tcol[~missing].tolist())
        if missing.any():
            if chk.first_missing is None:
                chk.first_missing = int(lines[int(np.flatnonzero(missing)[0])])
            chk.missing += int(missing.sum())
        if not f.numeric:
            continue
        present = col[~missing]
        if present.size:
            chk.lo = min(chk.lo, float(present.min()))
            chk.hi = max(chk.hi, float(present.max()))
        with np.errstate(invalid="ignore"):
            if f.bounds is not None:
                outside = (col < f.bounds[0]) | (col > f.bounds[1])
                if outside.any():
                    k = int(np.flatnonzero(outside)[0])
                    chk.outside += int(outside.sum())
                    if chk.first_outside is None:
                        chk.first_outside = (int(lines[k]), float(col[k]))
            if f.kind == "integer":
                frac = ~missing & (col != np.floor(col))
                if frac.any():
                    k = int(np.flatnonzero(frac)[0])
                    chk.fractional += int(frac.sum())
                    if chk.first_fractional is None:
                        chk.first_fractional = (int(lines[k]), float(col[k]))
        finite = present[np.isfinite(present)]
        if f.transform == "log":
            low = finite <= -1.0
            if low.any() and p1.log_domain is None:
                k = int(np.flatnonzero(col == finite[low][0])[0])
                p1.log_domain = (f.name, int(lines[k]), float(col[k]))
            tx = np.log1p(np.where(low, 0.0, finite))
        else:
            tx = finite
        p1.t_sum[f.name] = p1.t_sum.get(f.name, 0.0) + float(tx.sum())
        p1.raw_sum[f.name] = p1.raw_sum.get(f.name, 0.0) + float(finite.sum())
        p1.count[f.name] = p1.count.get(f.name, 0) + int(finite.size)


def _plain(x: float) -> str:
    return f"{x:.15g}"


def _raise_pass1(cfg: Config, rd: _Reader, p1: Pass1) -> None:
    """The errors of pass 1 in the order the memory engine finds them (prepare_data)."""
    path = rd.path
    # load_csv: the feature columns (infinite values, empty columns), then the target
    for col in rd.wanted:
        numeric_kind = col in rd.numeric_columns and col not in p1.first_non_number
        numeric_kind = numeric_kind or (
            col not in rd.numeric_columns and p1.all_numbers.get(col, True)
        )
        if not p1.present.get(col, False):
            raise DataError(
                f"{path}: column {col!r} is missing in every one of {p1.rows_read} rows"
            )
        if numeric_kind and col in p1.first_inf:
            line, raw = p1.first_inf[col]
            raise DataError(f"{path}: line {line}, column {col!r}: infinite value {raw!r}")
    if p1.target_error is not None:
        raise DataError(p1.target_error)
    if p1.filter_text_error is not None:
        raise DataError(p1.filter_text_error)
    kept = " (after the filters)" if cfg.filters else ""
    check_row_count(cfg, p1.kept, f"{cfg.data_path}{kept}")
    for f in cfg.features:
        if f.numeric and f.column in p1.first_non_number:
            line, raw = p1.first_non_number[f.column]
            raise ConfigError(
                f"{cfg.data_path}: line {line}, column {f.column!r}: {raw!r} is not a "
                f"number, but feature {f.name!r} is declared {f.kind} in {cfg.source} (fix the "
                "value, list it in data.na_values if it means missing, or declare the feature "
                "categorical)"
            )
    if p1.bad_target and p1.first_bad_target is not None:
        need = (
            "a number > 0 (the target is log-transformed)" if cfg.target_transform else "a number"
        )
        line, value = p1.first_bad_target
        raise DataError(
            f"{cfg.data_path}: target {cfg.target!r} must be {need} in every row kept; "
            f"{p1.bad_target} row(s) are not (first at line {line}: {value!r})"
        )
    n = p1.kept
    for i, f in enumerate(cfg.features):
        chk = p1.checks[f.name]
        where = f"{cfg.source}: features[{i}] {f.name!r} (column {f.column!r} of {cfg.data_path})"
        if f.required and chk.missing:
            raise ConfigError(
                f"{where}: required = true, but {chk.missing} of {n} rows miss it "
                f"(first at line {chk.first_missing}); set required = false (the "
                "model then imputes it) or filter those rows out"
            )
        if f.bounds is not None and chk.outside and chk.first_outside is not None:
            lo, hi = f.bounds
            line, value = chk.first_outside
            raise ConfigError(
                f"{where}: bounds [{_plain(lo)}, {_plain(hi)}] exclude "
                f"{chk.outside} of {n} training rows (seen "
                f"{_plain(chk.lo)} to {_plain(chk.hi)}; "
                f"first at line {line}: {_plain(value)}); the service would "
                "refuse them: widen the bounds or filter those rows out"
            )
        if chk.fractional and chk.first_fractional is not None:
            line, value = chk.first_fractional
            raise ConfigError(
                f"{where}: kind = 'integer', but {chk.fractional} rows hold a "
                f"fraction (first at line {line}: {value!r}); use kind = 'numeric'"
            )
    if p1.log_domain is not None:
        name, line, value = p1.log_domain
        raise DataError(
            f"{cfg.data_path}: line {line}: feature {name!r} is {_plain(value)}, but "
            "transform = 'log' needs values > -1 (log1p)"
        )


def _category_name(raw: str, numeric_column: bool) -> str:
    """As the memory engine names a category: a numeric column's code ``20.0`` is ``"20"``."""
    return f"{float(raw):g}" if numeric_column else raw


# --- the split, from row indices alone -----------------------------------------------------


def _permutation(n: int, seed: int) -> NDArray[np.signedinteger[Any]]:
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
    train = _permutation(n, seed)[:n_train]  # train_test_split's training rows, in its order
    parts = np.full(n, folds, dtype=np.int8)
    order = _permutation(n_train, seed)  # KFold's shuffle of the training positions
    sizes = np.full(folds, n_train // folds)
    sizes[: n_train % folds] += 1
    start = 0
    for k, size in enumerate(sizes.tolist()):
        parts[train[order[start : start + size]]] = k
        start += size
    return parts


# --- building u for a chunk ----------------------------------------------------------------


def _augmented(
    lay: Layout, pc: Parsed, cat_index: list[dict[str, int]], keep: NDArray[np.bool_]
) -> FloatArray:
    """The augmented matrix ``u`` of a chunk's kept rows (see the module docstring)."""
    n = int(keep.sum())
    U = np.zeros((n, lay.width))
    logged = lay.logged
    for j, f in enumerate(lay.numeric):
        x = pc.numbers[f.column][keep]
        miss = np.isnan(x)
        t = np.log1p(np.where(miss, 0.0, x)) if logged[j] else x
        U[:, lay.num(j)] = np.where(miss, 0.0, t - lay.shift[j])
        U[:, lay.miss(j)] = miss
        if logged[j]:
            U[:, lay.raw(j)] = np.where(miss, 0.0, x - lay.raw_shift[j])
    rows = np.arange(n)
    for off, f, index in zip(lay.cat_offsets(), lay.categorical, cat_index, strict=True):
        col = pc.text[f.column][keep].tolist()
        codes = np.fromiter(map(index.get, col, itertools.repeat(-1)), np.intp, n)
        hit = codes >= 0
        U[rows[hit], off + codes[hit]] = 1.0
    y = pc.target[keep]
    U[:, lay.y] = (np.log(y) if lay.log_target else y) - lay.y_shift
    U[:, lay.one] = 1.0
    return U


# --- fitting a fold from the sums ----------------------------------------------------------


@dataclass
class FoldFit:
    """A model fitted on a sum of parts, as a linear map of ``u``, and its preprocessing."""

    beta: FloatArray  # prediction of f(y) = u @ beta
    estimator: Any
    fills: FloatArray  # imputer statistics (raw scale), per numeric feature
    mean: FloatArray  # scaler mean_ per numeric feature (transformed scale)
    var: FloatArray
    n: int
    categories: list[list[str]]  # per categorical feature, the ones seen in the training rows
    counts: list[FloatArray]


def _medians(sample: Sample) -> FloatArray:
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.asarray(np.nanmedian(sample.values, axis=0), dtype=np.float64)


def fit_from_sums(
    cfg: Config, lay: Layout, S: FloatArray, sample: Sample | None, estimator: Any
) -> FoldFit:
    """Fit ``estimator`` (unfitted) on the rows whose augmented sums are ``S``."""
    from model.preprocessing import StandardScaler

    one = lay.one
    n = float(S[one, one])
    m = lay.n_num
    count = n - np.array([S[lay.miss(j), one] for j in range(m)])
    for j, f in enumerate(lay.numeric):
        if count[j] <= 0:
            raise DataError(
                f"{cfg.data_path}: feature {f.name!r} is missing in every training row of a "
                f"fold; {cfg.impute} imputation cannot learn from it"
            )
    logged = lay.logged
    if cfg.impute == "mean":
        fills = np.array(
            [
                (lay.raw_shift[j] + S[lay.raw(j), one] / count[j])
                if logged[j]
                else (lay.shift[j] + S[lay.num(j), one] / count[j])
                for j in range(m)
            ]
        )
    else:
        assert sample is not None
        fills = _medians(sample) if m else np.empty(0)
    tfill = np.where(logged, np.log1p(np.where(logged, fills, 0.0)), fills) - lay.shift
    # W maps u to v = [z - c (imputed, transformed, shifted), one-hot kept columns, f(y) - c_y]
    cats: list[list[str]] = []
    counts: list[FloatArray] = []
    onehot_cols: list[int] = []
    for off, names in zip(lay.cat_offsets(), lay.categories, strict=True):
        c = np.array([S[off + i, one] for i in range(len(names))])
        seen = np.flatnonzero(c > 0)
        cats.append([names[i] for i in seen])
        counts.append(c[seen])
        onehot_cols.extend((off + seen).tolist())
    q = m + len(onehot_cols)
    W = np.zeros((q + 1, lay.width))
    for j in range(m):
        W[j, lay.num(j)] = 1.0
        W[j, lay.miss(j)] = tfill[j]
    for i, col in enumerate(onehot_cols):
        W[m + i, col] = 1.0
    W[q, lay.y] = 1.0
    Sv = W @ S @ W.T
    sv = W @ S[:, one]
    mean_v = sv / n
    C = Sv - np.outer(sv, sv) / n
    C = (C + C.T) / 2
    var = np.maximum(np.diag(C)[:m] / n, 0.0)
    scaler = StandardScaler.from_moments(int(n), lay.shift + mean_v[:m], var)
    scale = np.concatenate([scaler.scale_, np.ones(q - m)])
    D = np.concatenate([1.0 / scale, [1.0]])
    Cx = C * D[:, None] * D[None, :]
    x_mean = np.concatenate([np.zeros(m), mean_v[m:q]])
    y_mean = float(lay.y_shift + mean_v[q])
    fit_intercept = bool(getattr(estimator, "fit_intercept", True))
    G, qv, yy = Cx[:q, :q], Cx[:q, q], float(Cx[q, q])
    if fit_intercept:
        stats = SufficientStats(int(n), x_mean, y_mean, G, qv, yy)
    else:
        ym = float(mean_v[q]) + lay.y_shift
        xm = x_mean
        stats = SufficientStats(
            int(n),
            np.zeros(q),
            0.0,
            G + n * np.outer(xm, xm),
            qv + n * xm * ym,
            yy + n * ym * ym,
        )
    est = clone(estimator)
    if not isinstance(est, LinearRegression | ElasticNet):
        raise ConfigError(f"{type(est).__name__} cannot be fitted from sums")
    est.fit_stats(stats)
    w = np.asarray(est.coef_, dtype=np.float64)
    # prediction = b + Σ w_j x_j, x_j = (v_j - mean_v_j) / scale_j for numeric, v_j for one-hot
    coef_v = w / scale
    b0 = float(est.intercept_) - float(coef_v[:m] @ mean_v[:m])
    beta = W[:q].T @ coef_v
    beta[one] += b0
    return FoldFit(beta, est, fills, scaler.mean_, var, int(n), cats, counts)


# --- the engine ----------------------------------------------------------------------------


@dataclass
class _Metric:
    """Sums for the regression metrics of one model on one set of rows (dollars)."""

    n: int = 0
    se: float = 0.0
    ae: float = 0.0
    ape: float = 0.0
    sle: float = 0.0
    log_ok: bool = True
    y_sum: float = 0.0
    y_sq: float = 0.0

    def add(self, y: FloatArray, p: FloatArray, shift: float) -> None:
        d = y - p
        self.n += int(y.size)
        self.se += float(d @ d)
        self.ae += float(np.abs(d).sum())
        self.ape += float((np.abs(d) / np.maximum(np.abs(y), _EPS)).sum())
        if self.log_ok and ((y <= 0).any() or (p <= 0).any()):
            self.log_ok = False
        if self.log_ok:
            ld = np.log(y) - np.log(p)
            self.sle += float(ld @ ld)
        ys = y - shift
        self.y_sum += float(ys.sum())
        self.y_sq += float(ys @ ys)

    def merge(self, other: _Metric) -> _Metric:
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


@dataclass
class StreamSearch:
    """The parts of :class:`model.selection.GridSearchCV` that the metadata reads."""

    cv_results_: dict[str, Any]
    best_index_: int
    best_params_: dict[str, Any]
    best_estimator_: Any
    n_splits_: int


@dataclass
class StreamFit:
    """What the stream engine hands back to :func:`model.workflow.train.train`."""

    search: StreamSearch
    best: Any
    test: dict[str, float]
    y_test: FloatArray  # a sample of the test rows, for the plots
    p_test: FloatArray
    features: list[dict[str, Any]]
    reference: dict[str, Any]
    rows: int
    rows_read: int
    rows_train: int
    dropped: dict[str, int]
    sha256: str
    delimiter: str
    encoding: str
    chunk_rows: int
    passes: int = 3
    engine: str = "stream"
    intervals: dict[str, Any] = field(default_factory=dict)  # from samples (module docstring)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with _open_binary(path) as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass(frozen=True)
class _Plan:
    """What every pass after the first needs to know, shipped to each partition."""

    lay: Layout
    cat_maps: list[dict[str, int]]
    numeric_filters: dict[str, bool]
    folds: int
    seed: int
    sample_rows: int


def _kinds_pass(rd: _Reader, span: Span | None, columns: list[str]) -> dict[str, bool]:
    """Whether each of ``columns`` holds only numbers (or missing values) in this partition."""
    kinds = dict.fromkeys(columns, True)
    for chunk in rd.chunks(span):
        for name in kinds:
            if kinds[name] and _to_numbers(chunk.columns[name], cfg_na(rd.cfg))[1] is not None:
                kinds[name] = False
    return kinds


def _pass1(rd: _Reader, span: Span | None, numeric_filters: dict[str, bool]) -> Pass1:
    p1 = Pass1()
    for chunk in rd.chunks(span):
        _pass1_chunk(rd, chunk, p1, numeric_filters)
    return p1


def _pass2(
    rd: _Reader, span: Span | None, plan: _Plan, parts: NDArray[np.int8], idx0: int
) -> tuple[FloatArray, FloatArray, FloatArray, list[Sample]]:
    """Per part: ``S = Σ u uᵀ``, min and max of the raw numeric values, the sample."""
    lay, K = plan.lay, plan.folds
    m = lay.n_num
    S = np.zeros((K + 1, lay.width, lay.width))
    lo = np.full((K + 1, m), math.inf)
    hi = np.full((K + 1, m), -math.inf)
    samples = [Sample(plan.sample_rows, m) for _ in range(K + 1)]
    for start, U, pc, keep in _blocks(rd, plan, span):
        part = parts[start : start + U.shape[0]]
        values = np.column_stack([pc.numbers[f.column][keep] for f in lay.numeric]) if m else None
        keys = row_hash(np.arange(idx0 + start, idx0 + start + U.shape[0]), plan.seed)
        for k in range(K + 1):
            sel = part == k
            if not sel.any():
                continue
            Uk = U[sel]
            S[k] += Uk.T @ Uk
            if values is not None:
                rk = values[sel]
                lo[k] = np.fmin(lo[k], np.min(np.where(np.isnan(rk), np.inf, rk), axis=0))
                hi[k] = np.fmax(hi[k], np.max(np.where(np.isnan(rk), -np.inf, rk), axis=0))
                samples[k].add(keys[sel], rk)
    return S, lo, hi, samples


@dataclass
class _Pass3:
    """The partial results of pass 3 (see :func:`_pass3`), summed over partitions."""

    cv: list[list[_Metric]]  # [candidate][fold]
    test: list[_Metric]  # [candidate], its final model on the test rows
    test_sample: Sample  # y, then each candidate's prediction
    oof_sample: Sample  # training rows: y, then each candidate's out-of-fold prediction
    pred_sample: Sample
    bins: dict[str, NDArray[np.int64]]

    def merge(self, other: _Pass3) -> _Pass3:
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
        return self


def _pass3(
    rd: _Reader,
    span: Span | None,
    plan: _Plan,
    parts: NDArray[np.int8],
    idx0: int,
    B: FloatArray,
    finals: FloatArray,
    edges: dict[str, dict[str, Any]],
    y_center: float,
) -> _Pass3:
    """Every fold model's metrics on its validation rows (``B``: one column per candidate and
    fold), every candidate's final model (``finals``) on the test rows, in dollars, and the
    drift reference's counts on the training rows."""
    from model.drift import bin_counts

    lay, K = plan.lay, plan.folds
    n_c = finals.shape[1]
    out = _Pass3(
        [[_Metric() for _ in range(K)] for _ in range(n_c)],
        [_Metric() for _ in range(n_c)],
        Sample(plan.sample_rows, 1 + n_c),
        Sample(plan.sample_rows, 1 + n_c),
        Sample(plan.sample_rows, n_c),
        {f.name: np.zeros(len(edges[f.name]["edges"]) + 2, dtype=np.int64) for f in lay.numeric},
    )
    for start, U, pc, keep in _blocks(rd, plan, span):
        part = parts[start : start + U.shape[0]]
        y = pc.target[keep]
        F = U @ np.column_stack([B, finals])
        pred = np.exp(F) if lay.log_target else F
        for k in range(K):
            sel = part == k
            if sel.any():
                for c in range(n_c):
                    out.cv[c][k].add(y[sel], pred[sel, c * K + k], y_center)
        final = pred[:, n_c * K :]
        keys = row_hash(np.arange(idx0 + start, idx0 + start + U.shape[0]), plan.seed)
        te = part == K
        if te.any():
            for c in range(n_c):
                out.test[c].add(y[te], final[te, c], y_center)
            out.test_sample.add(keys[te], np.column_stack([y[te], final[te]]))
        tr = ~te
        out.pred_sample.add(keys[tr], final[tr])
        if tr.any():  # each training row's prediction by the fold model that did not see it
            fold_of = part[tr].astype(np.intp)
            cols = np.arange(n_c)[None, :] * K + fold_of[:, None]
            oof = np.take_along_axis(pred[tr], cols, axis=1)
            out.oof_sample.add(keys[tr], np.column_stack([y[tr], oof]))
        for f in lay.numeric:
            out.bins[f.name] += bin_counts(edges[f.name], pc.numbers[f.column][keep][tr])
    return out


def fit_stream(
    cfg: Config,
    grid: dict[str, list[Any]],
    *,
    chunk_rows: int | None = None,
    say: Callable[[str], None] | None = None,
    sample_rows: int = SAMPLE_ROWS,
    runner: Runner | None = None,
) -> StreamFit:
    """Train ``cfg`` in three passes over its file (see the module docstring); ``runner``
    runs each pass on the file's partitions (default: the whole file, in this process)."""
    from model.drift import numeric_profile
    from model.workflow.train import METRICS, PARAM_PREFIX, build_pipeline

    run = runner or Runner()
    rd = _Reader(cfg, chunk_rows)
    spans = run.spans(rd)
    note = say or (lambda _: None)
    # A filter column that is neither a numeric feature nor the target is read as numbers
    # only if every present value is one, as load_csv decides: a look at those columns first.
    ambiguous = list(
        dict.fromkeys(r.column for r in cfg.filters if r.column not in rd.numeric_columns)
    )
    numeric_filters: dict[str, bool] = {}
    if ambiguous:
        for kinds in run.map(_kinds_pass, [(rd, sp, ambiguous) for sp in spans]):
            for name, b in kinds.items():
                numeric_filters[name] = numeric_filters.get(name, True) and b

    note(f"pass 1/3: statistics of {rd.path}")
    partials = run.map(_pass1, [(rd, sp, numeric_filters) for sp in spans])
    p1 = partials[0]
    for later in partials[1:]:
        p1.merge(later)
    _raise_pass1(cfg, rd, p1)
    n = p1.kept
    starts = np.concatenate([[0], np.cumsum([q.kept for q in partials])]).astype(int).tolist()
    sha256 = _sha256(rd.path)

    plain = [f for f in cfg.features if f.numeric and f.transform is None]
    logged_f = [f for f in cfg.features if f.numeric and f.transform == "log"]
    numeric = tuple(plain + logged_f)
    categorical = tuple(f for f in cfg.features if f.kind == "categorical")
    cat_names: list[tuple[str, ...]] = []
    cat_maps: list[dict[str, int]] = []
    for f in categorical:
        numeric_col = p1.all_numbers.get(f.column, True)
        spellings = p1.categories.get(f.name, Counter())
        names = tuple(sorted({_category_name(v, numeric_col) for v in spellings}))
        cat_names.append(names)
        pos = {name: i for i, name in enumerate(names)}
        cat_maps.append({v: pos[_category_name(v, numeric_col)] for v in spellings})
    lay = Layout(
        numeric=numeric,
        categorical=categorical,
        categories=tuple(cat_names),
        shift=np.array([p1.t_sum[f.name] / max(p1.count[f.name], 1) for f in numeric]),
        raw_shift=np.array([p1.raw_sum[f.name] / max(p1.count[f.name], 1) for f in numeric]),
        y_shift=p1.y_sum / n,
        log_target=cfg.target_transform == "log",
    )
    K = cfg.folds
    parts = assign_parts(n, cfg.test_size, K, cfg.seed)
    plan = _Plan(lay, cat_maps, numeric_filters, K, cfg.seed, sample_rows)

    def slices() -> list[tuple[NDArray[np.int8], int]]:
        return [(parts[a:b], a) for a, b in itertools.pairwise(starts)]

    note("pass 2/3: sums per fold")
    S = np.zeros((K + 1, lay.width, lay.width))
    lo = np.full((K + 1, lay.n_num), math.inf)
    hi = np.full((K + 1, lay.n_num), -math.inf)
    samples: list[list[Sample]] = [[] for _ in range(K + 1)]
    args2 = [(rd, sp, plan, pp, i0) for sp, (pp, i0) in zip(spans, slices(), strict=True)]
    for S_p, lo_p, hi_p, smp in run.map(_pass2, args2):
        S += S_p
        lo, hi = np.fmin(lo, lo_p), np.fmax(hi, hi_p)
        for k in range(K + 1):
            samples[k].append(smp[k])
    part_samples = [Sample.merge(s) for s in samples]

    estimator = build_pipeline(cfg).named_steps["regressor"].regressor
    candidates = parameter_grid(grid)

    def with_params(params: dict[str, Any]) -> Any:
        short = {k.removeprefix(PARAM_PREFIX): v for k, v in params.items()}
        return clone(estimator).set_params(**short)

    median = cfg.impute == "median"
    fold_fits: list[list[FoldFit]] = []
    for params in candidates:
        est = with_params(params)
        row = []
        for k in range(K):
            others = [j for j in range(K) if j != k]
            smp = Sample.merge([part_samples[j] for j in others]) if median else None
            row.append(fit_from_sums(cfg, lay, S[others].sum(axis=0), smp, est))
        fold_fits.append(row)
    S_train = S[:K].sum(axis=0)
    train_sample = Sample.merge(part_samples[:K])
    n_c = len(candidates)
    B = np.column_stack([fold_fits[c][k].beta for c in range(n_c) for k in range(K)])
    # Every candidate's final model too: the CV picks one after pass 3 (its metrics in
    # dollars need the rows), and the test metrics of the one picked come from that pass.
    finals = [
        fit_from_sums(cfg, lay, S_train, train_sample if median else None, with_params(p))
        for p in candidates
    ]
    edges = {f.name: numeric_profile(train_sample.values[:, j]) for j, f in enumerate(numeric)}
    y_center = math.exp(lay.y_shift) if lay.log_target else lay.y_shift

    note("pass 3/3: predictions and metrics")
    finals_B = np.column_stack([f.beta for f in finals])
    args3 = [
        (rd, sp, plan, pp, i0, B, finals_B, edges, y_center)
        for sp, (pp, i0) in zip(spans, slices(), strict=True)
    ]
    results3 = run.map(_pass3, args3)
    p3 = results3[0]
    for other in results3[1:]:
        p3.merge(other)
    table = {
        m_: np.array([[p3.cv[c][k].values()[m_] for k in range(K)] for c in range(n_c)])
        for m_ in METRICS
    }
    means = table[cfg.scoring].mean(axis=1)
    key = np.where(np.isnan(means), np.inf, means)
    best_index = int(np.flatnonzero(key == key.min())[0])  # GridSearchCV's rank 1
    best_params = dict(candidates[best_index])
    best = _pipeline(cfg, lay, finals[best_index], best_params)
    n_train = int(S_train[lay.one, lay.one])
    features_ref: dict[str, Any] = {}
    for f in cfg.features:
        if f.numeric:
            prof = dict(edges[f.name])
            prof["shares"] = (p3.bins[f.name] / n_train).tolist()
            prof["count"] = n_train
            features_ref[f.name] = prof
        else:
            ci = categorical.index(f)
            off = lay.cat_offsets()[ci]
            counts = np.array([S_train[off + i, lay.one] for i in range(len(cat_names[ci]))])
            seen = counts > 0
            cats = [c for c, s_ in zip(cat_names[ci], seen.tolist(), strict=True) if s_]
            missing = n_train - float(counts.sum())
            features_ref[f.name] = {
                "kind": "categorical",
                "categories": cats,
                "shares": [*(counts[seen] / n_train).tolist(), 0.0, missing / n_train],
                "count": n_train,
            }
    reference = {
        "features": features_ref,
        "prediction": numeric_profile(p3.pred_sample.values[:, best_index]),
    }
    records = _feature_records(
        cfg, lay, S_train, lo[:K].min(axis=0), hi[:K].max(axis=0), train_sample
    )
    scoring = [cfg.scoring, *[x for x in METRICS if x != cfg.scoring]]
    results: dict[str, Any] = {"params": candidates}
    for key_ in sorted({k for p in candidates for k in p}):
        column = np.empty(n_c, dtype=object)
        column[:] = [p.get(key_) for p in candidates]
        results[f"param_{key_}"] = column
    for name in scoring:
        t = table[name]
        for k in range(K):
            results[f"split{k}_test_{name}"] = t[:, k].copy()
        results[f"mean_test_{name}"] = t.mean(axis=1)
        results[f"std_test_{name}"] = t.std(axis=1)
    from model.workflow.intervals import calibrate

    order = np.argsort(p3.test_sample.keys)
    oof = p3.oof_sample.values
    intervals = calibrate(
        oof[:, 0],
        oof[:, 1 + best_index],
        p3.test_sample.values[:, 0],
        p3.test_sample.values[:, 1 + best_index],
        "log" if lay.log_target else "price",
    )
    return StreamFit(
        search=StreamSearch(results, best_index, best_params, best, K),
        best=best,
        test=p3.test[best_index].values(),
        y_test=p3.test_sample.values[order, 0],
        p_test=p3.test_sample.values[order, 1 + best_index],
        features=records,
        reference=reference,
        rows=n,
        rows_read=p1.rows_read,
        rows_train=n_train,
        dropped=p1.dropped,
        sha256=sha256,
        delimiter=rd.delimiter,
        encoding=rd.encoding,
        chunk_rows=rd.chunk_rows,
        engine=run.name,
        intervals=intervals,
    )


def _blocks(
    rd: _Reader, plan: _Plan, span: Span | None
) -> Iterator[tuple[int, FloatArray, Parsed, NDArray[np.bool_]]]:
    """``(index of its first row among the partition's kept rows, u, parsed chunk, kept rows)``
    per block of a chunk."""
    start = 0
    lay = plan.lay
    rows = max(1, _BLOCK_ELEMENTS // lay.width)
    for chunk in rd.chunks(span):
        pc = _parse_chunk(rd, chunk, None, plan.numeric_filters)
        kept = np.flatnonzero(pc.keep)
        for b in range(0, kept.size, rows):
            keep = np.zeros(pc.keep.size, dtype=bool)
            keep[kept[b : b + rows]] = True
            U = _augmented(lay, pc, plan.cat_maps, keep)
            yield start, U, pc, keep
            start += U.shape[0]


def _feature_records(
    cfg: Config,
    lay: Layout,
    S: FloatArray,
    lo: FloatArray,
    hi: FloatArray,
    sample: Sample,
) -> list[dict[str, Any]]:
    """:func:`model.workflow.train.feature_records` from the training sums and sample."""
    from model.workflow.train import declared_record  # train imports this module lazily too

    out = []
    for f in cfg.features:
        rec = declared_record(f)
        if f.numeric:
            j = lay.numeric.index(f)
            present = math.isfinite(lo[j])
            rec["min"] = float(lo[j]) if present else None
            rec["max"] = float(hi[j]) if present else None
            col = sample.values[:, j]
            col = col[~np.isnan(col)]
            if rec["example"] is None and col.size:
                rec["example"] = float(np.median(col))
        else:
            ci = lay.categorical.index(f)
            off = lay.cat_offsets()[ci]
            names = lay.categories[ci]
            counts = np.array([S[off + i, lay.one] for i in range(len(names))])
            cats = [c for c, k in zip(names, counts.tolist(), strict=True) if k > 0]
            rec["categories"] = cats
            if rec["example"] is None and cats:
                rec["example"] = str(names[int(np.argmax(counts))])
        out.append(rec)
    return out


def _pipeline(cfg: Config, lay: Layout, fit: FoldFit, params: dict[str, Any]) -> Any:
    """The fitted pipeline of :func:`model.workflow.train.build_pipeline`, from statistics."""
    from model.compose import CATEGORICAL, NUMERIC, ColumnTransformer
    from model.pipeline import Pipeline
    from model.preprocessing import LogTransformer, OneHotEncoder, SimpleImputer, StandardScaler
    from model.workflow.train import build_pipeline

    pipe = build_pipeline(cfg).set_params(**params)
    ct_spec = pipe.named_steps["features"]
    kinds: dict[str, str] = {}
    fitted: list[tuple[str, Any, list[str]]] = []
    widths: list[int] = []
    logged = lay.logged
    for name, est, names in ct_spec.transformers:
        if name == "categorical":
            idx = [
                lay.categorical.index(next(f for f in cfg.features if f.name == c)) for c in names
            ]
            enc = OneHotEncoder.from_categories([fit.categories[i] for i in idx])
            fitted.append((name, enc, list(names)))
            widths.append(sum(len(fit.categories[i]) for i in idx))
            kinds.update({c: CATEGORICAL for c in names})
            continue
        js = [next(j for j, f in enumerate(lay.numeric) if f.name == c) for c in names]
        steps: list[tuple[str, Any]] = []
        for step, _ in est.steps:
            if step == "impute":
                steps.append((step, SimpleImputer.from_statistics(fit.fills[js], cfg.impute)))
            elif step == "log":
                assert logged[js].all()
                steps.append((step, LogTransformer().fit(np.zeros((1, len(js))))))
            elif step == "scale":
                steps.append((step, StandardScaler.from_moments(fit.n, fit.mean[js], fit.var[js])))
        block = Pipeline(steps)
        block.fitted_steps_ = tuple(e for _, e in steps)
        fitted.append((name, block, list(names)))
        widths.append(len(names))
        kinds.update({c: NUMERIC for c in names})
    ct = ColumnTransformer.from_fitted(fitted, kinds, widths)
    reg = pipe.named_steps["regressor"]
    reg.regressor_ = fit.estimator
    out = Pipeline([("features", ct), ("regressor", reg)])
    out.fitted_steps_ = (ct, reg)
    return out


def engine_metadata(fit: StreamFit) -> dict[str, Any]:
    """The metadata's record of how the stream engine ran."""
    return {
        "name": fit.engine,
        "chunk_rows": fit.chunk_rows,
        "passes": fit.passes,
        "sample_rows": SAMPLE_ROWS,
    }
