"""Price a file of houses with a trained artifact: what ``houseprice predict`` does.

Columns. A feature is read from its API name (``living_area``) or from its training CSV's
column (``area``), so the training file itself can be scored; a file holding both for one
feature is refused, naming the two. A required feature under neither name is refused before
any work, with the close names the file has. Other columns are ignored, except the ones kept
beside the price (``keep``; by default the artifact's ``data.id_columns`` the file has).

Values are parsed as training parsed them: the artifact's missing-value spellings, numbers
for numeric features, and for categorical ones the text as it is, a number written as a code
(``20``, ``20.0``) matched to the training category ``"20"``. JSON strings are read as CSV
fields are; JSON numbers are numbers.

Each row gets ``price``, ``model_version`` and ``warnings``: ``"; "``-joined entries
``COLUMN: what`` for what validation lets through but a user should know, the three the
service counts too:

- ``neighborhood: unknown category 'Xyz'`` (encoded as no category, the baseline);
- ``living_area: 9000 above the training maximum 5642`` (or below the minimum);
- ``lot_area: missing, imputed`` (an optional feature left empty; one the file has no
  column for is said once, in the summary, rather than on every row).

What the service refuses with 422 is an error here: a value that is not a number, outside the
feature's hard ``bounds``, a fraction for an ``integer`` feature, or a required feature left
empty. Such a row is written with an
empty price and an entry ``error: line 12, column 'area': 0 outside the bounds [1, 20000]``
first in its warnings, the other rows are priced, and the run ends with exit code 2 and one
``error:`` line counting them; ``strict`` instead stops at the first one (an output file is
then not written; stdout has had the chunks before it).
A row the model cannot price (a log of a negative size where no bound forbids it, an
overflow) is an error row too.

Memory: one chunk of rows at a time (``chunk_rows``), read, parsed, priced and written,
whatever the file's size (a ``.json`` document is parsed whole first; see
:mod:`model.workflow.rowfiles`).
"""

from __future__ import annotations

import math
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np
from numpy.typing import NDArray

from model.base import Columns, FloatArray
from model.explain import CannotExplainError, explain
from model.workflow.arrowcsv import ArrowColumns
from model.workflow.atomic import atomic_open
from model.workflow.checks import plain
from model.workflow.data import NA_VALUES, DataError, parse_column, suggest
from model.workflow.intervals import IntervalRule, bounds
from model.workflow.progress import ProgressBar
from model.workflow.rowfiles import (
    Format,
    RowChunk,
    count_lines,
    input_format,
    open_rows,
    output_format,
    render,
    render_end,
    shown,
)

#: Rows read, priced and written at a time when the caller does not say.
CHUNK_ROWS = 10_000
#: Output columns written after the kept ones; a kept column may not take these names.
OUTPUT_COLUMNS = ("price", "low", "high", "explanation", "model_version", "warnings")
#: The kinds of warning, as counted in the summary.
WARNING_KINDS = ("unknown category", "outside the training range", "imputed")


@dataclass(frozen=True)
class FeatureInput:
    """What scoring needs of one entry of the artifact's ``features`` (Contract 1)."""

    name: str
    column: str
    numeric: bool
    required: bool
    integer: bool  # kind "integer": a fraction is refused, as the service refuses it
    bounds: tuple[float, float] | None
    lo: float | None  # the training minimum and maximum: outside is a warning
    hi: float | None
    categories: frozenset[str]

    @classmethod
    def from_metadata(cls, rec: Mapping[str, Any]) -> FeatureInput:
        bounds = rec.get("bounds")
        return cls(
            name=str(rec["name"]),
            column=str(rec.get("column") or rec["name"]),
            numeric=rec.get("kind") != "categorical",
            required=bool(rec.get("required", False)),
            integer=rec.get("kind") == "integer",
            bounds=(float(bounds[0]), float(bounds[1])) if bounds else None,
            lo=None if rec.get("min") is None else float(rec["min"]),
            hi=None if rec.get("max") is None else float(rec["max"]),
            categories=frozenset(str(c) for c in rec.get("categories") or ()),
        )

    @property
    def spellings(self) -> list[str]:
        """The names a file may give it: the API name, then the training column if different."""
        return [self.name] if self.column == self.name else [self.name, self.column]


def resolve_columns(
    features: Sequence[FeatureInput], available: Sequence[str], where: str
) -> dict[str, str | None]:
    """Feature name -> the input column holding it (``None``: absent, an optional feature).

    Refused: both spellings of one feature present, one column claimed by two features, a
    required feature under neither name.
    """
    present = set(available)
    out: dict[str, str | None] = {}
    claimed: dict[str, str] = {}
    for f in features:
        found = [s for s in f.spellings if s in present]
        if len(found) == 2:
            raise DataError(
                f"{where}: columns {f.name!r} (the API name) and {f.column!r} (the training "
                f"column) are both present; they are one feature, {f.name!r}: drop one"
            )
        if not found and f.required:
            names = " or ".join(repr(s) for s in f.spellings)
            raise DataError(
                f"{where}: required feature {f.name!r} is missing: no column {names}; "
                f"{suggest(f.column, list(available))}"
            )
        col = found[0] if found else None
        if col is not None:
            if col in claimed:
                raise DataError(
                    f"{where}: column {col!r} names two features, {claimed[col]!r} and "
                    f"{f.name!r}: rename it to one of their API names"
                )
            claimed[col] = f.name
        out[f.name] = col
    return out


# --- parsing --------------------------------------------------------------------------------


def _as_number(v: Any, na: frozenset[str]) -> float | str:
    """A float (NaN for missing) or the error text for a JSON value of a numeric feature."""
    if v is None:
        return math.nan
    if isinstance(v, str):
        s = v.strip()
        if s in na:
            return math.nan
        try:
            return float(s)
        except ValueError:
            return f"not a number: {shown(v)}"
    if isinstance(v, bool) or not isinstance(v, int | float):
        return f"not a number: {shown(v)}"
    try:
        return float(v)
    except OverflowError:
        return f"not a finite number: {shown(v)}"


def parse_numbers(
    raw: list[Any], na: frozenset[str], text: bool
) -> tuple[FloatArray, dict[int, str]]:
    """Float64 (NaN for missing) and the rows that are not numbers, with why.

    CSV text goes through :func:`model.workflow.data.parse_column`, the parser training used;
    only a column holding a non-number is then read value by value to name them.
    """
    if text:
        col, kind = parse_column(raw, na)
        if kind == "numeric":
            bad: dict[int, str] = {}
        else:
            col, bad = _numbers_one_by_one(raw, na)
    else:
        col, bad = _numbers_one_by_one(raw, na)
    inf = np.flatnonzero(np.isinf(col))
    for i in inf.tolist():
        bad[i] = f"not a finite number: {shown(raw[i])}"
    col[inf] = math.nan
    return col, bad


def _column_numbers(
    chunk: RowChunk, key: str, na: frozenset[str]
) -> tuple[FloatArray, dict[int, str]]:
    """:func:`parse_numbers` of a chunk's column, cast in C when pyarrow read it
    (:meth:`model.workflow.arrowcsv.ArrowColumns.numbers`) and every value is a number."""
    if isinstance(chunk.columns, ArrowColumns):
        col, first_bad = chunk.columns.numbers(key, na)
        if first_bad is None:
            inf = np.flatnonzero(np.isinf(col))
            raw = chunk.columns[key] if inf.size else []
            bad = {i: f"not a finite number: {shown(raw[i])}" for i in inf.tolist()}
            col[inf] = math.nan
            return col, bad
    return parse_numbers(chunk.columns[key], na, chunk.text)


def _numbers_one_by_one(raw: list[Any], na: frozenset[str]) -> tuple[FloatArray, dict[int, str]]:
    col = np.empty(len(raw), dtype=np.float64)
    bad: dict[int, str] = {}
    for i, v in enumerate(raw):
        x = _as_number(v, na)
        if isinstance(x, str):
            bad[i] = x
            x = math.nan
        col[i] = x
    return col, bad


def parse_categories(
    raw: list[Any], na: frozenset[str], text: bool, known: frozenset[str]
) -> tuple[NDArray[Any], dict[int, str]]:
    """Object array of ``str`` (``None`` for missing) and the rows that cannot be a category.

    A value unknown to training that reads as a number is tried as training wrote numeric
    codes (``f"{x:g}"``: ``"20.0"`` -> ``"20"``).
    """
    bad: dict[int, str] = {}
    values: list[str | None]
    if text:
        values = [None if v in na else v for v in raw]
    else:
        values = []
        for i, v in enumerate(raw):
            if v is None:
                values.append(None)
            elif isinstance(v, str):
                s = v.strip()
                values.append(None if s in na else s)
            elif isinstance(v, int | float) and not isinstance(v, bool):
                try:
                    values.append(None if v != v else f"{v:g}")  # NaN: missing
                except OverflowError:  # an integer beyond any float
                    bad[i] = f"not a category (text or a number): {shown(v)}"
                    values.append(None)
            else:
                bad[i] = f"not a category (text or a number): {shown(v)}"
                values.append(None)
    if known:
        for i, v in enumerate(values):
            if v is not None and v not in known:
                try:
                    code = f"{float(v):g}"
                except (ValueError, OverflowError):
                    continue
                if code in known:
                    values[i] = code
    col = np.empty(len(values), dtype=object)
    col[:] = values
    return col, bad


# --- one chunk ------------------------------------------------------------------------------


@dataclass
class ScoredChunk:
    """Prices (NaN where a row is in error) and each row's notes, errors first."""

    prices: FloatArray
    notes: dict[int, list[str]]
    errors: dict[int, str]  # row -> the first error, for the summary
    counts: Counter[str] = field(default_factory=Counter)
    bounds: tuple[FloatArray, FloatArray] | None = None  # the interval, NaN where no price
    explanations: list[dict[str, Any] | None] | None = None  # None where no price


class Scorer:
    """Prices chunks of raw rows with an artifact's pipeline, checking them as the API does."""

    def __init__(
        self,
        pipeline: Any,
        metadata: Mapping[str, Any],
        interval_level: float | None = None,
        explain: bool = False,
    ) -> None:
        self.pipeline = pipeline
        self.explain = explain
        self.interval: IntervalRule | None = None
        record = metadata.get("intervals")
        if interval_level is not None and record:
            try:
                self.interval = IntervalRule.from_record(record, interval_level)
            except ValueError as e:
                raise DataError(f"--interval-level {interval_level:g}: {e}") from None
        self.features = [FeatureInput.from_metadata(r) for r in metadata["features"]]
        self.version = str(metadata.get("model_version", ""))
        #: the features an explanation names, fixed by the model: every chunk's columns
        self.explained: list[str] = self._explained_names() if explain else []
        fmt = metadata.get("data", {}).get("format") or {}
        na = fmt.get("na_values")
        self.na_values = frozenset(na) if na is not None else frozenset(NA_VALUES)

    def score(self, chunk: RowChunk, columns: Mapping[str, str | None]) -> ScoredChunk:
        """Parse, check and price ``chunk``; ``columns`` from :func:`resolve_columns`."""
        n = len(chunk)
        errors: dict[int, list[str]] = defaultdict(list)
        warns: dict[int, list[str]] = defaultdict(list)
        counts: Counter[str] = Counter()
        table: Columns = {}

        def error(i: int, col: str, what: str) -> None:
            errors[i].append(f"{chunk.where(i)}, column {col!r}: {what}")

        for f in self.features:
            key = columns[f.name]
            if key is None:  # an optional feature the file lacks: said once, not per row
                table[f.name] = np.full(n, math.nan) if f.numeric else np.full(n, None, object)
                continue
            col_name = key
            if f.numeric:
                x, bad = _column_numbers(chunk, key, self.na_values)
                for i, what in bad.items():
                    error(i, col_name, what)
                missing = np.isnan(x)
                if bad:
                    missing[list(bad)] = False
                self._check_number(f, x, missing, col_name, error, warns, counts)
                table[f.name] = x
            else:
                raw = chunk.columns[key]
                c, bad = parse_categories(raw, self.na_values, chunk.text, f.categories)
                for i, what in bad.items():
                    error(i, col_name, what)
                values = c.tolist()
                distinct = set(values)
                if None not in distinct and (not f.categories or distinct <= f.categories):
                    table[f.name] = c  # the common case: nothing to say about this column
                    continue
                for i, v in enumerate(values):
                    if v is None:
                        if i in bad:
                            continue
                        if f.required:
                            error(i, col_name, f"missing, but {f.name!r} is required")
                        else:
                            warns[i].append(f"{col_name}: missing, imputed")
                            counts["imputed"] += 1
                    elif f.categories and v not in f.categories:
                        warns[i].append(f"{col_name}: unknown category {shown(v)}")
                        counts["unknown category"] += 1
                table[f.name] = c
        prices = self._predict(table, chunk, errors)
        bad_rows = list(errors)
        prices[bad_rows] = math.nan
        notes: dict[int, list[str]] = {}
        for i in sorted(set(errors) | set(warns)):
            notes[i] = [f"error: {e}" for e in errors.get(i, ())] + warns.get(i, [])
        first = {i: errors[i][0] for i in bad_rows}
        out = ScoredChunk(prices, notes, first, counts)
        if self.interval is not None:
            out.bounds = bounds(prices, self.interval.halfwidth, self.interval.space)
        if self.explain:
            out.explanations = self._explain(table, prices)
        return out

    def _explained_names(self) -> list[str]:
        """The names of an explanation's contributions, read from one row with every value
        missing (what the imputers or the trees' missing branches price), before any output;
        a model with no explanation is refused here."""
        row: Columns = {
            f.name: np.full(1, math.nan) if f.numeric else np.full(1, None, object)
            for f in self.features
        }
        try:
            with np.errstate(all="ignore"):
                return list(explain(self.pipeline, row).names)
        except CannotExplainError as e:
            raise DataError(f"--explain: this model has no explanation: {e}") from None

    def _explain(self, table: Columns, prices: FloatArray) -> list[dict[str, Any] | None]:
        """Each priced row's explanation (:mod:`model.explain`), ``None`` for a row in error."""
        ok = np.flatnonzero(np.isfinite(prices))
        out: list[dict[str, Any] | None] = [None] * len(prices)
        if not ok.size:
            return out
        try:
            with np.errstate(all="ignore"):
                records = explain(self.pipeline, {k: v[ok] for k, v in table.items()}).records()
        except CannotExplainError as e:
            raise DataError(f"--explain: this model has no explanation: {e}") from None
        for i, rec in zip(ok.tolist(), records, strict=True):
            out[i] = rec
        return out

    def _check_number(
        self,
        f: FeatureInput,
        x: FloatArray,
        missing: NDArray[np.bool_],
        col: str,
        error: Callable[[int, str, str], None],
        warns: dict[int, list[str]],
        counts: Counter[str],
    ) -> None:
        """Hard rules (required, bounds, whole numbers) as errors; soft ones (the training
        range, imputed) as warnings."""
        for i in np.flatnonzero(missing).tolist():
            if f.required:
                error(i, col, f"missing, but {f.name!r} is required")
            else:
                warns[i].append(f"{col}: missing, imputed")
                counts["imputed"] += 1
        with np.errstate(invalid="ignore"):
            if f.bounds is not None:
                lo, hi = f.bounds
                for i in np.flatnonzero((x < lo) | (x > hi)).tolist():
                    error(
                        i,
                        col,
                        f"{plain(x[i])} outside the bounds [{plain(lo)}, {plain(hi)}] "
                        f"of {f.name!r}",
                    )
                x[(x < lo) | (x > hi)] = math.nan  # the row is in error; priced as imputed
            if f.integer:
                fraction = np.flatnonzero(~np.isnan(x) & (x != np.floor(x)))
                for i in fraction.tolist():
                    error(i, col, f"{plain(x[i])} is not a whole number ({f.name!r} is an integer)")
                x[fraction] = math.nan
            if f.lo is not None:
                for i in np.flatnonzero(x < f.lo).tolist():
                    warns[i].append(
                        f"{col}: {plain(x[i])} below the training minimum {plain(f.lo)}"
                    )
                    counts["outside the training range"] += 1
            if f.hi is not None:
                for i in np.flatnonzero(x > f.hi).tolist():
                    warns[i].append(
                        f"{col}: {plain(x[i])} above the training maximum {plain(f.hi)}"
                    )
                    counts["outside the training range"] += 1

    def _predict(self, table: Columns, chunk: RowChunk, errors: dict[int, list[str]]) -> FloatArray:
        """The pipeline's prices; if it refuses the chunk, row by row, naming the rows it
        refuses. A price that is not finite is an error for its row."""
        with np.errstate(all="ignore"):
            try:
                prices = np.asarray(self.pipeline.predict(table), dtype=np.float64)
            except (ValueError, ArithmeticError):
                prices = np.full(len(chunk), math.nan)
                for i in range(len(chunk)):
                    if i in errors:
                        continue
                    row = {k: v[i : i + 1] for k, v in table.items()}
                    try:
                        prices[i] = float(np.asarray(self.pipeline.predict(row))[0])
                    except (ValueError, ArithmeticError) as exc:
                        errors[i].append(f"{chunk.where(i)}: the model cannot price it: {exc}")
        for i in np.flatnonzero(~np.isfinite(prices)).tolist():
            if i not in errors:
                errors[i].append(f"{chunk.where(i)}: the model gives no finite price")
        return prices


# --- a whole file ---------------------------------------------------------------------------


@dataclass
class Summary:
    """What a run of :func:`predict_file` did."""

    rows: int = 0
    errors: int = 0
    first_error: str = ""
    rows_warned: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    absent: list[str] = field(default_factory=list)  # optional features under neither name
    kept: list[str] = field(default_factory=list)
    seconds: float = 0.0
    interval: IntervalRule | None = None  # the interval written (None: the artifact has none)


def answer_columns(
    scored: ScoredChunk, flat: bool, names: Sequence[str] = ()
) -> dict[str, list[Any]]:
    """``low``, ``high`` and the explanation, as output columns: in CSV (``flat``) the
    explanation is ``explanation_space``, ``explanation_method``, ``explanation_baseline`` and
    one ``contribution_<name>`` per name of ``names`` (the same in every chunk, so the rows
    match the header); in JSON one ``explanation`` object."""
    out: dict[str, list[Any]] = {}
    if scored.bounds is not None:
        out["low"], out["high"] = scored.bounds[0].tolist(), scored.bounds[1].tolist()
    recs = scored.explanations
    if recs is None:
        return out
    if not flat:
        out["explanation"] = recs
        return out
    for key in ("space", "method", "baseline"):
        out[f"explanation_{key}"] = [None if r is None else r[key] for r in recs]
    for name in names:
        out[f"contribution_{name}"] = [
            math.nan if r is None else r["contributions"][name] for r in recs
        ]
    return out


def default_keep(metadata: Mapping[str, Any], available: Sequence[str]) -> list[str]:
    """The artifact's identifier columns that the input has."""
    ids = metadata.get("data", {}).get("id_columns") or []
    present = set(available)
    return [c for c in ids if c in present and c not in OUTPUT_COLUMNS]


def check_keep(keep: Sequence[str], available: Sequence[str], where: str) -> None:
    for name in keep:
        if name in OUTPUT_COLUMNS:
            raise DataError(
                f"--keep {name}: the output has its own column {name!r}; rename the input "
                "column to keep it"
            )
        if name not in available:
            raise DataError(f"{where}: --keep {name}: no such column; {suggest(name, available)}")
    if len(set(keep)) != len(keep):
        raise DataError(f"--keep lists a column twice: {list(keep)}")


def score_chunks(
    scorer: Scorer,
    chunks: Iterable[RowChunk],
    columns: Mapping[str, str | None],
    fmt: Format,
    write: Callable[[str], None],
    summary: Summary,
    strict: bool,
    src: str,
    done: str,
    first: bool,
    tick: Callable[[], None] | None = None,
) -> None:
    """Score ``chunks``, ``write`` their output (``first``: with the CSV header or the JSON
    list's ``[``) and count them in ``summary`` (its ``kept`` columns beside the price);
    ``strict``: raise at the first row in error, ``done`` saying what became of the output."""
    for chunk in chunks:
        scored = scorer.score(chunk, columns)
        if scored.errors:
            i = min(scored.errors)
            if strict:
                raise DataError(f"{src}: {scored.errors[i]} (--strict: {done})")
            if not summary.errors:
                summary.first_error = scored.errors[i]
            summary.errors += len(scored.errors)
        summary.rows_warned += sum(
            1 for i, n in scored.notes.items() if i not in scored.errors and n
        )
        summary.counts.update(scored.counts)
        cells = {k: chunk.columns[k] for k in summary.kept}
        prices = scored.prices.tolist()
        extra = answer_columns(scored, fmt == "csv", scorer.explained)
        write(render(fmt, cells, prices, scorer.version, scored.notes, first, chunk.text, extra))
        first = False
        summary.rows += len(chunk)
        if tick is not None:
            tick()


def predict_file(
    pipeline: Any,
    metadata: Mapping[str, Any],
    source: str | Path,
    output: str | Path | None = None,
    *,
    keep: Sequence[str] | None = None,
    chunk_rows: int = CHUNK_ROWS,
    strict: bool = False,
    progress: ProgressBar | None = None,
    stdout: TextIO | None = None,
    interval_level: float | None = 0.9,
    explain: bool = False,
) -> Summary:
    """Price every row of ``source`` into ``output`` (``None``: CSV on ``stdout``).

    Raises :class:`DataError` for a file that cannot be scored at all (unreadable, malformed,
    a required column absent, a bad ``keep``), and with ``strict`` for the first row in
    error; a file ``output`` is then left as it was. Otherwise rows in error are written with
    an empty price and counted in the returned :class:`Summary`.
    """
    t0 = time.perf_counter()
    fmt = output_format(output) if output is not None else "csv"
    if chunk_rows < 1:
        raise DataError(f"--chunk-rows must be >= 1, got {chunk_rows}")
    src = Path(source)
    if output is not None and src.exists() and Path(output).resolve() == src.resolve():
        raise DataError(f"{output}: the output would replace the input file")
    scorer = Scorer(pipeline, metadata, interval_level, explain)
    rows = open_rows(src, scorer.na_values, chunk_rows)
    columns = resolve_columns(scorer.features, rows.columns, str(src))
    kept = list(keep) if keep is not None else default_keep(metadata, rows.columns)
    check_keep(kept, rows.columns, str(src))
    absent = [f.name for f in scorer.features if columns[f.name] is None]
    summary = Summary(absent=absent, kept=kept, interval=scorer.interval)
    total = rows.total
    if total is None and progress is not None and progress.draw:
        header = 1 if input_format(src) == "csv" else 0
        total = max(count_lines(src) - header, 1)  # newlines: an estimate of the rows
    out = stdout if stdout is not None else sys.stdout

    with ExitStack() as stack:
        raw = stack.enter_context(atomic_open(output)) if output is not None else None

        def write(text: str) -> None:
            if raw is not None:
                raw.write(text.encode("utf-8"))
            else:
                out.write(text)

        def tick() -> None:
            if progress is not None:
                elapsed = time.perf_counter() - t0
                rate = summary.rows / elapsed if elapsed > 0 else 0.0
                progress.update(summary.rows, total, f"{summary.rows:,} rows  {rate:,.0f} rows/s")

        done = f"{output} not written" if output is not None else "stopped here"
        score_chunks(
            scorer, rows.chunks, columns, fmt, write, summary, strict, f"{src}", done, True, tick
        )
        write(render_end(fmt))
    summary.seconds = time.perf_counter() - t0
    return summary
