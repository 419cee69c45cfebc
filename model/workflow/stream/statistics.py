"""Pass 1: the rows read and kept, the config's promises checked, categories and centring shifts.

Problems are recorded (the first of each kind, with its line) rather than raised, so that
:func:`raise_pass1` reports them in the memory engine's order after the pass."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from model.workflow.checks import (
    bounds_error,
    check_row_count,
    feature_where,
    fraction_error,
    plain,
    required_error,
)
from model.workflow.config import Config, ConfigError
from model.workflow.data import Chunk, DataError
from model.workflow.stream.cache import ColumnCache
from model.workflow.stream.reading import (
    Parsed,
    Reader,
    Span,
    cfg_na,
    column_numbers,
    parse_chunk,
)


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


def _pass1_chunk(rd: Reader, chunk: Chunk, p1: Pass1, numeric_filters: dict[str, bool]) -> Parsed:
    cfg = rd.cfg
    pc = parse_chunk(rd, chunk, p1, numeric_filters)
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
            factors = pc.text[f.column][keep]
            missing = factors.missing
            p1.categories.setdefault(f.name, Counter()).update(factors.counts())
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
    return pc


def raise_pass1(cfg: Config, rd: Reader, p1: Pass1) -> None:
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
        where = feature_where(cfg, i)
        if f.required and chk.missing and chk.first_missing is not None:
            raise required_error(where, chk.missing, n, chk.first_missing)
        if f.bounds is not None and chk.outside and chk.first_outside is not None:
            raise bounds_error(where, f.bounds, chk.outside, n, (chk.lo, chk.hi), chk.first_outside)
        if chk.fractional and chk.first_fractional is not None:
            raise fraction_error(where, chk.fractional, *chk.first_fractional)
    if p1.log_domain is not None:
        name, line, value = p1.log_domain
        raise DataError(
            f"{cfg.data_path}: line {line}: feature {name!r} is {plain(value)}, but "
            "transform = 'log' needs values > -1 (log1p)"
        )


def category_name(raw: str, numeric_column: bool) -> str:
    """As the memory engine names a category: a numeric column's code ``20.0`` is ``"20"``."""
    return f"{float(raw):g}" if numeric_column else raw


def kinds_pass(rd: Reader, span: Span | None, columns: list[str]) -> dict[str, bool]:
    """Whether each of ``columns`` holds only numbers (or missing values) in this partition."""
    kinds = dict.fromkeys(columns, True)
    for chunk in rd.chunks(span):
        for name in kinds:
            if kinds[name] and column_numbers(chunk.columns, name, cfg_na(rd.cfg))[1] is not None:
                kinds[name] = False
    return kinds


def pass1(
    rd: Reader,
    span: Span | None,
    numeric_filters: dict[str, bool],
    cache: ColumnCache | None = None,
) -> Pass1:
    """Pass 1 over one partition (``cache``: where to keep the kept rows' parsed columns)."""
    p1 = Pass1()
    for chunk in rd.chunks(span):
        pc = _pass1_chunk(rd, chunk, p1, numeric_filters)
        if cache is not None:
            k = pc.keep
            cache.add(
                {c: pc.numbers[c][k] for c in cache.numeric},
                {c: pc.text[c][k] for c in cache.categorical},
                pc.target[k],
            )
    if cache is not None:
        cache.finish()
    return p1
