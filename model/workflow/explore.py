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
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from model.base import FloatArray
from model.workflow.data import Dataset


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


def pearson(x: FloatArray, y: FloatArray) -> float:
    """Pearson's r over the rows where both are present; NaN when either is constant."""
    ok = ~(np.isnan(x) | np.isnan(y))
    if ok.sum() < 2:
        return math.nan
    dx = x[ok] - x[ok].mean()
    dy = y[ok] - y[ok].mean()
    den = math.sqrt(float(dx @ dx) * float(dy @ dy))
    return float(dx @ dy) / den if den > 0 else math.nan


def correlation_ratio(labels: NDArray[Any], y: FloatArray) -> float:
    """eta = sqrt(sum_g n_g (mean_g - mean)^2 / sum (y - mean)^2); missing is one group."""
    keys = np.array(["\0missing" if v is None else str(v) for v in labels], dtype=object)
    _, group = np.unique(keys, return_inverse=True)
    dy = y - y.mean()
    ss_total = float(dy @ dy)
    if ss_total == 0:
        return math.nan
    n_g = np.bincount(group)
    mean_g = np.bincount(group, weights=y) / n_g
    ss_between = float(n_g @ (mean_g - y.mean()) ** 2)
    return math.sqrt(ss_between / ss_total)


def iqr_outliers(x: FloatArray) -> NDArray[np.bool_]:
    """Tukey's rule on the present values: outside [Q1 - 1.5 IQR, Q3 + 1.5 IQR]."""
    present = x[~np.isnan(x)]
    if present.size == 0:
        return np.zeros(x.shape, dtype=bool)
    q1, q3 = np.quantile(present, [0.25, 0.75])
    lo, hi = q1 - 1.5 * (q3 - q1), q3 + 1.5 * (q3 - q1)
    with np.errstate(invalid="ignore"):
        return (x < lo) | (x > hi)


def numeric_summary(name: str, x: FloatArray, y: FloatArray | None) -> NumericSummary:
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
        eta=correlation_ratio(x, y) if y is not None else math.nan,
    )


def explore(dataset: Dataset) -> Report:
    """Summaries of every column of ``dataset`` (and of its target when it has one)."""
    y = dataset.target
    numeric: list[NumericSummary] = []
    categorical: list[CategoricalSummary] = []
    for name, col in dataset.columns.items():
        if dataset.kinds[name] == "numeric":
            numeric.append(numeric_summary(name, col, y))
        else:
            categorical.append(categorical_summary(name, col, y))
    target = None
    flagged: list[tuple[int, float]] = []
    if y is not None:
        target = numeric_summary(dataset.target_name or "target", y, None)
        rows = np.flatnonzero(iqr_outliers(y))
        rows = rows[np.argsort(-np.abs(y[rows] - np.median(y)), kind="stable")]
        lines = dataset.lines if dataset.lines.size == y.size else np.arange(2, y.size + 2)
        flagged = [(int(lines[i]), float(y[i])) for i in rows]
    return Report(
        dataset.path, dataset.sha256, dataset.n_rows, target, numeric, categorical, flagged
    )


def _fmt(v: float, digits: int = 4) -> str:
    if math.isnan(v):
        return "—"
    if v == int(v) and abs(v) < 1e15:
        return f"{int(v):,}"
    return f"{v:,.1f}" if abs(v) >= 100 else f"{v:.{digits}g}"


def _strength(s: NumericSummary) -> float:
    return abs(s.corr) if not math.isnan(s.corr) else -1.0


def render_markdown(report: Report, plots: list[str] | None = None, note: str = "") -> str:
    """The report as Markdown: target, numeric and categorical tables, strongest features."""
    lines = [
        "# Exploratory data analysis",
        "",
        f"Data: `{report.path}` ({report.n_rows:,} rows, sha256 `{report.sha256[:12]}…`).",
        "",
        "Quartiles by linear interpolation; std is the sample std (n − 1); outliers by the",
        "IQR rule (outside Q1 − 1.5·IQR, Q3 + 1.5·IQR); r is Pearson's correlation with the",
        "target over the rows where the column is present; η is the correlation ratio of the",
        "target grouped by category.",
        "",
    ]
    head = "| column | count | missing | mean | std | min | 25% | 50% | 75% | max | outliers |"
    rule = "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"

    def row(s: NumericSummary) -> str:
        values = (s.mean, s.std, s.min, s.q1, s.median, s.q3, s.max)
        cells = " | ".join(_fmt(v) for v in values)
        return f"| {s.name} | {s.count:,} | {s.missing:,} | {cells} | {s.outliers:,} |"

    if report.target is not None:
        lines += [f"## Target: `{report.target.name}`", "", head, rule, row(report.target), ""]
        ranked = sorted(report.numeric, key=_strength, reverse=True)[:10]
        lines += ["## Strongest numeric features (|r| with the target)", ""]
        lines += ["| column | r | missing |", "|---|--:|--:|"]
        lines += [f"| {s.name} | {_fmt(s.corr, 3)} | {s.missing:,} |" for s in ranked]
        lines.append("")
    lines += [f"## Numeric columns ({len(report.numeric)})", ""]
    lines += [head.replace(" outliers |", " outliers | r |"), rule + "--:|"]
    lines += [f"{row(s)} {_fmt(s.corr, 3)} |" for s in report.numeric]
    lines += ["", f"## Categorical columns ({len(report.categorical)})", ""]
    lines += ["| column | count | missing | categories | η | top categories (count) |"]
    lines += ["|---|--:|--:|--:|--:|---|"]
    for c in report.categorical:
        top = ", ".join(f"{k} ({n:,})" for k, n in c.top)
        lines.append(
            f"| {c.name} | {c.count:,} | {c.missing:,} | {c.n_categories} | "
            f"{_fmt(c.eta, 3)} | {top} |"
        )
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
            lines[-1] += ", ".join(f"{s.name} ({s.outliers:,})" for s in most) + "."
        lines.append("")
    missing = [(s.name, s.missing) for s in report.numeric if s.missing]
    missing += [(c.name, c.missing) for c in report.categorical if c.missing]
    lines += ["## Missing values", ""]
    if missing:
        lines += ["| column | missing | share |", "|---|--:|--:|"]
        for name, k in sorted(missing, key=lambda t: -t[1]):
            lines.append(f"| {name} | {k:,} | {k / report.n_rows:.1%} |")
    else:
        lines.append("No missing values.")
    lines += ["", "## Plots", ""]
    if plots:
        lines += [f"![{Path(p).stem}]({p})" for p in plots]
    if note:
        lines.append(note)
    lines.append("")
    return "\n".join(lines)


def write_report(dataset: Dataset, out_dir: str | Path, with_plots: bool = True) -> list[Path]:
    """Write ``README.md`` (and PNG plots when matplotlib is installed) into ``out_dir``.

    Returns the written paths; the Markdown says when plots were skipped and why.
    """
    from model.workflow import plots
    from model.workflow.atomic import atomic_write_text

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    report = explore(dataset)
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
