"""Exploratory statistics of a data set, in NumPy, written as a Markdown report.

What a modeller looks at before choosing features: how complete each column is, its spread,
how strongly it moves with the target, and which values sit far from the rest.

* Quartiles are the linear-interpolation quantiles (NumPy's default, as pandas' ``describe``).
* The standard deviation is the sample one, ``sqrt(sum((x - mean)^2) / (n - 1))``, as pandas
  reports it, so the table can be checked against ``df.describe()``.
* Outliers follow Tukey's IQR rule: ``x < Q1 - 1.5 IQR`` or ``x > Q3 + 1.5 IQR``. It needs no
  normality assumption, which suits skewed sizes and prices.
* Association with the target: Pearson's ``r = cov(x, y) / (sd(x) sd(y))`` over the rows where
  ``x`` is present for numeric columns; for categorical ones the correlation ratio
  ``eta = sqrt(SS_between / SS_total)`` of the target grouped by category (missing is its own
  group), which is in [0, 1] and equals ``|r|`` for a two-valued column.
* The strongest categorical column is the one with the largest epsilon² of the (log) target,
  eta² adjusted for the number of categories (:func:`category_signal`), which model cards
  share for their per-category errors.
* Identifier and constant columns are left out (:mod:`model.workflow.infer`), and values that
  look impossible are flagged by the rules of :data:`RULES`, which the report states.
* A row without a target is kept and counted (training refuses it).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from model.base import FloatArray
from model.workflow.data import CsvFormat, DataError, Dataset, first_non_number, load_csv, suggest
from model.workflow.infer import (
    YEAR_RANGE,
    YEAR_WORDS,
    identifier_reason,
    is_constant,
    is_year,
    name_tokens,
)


@dataclass(frozen=True)
class NumericSummary:
    """Statistics of one numeric column (NaN where undefined, e.g. all missing)."""

    name: str
    count: int
    missing: int
    mean: float
    std: float
    min: float
    q1: float
    median: float
    q3: float
    max: float
    corr: float
    outliers: int
    #: a year column (:func:`model.workflow.infer.is_year`): printed without separators
    year: bool = False


@dataclass(frozen=True)
class CategoricalSummary:
    """Statistics of one categorical column: the most frequent categories and eta."""

    name: str
    count: int
    missing: int
    n_categories: int
    top: list[tuple[str, int]]
    eta: float


@dataclass(frozen=True)
class Report:
    """All column summaries plus the target's, for a data set."""

    path: str
    sha256: str
    n_rows: int
    target: NumericSummary | None
    numeric: list[NumericSummary]
    categorical: list[CategoricalSummary]
    #: (line in the file, value) of the target's IQR outliers, farthest from the median first
    target_outliers: list[tuple[int, float]] = field(default_factory=list)
    #: columns not summarised, with why (identifiers, constants)
    left_out: dict[str, str] = field(default_factory=dict)
    #: values that look impossible (:func:`impossible_values`)
    flags: list[Flag] = field(default_factory=list)
    #: the categorical column with the most signal on the (log) target, and its epsilon²
    strongest_categorical: tuple[str, float] | None = None


def pearson(x: FloatArray, y: FloatArray) -> float:
    """Pearson's r over the rows where both are present; NaN when either is constant."""
    ok = ~(np.isnan(x) | np.isnan(y))
    if ok.sum() < 2:
        return math.nan
    dx = x[ok] - x[ok].mean()
    dy = y[ok] - y[ok].mean()
    den = math.sqrt(float(dx @ dx) * float(dy @ dy))
    return float(dx @ dy) / den if den > 0 else math.nan


def _one_way(labels: NDArray[Any], y: FloatArray) -> tuple[float, float, int]:
    """``(SS_between, SS_total, groups)`` of ``y`` grouped by label; missing is one group."""
    keys = np.array(["\0missing" if v is None else str(v) for v in labels], dtype=object)
    _, group = np.unique(keys, return_inverse=True)
    dy = y - y.mean()
    n_g = np.bincount(group)
    mean_g = np.bincount(group, weights=y) / n_g
    return float(n_g @ (mean_g - y.mean()) ** 2), float(dy @ dy), int(n_g.size)


def correlation_ratio(labels: NDArray[Any], y: FloatArray) -> float:
    """eta = sqrt(sum_g n_g (mean_g - mean)^2 / sum (y - mean)^2); missing is one group."""
    if y.size == 0:
        return math.nan
    ss_between, ss_total, _ = _one_way(labels, y)
    return math.sqrt(ss_between / ss_total) if ss_total > 0 else math.nan


def category_signal(labels: NDArray[Any], y: FloatArray) -> float:
    """epsilon^2 = 1 - (SS_within / (n - k)) / (SS_total / (n - 1)): the share of the variance
    of ``y`` that the ``k`` groups explain, adjusted for their number (the adjusted R^2 of a
    one-way ANOVA). Unlike eta^2, a column with nearly one category per row scores near 0, not
    near 1. NaN when ``y`` is constant or every row is its own group."""
    if y.size == 0:
        return math.nan
    ss_between, ss_total, k = _one_way(labels, y)
    return epsilon_squared(ss_between, ss_total, y.size, k)


def epsilon_squared(ss_between: float, ss_total: float, n: int, k: int) -> float:
    """:func:`category_signal` from the one-way sums of squares of ``n`` rows in ``k`` groups
    (what an engine that never holds the rows accumulates)."""
    if ss_total == 0 or n <= k:
        return math.nan
    return 1.0 - ((ss_total - ss_between) / (n - k)) / (ss_total / (n - 1))


def iqr_outliers(x: FloatArray) -> NDArray[np.bool_]:
    """Tukey's rule on the present values: outside [Q1 - 1.5 IQR, Q3 + 1.5 IQR]."""
    present = x[~np.isnan(x)]
    if present.size == 0:
        return np.zeros(x.shape, dtype=bool)
    q1, q3 = np.quantile(present, [0.25, 0.75])
    lo, hi = q1 - 1.5 * (q3 - q1), q3 + 1.5 * (q3 - q1)
    with np.errstate(invalid="ignore"):
        return (x < lo) | (x > hi)


def numeric_summary(
    name: str, x: FloatArray, y: FloatArray | None, year: bool = False
) -> NumericSummary:
    """Count, missing, mean, sample std, min, quartiles, max, r with the target, outliers."""
    present = x[~np.isnan(x)]
    n = int(present.size)
    nan = math.nan
    if n:
        q = np.quantile(present, [0.0, 0.25, 0.5, 0.75, 1.0])
        mean = float(present.mean())
        std = float(present.std(ddof=1)) if n > 1 else nan
    else:
        q = np.full(5, nan)
        mean = std = nan
    return NumericSummary(
        name=name,
        count=n,
        missing=int(x.size - n),
        mean=mean,
        std=std,
        min=float(q[0]),
        q1=float(q[1]),
        median=float(q[2]),
        q3=float(q[3]),
        max=float(q[4]),
        corr=pearson(x, y) if y is not None else nan,
        outliers=int(iqr_outliers(x).sum()),
        year=year,
    )


def categorical_summary(
    name: str, x: NDArray[Any], y: FloatArray | None, top: int = 5
) -> CategoricalSummary:
    """Count, missing, number of categories, the ``top`` most frequent, eta with the target."""
    counts = Counter(str(v) for v in x if v is not None)
    order = sorted(counts.items(), key=lambda t: (-t[1], t[0]))
    present = sum(counts.values())
    return CategoricalSummary(
        name=name,
        count=present,
        missing=int(x.size - present),
        n_categories=len(order),
        top=order[:top],
        eta=math.nan if y is None else correlation_ratio(x[~np.isnan(y)], y[~np.isnan(y)]),
    )


def load_for_explore(
    path: str | Path, target: str, fmt: CsvFormat | None = None, ids: Sequence[str] = ()
) -> Dataset:
    """Read ``path`` for :func:`explore`: every column, with ``target`` apart as numbers.

    Unlike training, a row without a target is kept (as NaN) and counted in the report: the
    exploration is where one should find out. A target that holds text is an error naming the
    line and the value. ``ids`` are columns the config lists as identifiers (checked to exist).
    """
    fmt = fmt or CsvFormat()
    ds = load_csv(path, fmt=fmt)
    if target not in ds.columns:
        hint = ""
        if len(ds.columns) == 1 and fmt.delimiter is None:
            hint = " (the file has one column: is its delimiter one of , ; tab |?)"
        raise DataError(
            f"{ds.path}: no target column {target!r}; {suggest(target, list(ds.columns))}{hint}"
        )
    for name in ids:
        if name not in ds.columns:
            raise DataError(
                f"{ds.path}: no identifier column {name!r}; {suggest(name, list(ds.columns))}"
            )
    y = ds.columns[target]
    if ds.kinds[target] != "numeric":
        i = first_non_number(y)
        shown = f"{y[i]!r}" if i is not None else "text"
        line = f"line {ds.lines[i]}, " if i is not None else ""
        raise DataError(
            f"{ds.path}: {line}column {target!r}: the target must be a number, got {shown}"
        )
    columns = {k: v for k, v in ds.columns.items() if k != target}
    kinds = {k: v for k, v in ds.kinds.items() if k != target}
    return replace(ds, columns=columns, kinds=kinds, target=y, target_name=target)


def left_out_columns(dataset: Dataset, ids: Sequence[str] = ()) -> dict[str, str]:
    """Columns not worth summarising, with why: identifiers (listed in the config, or by
    :func:`model.workflow.infer.identifier_reason`) and constant columns."""
    out: dict[str, str] = {}
    for name, col in dataset.columns.items():
        reason = "listed in data.id_columns" if name in ids else identifier_reason(name, col)
        if reason is not None:
            out[name] = f"identifier: {reason}"
        elif is_constant(col):
            out[name] = "constant: one value (or none) in every row"
    return out


# --- values that look impossible --------------------------------------------------------------

#: Words (see :func:`model.workflow.infer.name_tokens`) naming an area or a size.
AREA_WORDS = frozenset(
    {"area", "sf", "sqft", "sqm", "footage", "size", "frontage", "acre", "acres"}
)
#: Words naming a count of things.
COUNT_WORDS = frozenset(
    {"room", "rooms", "rms", "bed", "beds", "bedroom", "bedrooms", "bath", "baths", "bathroom"}
    | {"bathrooms", "cars", "fireplaces", "floors", "stories", "count", "number", "num"}
)
#: Words naming when something was built, and events that cannot come before it.
BUILT_WORDS = frozenset({"built", "blt", "construction", "constructed"})
LATER_WORDS = frozenset(
    {"sold", "sale", "sell", "remod", "remodel", "remodeled", "renovated", "renovation"}
)


@dataclass(frozen=True)
class Flag:
    """Rows of one column (or pair of columns) breaking one rule, with a few examples."""

    column: str
    rule: str
    rows: int
    examples: list[tuple[int, str]]


def _flag(column: str, rule: str, bad: NDArray[np.bool_], lines: NDArray[Any], shown: Any) -> Flag:
    idx = np.flatnonzero(bad)
    return Flag(column, rule, int(idx.size), [(int(lines[i]), shown(i)) for i in idx[:5]])


def impossible_values(dataset: Dataset, today: date) -> list[Flag]:
    """Values that cannot be right, by the rules stated in :data:`RULES`."""
    lines = (
        dataset.lines if dataset.lines.size == dataset.n_rows else np.arange(2, dataset.n_rows + 2)
    )
    flags: list[Flag] = []
    years: dict[str, set[str]] = {}
    for name, col in dataset.columns.items():
        if dataset.kinds[name] != "numeric":
            continue
        words = set(name_tokens(name))
        with np.errstate(invalid="ignore"):
            if is_year(name, col):
                years[name] = words
                bad = col > today.year
                if bad.any():
                    flags.append(
                        _flag(
                            name,
                            f"a year after {today.year}",
                            bad,
                            lines,
                            lambda i, c=col: f"{c[i]:.0f}",
                        )
                    )
            elif words & (AREA_WORDS | COUNT_WORDS):
                bad = col < 0
                if bad.any():
                    kind = "area" if words & AREA_WORDS else "count"
                    flags.append(
                        _flag(name, f"a negative {kind}", bad, lines, lambda i, c=col: f"{c[i]:g}")
                    )
    for later, lw in years.items():
        for built, bw in years.items():
            # Pair an event with the build year of the same thing: "Yr.Sold" with "YearBuilt",
            # not with "GarageYrBlt" (a garage may be added after a remodel).
            if later == built or not (lw & LATER_WORDS and bw & BUILT_WORDS) or lw & BUILT_WORDS:
                continue
            if not (bw - BUILT_WORDS - YEAR_WORDS) <= (lw - LATER_WORDS - YEAR_WORDS):
                continue
            a, b = dataset.columns[later], dataset.columns[built]
            with np.errstate(invalid="ignore"):
                bad = a < b
            if bad.any():
                flags.append(
                    _flag(
                        f"{later} < {built}",
                        f"{later} before {built}",
                        bad,
                        lines,
                        lambda i, a=a, b=b: f"{a[i]:.0f} < {b[i]:.0f}",
                    )
                )
    y = dataset.target
    if y is not None:
        with np.errstate(invalid="ignore"):
            bad = y <= 0
        if bad.any():
            name = dataset.target_name or "target"
            flags.append(_flag(name, "a target of zero or less", bad, lines, lambda i: f"{y[i]:g}"))
    return flags


#: The rules of :func:`impossible_values`, as the report states them.
RULES = (
    "A column is a *year* when its values are whole numbers and either its name holds the "
    "word year or yr (YearBuilt, Yr.Sold, yr_renovated) and their median lies between "
    f"{YEAR_RANGE[0]:.0f} and {YEAR_RANGE[1]:.0f}, or all of them do; a year after the current "
    "one is flagged.",
    "A numeric column is an *area* or a *count* when its name holds one of the words "
    + ", ".join(sorted(AREA_WORDS | COUNT_WORDS))
    + "; a negative value is flagged.",
    "A year column naming an event (" + ", ".join(sorted(LATER_WORDS)) + ") earlier than the "
    "build year (" + ", ".join(sorted(BUILT_WORDS)) + ") of the same thing, in the same row, "
    "is flagged (sale before build, remodel before build).",
    "A target of zero or less is flagged (a price is positive; a log target needs it).",
)


def explore(dataset: Dataset, ids: Sequence[str] = (), today: date | None = None) -> Report:
    """Summaries of the columns of ``dataset`` (and of its target when it has one), the
    columns left out and why, and the values that look impossible (as of ``today``)."""
    y = dataset.target
    left_out = left_out_columns(dataset, ids)
    numeric: list[NumericSummary] = []
    categorical: list[CategoricalSummary] = []
    for name, col in dataset.columns.items():
        if name in left_out:
            continue
        if dataset.kinds[name] == "numeric":
            numeric.append(numeric_summary(name, col, y, year=is_year(name, col)))
        else:
            categorical.append(categorical_summary(name, col, y))
    target = None
    flagged: list[tuple[int, float]] = []
    strongest: tuple[str, float] | None = None
    if y is not None:
        target = numeric_summary(dataset.target_name or "target", y, None)
        rows = np.flatnonzero(iqr_outliers(y))
        if rows.size:  # then some target is present
            rows = rows[np.argsort(-np.abs(y[rows] - np.nanmedian(y)), kind="stable")]
        lines = dataset.lines if dataset.lines.size == y.size else np.arange(2, y.size + 2)
        flagged = [(int(lines[i]), float(y[i])) for i in rows]
        strongest = strongest_categorical(dataset, [c.name for c in categorical])
    return Report(
        dataset.path,
        dataset.sha256,
        dataset.n_rows,
        target,
        numeric,
        categorical,
        flagged,
        left_out=left_out,
        flags=impossible_values(dataset, today or datetime.now(UTC).date()),
        strongest_categorical=strongest,
    )


def target_scale(y: FloatArray) -> FloatArray:
    """The present target values, on the log scale when they are all positive (a price's
    differences are relative: the scale a log target is fitted on)."""
    present = y[~np.isnan(y)]
    return np.log(present) if present.size and (present > 0).all() else present


def strongest_categorical(dataset: Dataset, names: Sequence[str]) -> tuple[str, float] | None:
    """The column of ``names`` with the largest :func:`category_signal` of the (log) target
    and that signal, among those of 2 to 50 categories; ``None`` when there is none."""
    y = dataset.target
    if y is None:
        return None
    present = ~np.isnan(y)
    scaled = target_scale(y)
    best: tuple[str, float] | None = None
    for name in names:
        col = dataset.columns[name][present]
        k = len({v for v in col.tolist() if v is not None})
        if not 2 <= k <= 50:
            continue
        signal = category_signal(col, scaled)
        if not math.isnan(signal) and (best is None or signal > best[1]):
            best = (name, signal)
    return best


def _fmt(v: float, digits: int = 4, year: bool = False) -> str:
    if math.isnan(v):
        return "—"
    if math.isinf(v):  # a sum of huge values overflows
        return "∞" if v > 0 else "−∞"
    if year:
        return f"{v:.0f}" if v == int(v) else f"{v:.1f}"
    if v == int(v) and abs(v) < 1e15:
        return f"{int(v):,}"
    return f"{v:,.1f}" if abs(v) >= 100 else f"{v:.{digits}g}"


def printable(text: str) -> str:
    """``text`` on one line: runs of white space as one space, other invisible characters
    (controls) as ``\\xNN`` escapes, so a name made of them still shows."""
    one_line = " ".join(str(text).split())
    return "".join(c if c.isprintable() or c.isspace() else repr(c)[1:-1] for c in one_line)


def _cell(text: str) -> str:
    """Text safe in a Markdown table cell (a column name may hold ``|`` or a line break)."""
    return printable(text).replace("|", "\\|")


def _strength(s: NumericSummary) -> float:
    return abs(s.corr) if not math.isnan(s.corr) else -1.0


def render_markdown(report: Report, plots: list[str] | None = None, note: str = "") -> str:
    """The report as Markdown: target, numeric and categorical tables, strongest features,
    columns left out, values that look impossible."""
    lines = [
        "# Exploratory data analysis",
        "",
        f"Data: `{report.path}` ({report.n_rows:,} rows, sha256 `{report.sha256[:12]}…`).",
        "",
        "Quartiles by linear interpolation; std is the sample std (n − 1); outliers by the",
        "IQR rule (outside Q1 − 1.5·IQR, Q3 + 1.5·IQR); r is Pearson's correlation with the",
        "target over the rows where the column is present; η is the correlation ratio of the",
        "target grouped by category. Years are printed without thousands separators.",
        "",
    ]
    if report.left_out:
        lines += ["## Columns left out", ""]
        lines += ["| column | why |", "|---|---|"]
        lines += [f"| {_cell(k)} | {_cell(v)} |" for k, v in report.left_out.items()]
        lines.append("")
    head = "| column | count | missing | mean | std | min | 25% | 50% | 75% | max | outliers |"
    rule = "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"

    def row(s: NumericSummary) -> str:
        values = (s.mean, s.min, s.q1, s.median, s.q3, s.max)
        shown = [_fmt(v, year=s.year) for v in values]
        cells = " | ".join([shown[0], _fmt(s.std), *shown[1:]])
        return f"| {_cell(s.name)} | {s.count:,} | {s.missing:,} | {cells} | {s.outliers:,} |"

    if report.target is not None:
        t = report.target
        lines += [f"## Target: `{t.name}`", "", head, rule, row(t), ""]
        if t.missing:
            lines += [
                f"Rows without a target value: {t.missing:,}. Training refuses them: drop them "
                "from the file before training.",
                "",
            ]
        ranked = sorted(report.numeric, key=_strength, reverse=True)[:10]
        lines += ["## Strongest numeric features (|r| with the target)", ""]
        lines += ["| column | r | missing |", "|---|--:|--:|"]
        lines += [f"| {_cell(s.name)} | {_fmt(s.corr, 3)} | {s.missing:,} |" for s in ranked]
        lines.append("")
        if report.strongest_categorical is not None:
            name, signal = report.strongest_categorical
            lines += [
                f"Strongest categorical column: `{name}` (ε² = {signal:.3f}: the share of the "
                "variance of the target — its log when every value is positive — that its "
                "categories explain, adjusted for their number; columns of 2 to 50 categories).",
                "",
            ]
    lines += [f"## Numeric columns ({len(report.numeric)})", ""]
    lines += [head.replace(" outliers |", " outliers | r |"), rule + "--:|"]
    lines += [f"{row(s)} {_fmt(s.corr, 3)} |" for s in report.numeric]
    lines += ["", f"## Categorical columns ({len(report.categorical)})", ""]
    lines += ["| column | count | missing | categories | η | top categories (count) |"]
    lines += ["|---|--:|--:|--:|--:|---|"]
    for c in report.categorical:
        top = ", ".join(f"{_cell(k)} ({n:,})" for k, n in c.top)
        lines.append(
            f"| {_cell(c.name)} | {c.count:,} | {c.missing:,} | {c.n_categories} | "
            f"{_fmt(c.eta, 3)} | {top} |"
        )
    lines.append("")
    lines += ["## Values that look impossible", ""]
    lines += [f"- {r}" for r in RULES]
    lines.append("")
    if report.flags:
        lines += ["| column | rule | rows | first rows (file line: value) |", "|---|---|--:|---|"]
        for f in report.flags:
            shown = ", ".join(f"{line}: {v}" for line, v in f.examples)
            lines.append(f"| {_cell(f.column)} | {_cell(f.rule)} | {f.rows:,} | {_cell(shown)} |")
    else:
        lines.append("None found.")
    lines.append("")
    if report.target is not None:
        lines += ["## Outliers (IQR rule)", ""]
        flagged = report.target_outliers
        lines.append(
            f"Target: {len(flagged):,} rows outside [Q1 − 1.5·IQR, Q3 + 1.5·IQR]"
            + ("; the farthest from the median (file line: value):" if flagged else ".")
        )
        if flagged:
            lines += ["", ", ".join(f"{line}: {_fmt(v)}" for line, v in flagged[:10])]
        most = sorted((s for s in report.numeric if s.outliers), key=lambda s: -s.outliers)[:10]
        if most:
            lines += ["", "Numeric columns with the most outliers: "]
            lines[-1] += ", ".join(f"{_cell(s.name)} ({s.outliers:,})" for s in most) + "."
        lines.append("")
    missing = [(s.name, s.missing) for s in report.numeric if s.missing]
    missing += [(c.name, c.missing) for c in report.categorical if c.missing]
    lines += ["## Missing values", ""]
    if missing:
        lines += ["| column | missing | share |", "|---|--:|--:|"]
        for name, k in sorted(missing, key=lambda t: -t[1]):
            lines.append(f"| {_cell(name)} | {k:,} | {k / report.n_rows:.1%} |")
    else:
        lines.append("No missing values.")
    lines += ["", "## Plots", ""]
    if plots:
        lines += [f"![{Path(p).stem}]({p})" for p in plots]
    if note:
        lines.append(note)
    lines.append("")
    return "\n".join(lines)


def write_report(
    dataset: Dataset,
    out_dir: str | Path,
    with_plots: bool = True,
    ids: Sequence[str] = (),
) -> list[Path]:
    """Write ``README.md`` (and PNG plots when matplotlib is installed) into ``out_dir``;
    ``ids`` are identifier columns to leave out besides those recognised.

    Returns the written paths; the Markdown says when plots were skipped and why.
    """
    from model.workflow import plots
    from model.workflow.atomic import atomic_write_text

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with np.errstate(over="ignore", invalid="ignore"):  # sums of huge values: shown as ∞
        report = explore(dataset, ids)
    written: list[Path] = []
    note = ""
    if not with_plots:
        note = "Plots were not requested (--no-plots)."
    elif not plots.available():
        note = "Plots skipped: matplotlib is not installed (pip install 'houseprice[plots]')."
    else:
        written = plots.eda_plots(dataset, report, out)
    names = [p.name for p in written]
    md = out / "README.md"
    atomic_write_text(md, render_markdown(report, names, note))
    return [md, *written]
