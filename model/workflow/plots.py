"""PNG plots for the exploration report and the training run (matplotlib, optional).

matplotlib is the ``plots`` extra, imported only inside these functions with the ``Agg``
backend (no display, no Tk), so the model and the service never pay for it or need it.
Every figure is written to a temporary file in the target directory and renamed into
place, so an interrupted run never leaves half a PNG behind a valid name.
"""

from __future__ import annotations

import importlib.util
import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from model.base import FloatArray
from model.workflow.atomic import atomic_write_bytes

if TYPE_CHECKING:
    from model.workflow.data import Dataset
    from model.workflow.explore import Report


def available() -> bool:
    """Whether matplotlib can be imported (the ``plots`` extra is installed)."""
    return importlib.util.find_spec("matplotlib") is not None


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig: Any) -> bytes:
    """The figure as PNG bytes; the figure is closed."""
    plt = _pyplot()
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format="png", dpi=80)
    finally:
        plt.close(fig)
    return buffer.getvalue()


def _save(fig: Any, path: Path) -> Path:
    return atomic_write_bytes(path, _png(fig))


def _grid(n: int, cols: int = 5) -> tuple[int, int]:
    return max(1, math.ceil(n / cols)), min(n, cols) or 1


def tick(v: float, year: bool = False) -> str:
    """A tick label people read: thousands separators from 1,000 (none for a year), never
    scientific notation (matplotlib's default for large or small values)."""
    if not math.isfinite(v):
        return ""
    if year:
        return f"{v:.0f}"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return np.format_float_positional(float(f"{v:.6g}"), trim="-")


def label(text: str, width: int = 40) -> str:
    """A column name as a plot label: one line, at most ``width`` characters, and ``$``
    escaped (matplotlib reads ``$...$`` as mathematics and fails on a bad formula)."""
    from model.workflow.explore import printable

    one = printable(text)
    one = one if len(one) <= width else one[: width - 1] + "…"
    return one.replace("$", r"\$")


def _readable(axis: Any, year: bool = False) -> None:
    from matplotlib.ticker import FuncFormatter, NullFormatter

    axis.set_major_formatter(FuncFormatter(lambda v, _pos: tick(v, year)))
    axis.set_minor_formatter(NullFormatter())


def _log_ticks(axis: Any) -> None:
    """Ticks at 1, 2 and 5 times the powers of ten, labelled in plain numbers."""
    from matplotlib.ticker import LogLocator

    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    _readable(axis)


def eda_plots(dataset: Dataset, report: Report, out: Path) -> list[Path]:
    """The exploration's figures: the target (raw and log scale), histograms of the numeric
    columns, the strongest numeric columns against the target, the target by the strongest
    categorical column, a correlation heatmap, and the missing values. Identifier and constant
    columns (``report.left_out``) are not drawn."""
    import warnings

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        # Missing glyphs (a name in a script the font lacks) and a layout that cannot fit
        # extreme values still give a readable figure: matplotlib's warnings say nothing more.
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        return _eda_plots(dataset, report, out)


def _eda_plots(dataset: Dataset, report: Report, out: Path) -> list[Path]:
    plt = _pyplot()
    written: list[Path] = []
    y = dataset.target
    tname = label(dataset.target_name or "target")
    years = {s.name for s in report.numeric if s.year}
    if y is not None:
        written.append(_target_plot(plt, y[~np.isnan(y)], tname, out))
    if report.numeric:
        written.append(_histograms(plt, dataset, report, years, out))
    ranked = sorted(
        (s for s in report.numeric if not math.isnan(s.corr)), key=lambda s: -abs(s.corr)
    )
    if y is not None and ranked:
        fig, axes = plt.subplots(2, 3, figsize=(12, 7.5), squeeze=False)
        for ax, s in zip(axes.flat, ranked[:6], strict=False):
            ax.scatter(dataset.columns[s.name], y, s=4, alpha=0.4)
            ax.set_xlabel(label(s.name))
            ax.set_ylabel(tname)
            ax.set_title(f"r = {s.corr:.3f}", fontsize=10)
            _readable(ax.xaxis, s.name in years)
            _readable(ax.yaxis)
        for ax in list(axes.flat)[len(ranked[:6]) :]:
            ax.axis("off")
        fig.suptitle(f"The numeric columns most correlated with {tname}")
        fig.tight_layout()
        written.append(_save(fig, out / "strongest_scatter.png"))
    if y is not None and report.strongest_categorical is not None:
        written.append(_category_box(plt, dataset, report.strongest_categorical, tname, out))
    if y is not None and len(ranked) >= 2:
        written.append(_heatmap(plt, dataset, [s.name for s in ranked[:12]], tname, out))
    missing = [(s.name, s.missing) for s in report.numeric if s.missing]
    missing += [(c.name, c.missing) for c in report.categorical if c.missing]
    missing.sort(key=lambda t: t[1])
    missing = missing[-40:]
    fig, ax = plt.subplots(figsize=(7, max(2.0, 0.25 * len(missing) + 1.2)))
    if missing:
        ax.barh([label(m[0]) for m in missing], [m[1] for m in missing], color="tab:red")
        ax.tick_params(axis="y", labelsize=7)
        _readable(ax.xaxis)
    else:
        ax.text(0.5, 0.5, "no missing values", ha="center", va="center")
        ax.set_yticks([])
    ax.set_xlabel(f"rows with the value missing (of {dataset.n_rows:,})")
    ax.set_title(
        "Missing values" + (" (the 40 columns with the most)" if len(missing) == 40 else "")
    )
    fig.tight_layout()
    written.append(_save(fig, out / "missing.png"))
    return written


def _target_plot(plt: Any, y: FloatArray, name: str, out: Path) -> Path:
    """The target's histogram on its own scale and, when every value is positive, on a log
    scale (a right-skewed price looks symmetric there, which is why a log target is fitted)."""
    from matplotlib.ticker import MaxNLocator

    fig, (raw, logged) = plt.subplots(1, 2, figsize=(11, 4))
    raw.hist(y, bins=50, color="tab:green")
    raw.xaxis.set_major_locator(MaxNLocator(5))
    raw.set_xlabel(name)
    raw.set_ylabel("rows")
    raw.set_title(f"{name} (n = {y.size:,})")
    _readable(raw.xaxis)
    _readable(raw.yaxis)
    if y.size and (y > 0).all() and y.min() < y.max():
        logged.hist(y, bins=np.geomspace(y.min(), y.max(), 51), color="tab:green")
        logged.set_xscale("log")
        _log_ticks(logged.xaxis)
        logged.set_xlabel(f"{name} (log scale)")
        logged.set_title(f"{name} on a log scale")
    else:
        logged.text(0.5, 0.5, "no log scale: not every value is positive", ha="center")
        logged.set_xticks([])
    logged.set_ylabel("rows")
    _readable(logged.yaxis)
    fig.tight_layout()
    return _save(fig, out / "target_hist.png")


def _histograms(plt: Any, dataset: Dataset, report: Report, years: set[str], out: Path) -> Path:
    from matplotlib.ticker import MaxNLocator

    names = [s.name for s in report.numeric]
    rows, cols = _grid(len(names), cols=4)
    fig, axes = plt.subplots(
        rows, cols, figsize=(3.4 * cols, 2.5 * rows + 0.6), squeeze=False, layout="constrained"
    )
    for ax, name in zip(axes.flat, names, strict=False):
        col = dataset.columns[name]
        present = col[~np.isnan(col)]
        ax.hist(present, bins=30)
        whole = bool(np.all(present == np.floor(present)))
        ax.xaxis.set_major_locator(MaxNLocator(4, integer=whole))
        ax.yaxis.set_major_locator(MaxNLocator(3, integer=True))
        _readable(ax.xaxis, name in years)
        _readable(ax.yaxis)
        ax.tick_params(labelsize=7)
        ax.set_title(label(name, 32), fontsize=9)
    for ax in list(axes.flat)[len(names) :]:
        ax.axis("off")
    fig.suptitle("Numeric columns: value (x) against number of rows (y)")
    return _save(fig, out / "numeric_hist.png")


def _category_box(
    plt: Any, dataset: Dataset, strongest: tuple[str, float], tname: str, out: Path
) -> Path:
    """Box plots of the target per category (the 30 most frequent), sorted by median."""
    assert dataset.target is not None
    name, signal = strongest
    col, y = dataset.columns[name], dataset.target
    ok = ~np.isnan(y)
    groups: dict[str, list[float]] = {}
    for v, t in zip(col[ok].tolist(), y[ok].tolist(), strict=True):
        groups.setdefault("(missing)" if v is None else str(v), []).append(t)
    shown = sorted(groups, key=lambda k: -len(groups[k]))[:30]
    shown.sort(key=lambda k: float(np.median(groups[k])))
    fig, ax = plt.subplots(figsize=(8, 0.32 * len(shown) + 1.6))
    ax.boxplot(
        [groups[k] for k in shown],
        orientation="horizontal",
        tick_labels=[f"{label(k, 24)} ({len(groups[k]):,})" for k in shown],
        flierprops={"markersize": 2},
    )
    if (y[ok] > 0).all():
        ax.set_xscale("log")
        _log_ticks(ax.xaxis)
        ax.set_xlabel(f"{tname} (log scale)")
    else:
        _readable(ax.xaxis)
        ax.set_xlabel(tname)
    ax.tick_params(axis="y", labelsize=7)
    more = f"; the 30 largest of {len(groups)}" if len(groups) > 30 else ""
    ax.set_title(f"{tname} by {label(name)} (ε² = {signal:.2f}; rows per category{more})")
    fig.tight_layout()
    return _save(fig, out / "category_box.png")


def _heatmap(plt: Any, dataset: Dataset, names: list[str], tname: str, out: Path) -> Path:
    """Pearson's r between the target and the numeric columns most correlated with it, over
    the rows where both of a pair are present."""
    from model.workflow.explore import pearson

    assert dataset.target is not None
    cols = [dataset.target, *(dataset.columns[n] for n in names)]
    labels = [tname, *(label(n, 24) for n in names)]
    k = len(cols)
    r = np.eye(k)
    for i in range(k):
        for j in range(i + 1, k):
            r[i, j] = r[j, i] = pearson(cols[i], cols[j])
    fig, ax = plt.subplots(figsize=(max(6.0, 0.55 * k + 3), max(4.5, 0.55 * k + 2)))
    im = ax.imshow(r, cmap="RdBu_r", vmin=-1, vmax=1)
    ax.set_xticks(range(k), labels, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(k), labels, fontsize=8)
    for i in range(k):
        for j in range(k):
            if not math.isnan(r[i, j]):
                color = "white" if abs(r[i, j]) > 0.6 else "black"
                ax.text(j, i, f"{r[i, j]:.2f}", ha="center", va="center", fontsize=7, color=color)
    fig.colorbar(im, ax=ax, label="Pearson r", shrink=0.8)
    ax.set_title(
        f"Pearson r of {tname} and the {k - 1} numeric columns\nmost correlated with it",
        fontsize=10,
    )
    fig.tight_layout()
    return _save(fig, out / "correlation_heatmap.png")


def learning_curve(
    sizes: Sequence[int], train: Sequence[float], valid: Sequence[float], label: str, out: Path
) -> Path:
    """Training and validation error against the number of training rows."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(sizes, train, "o-", label="training")
    ax.plot(sizes, valid, "o-", label="validation")
    ax.set_xlabel("training rows")
    ax.set_ylabel(label)
    ax.set_title("Learning curve")
    ax.legend()
    fig.tight_layout()
    return _save(fig, out / "learning_curve.png")


def cost_history(history: Sequence[float], out: Path) -> Path:
    """The loss per iteration of an iterative solver."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(np.arange(1, len(history) + 1), history)
    ax.set_xlabel("iteration")
    ax.set_ylabel("loss")
    ax.set_yscale("log")
    ax.set_title("Cost history")
    fig.tight_layout()
    return _save(fig, out / "cost_history.png")


def predicted_vs_actual(y: FloatArray, p: FloatArray, out: Path) -> Path:
    """Test-set predictions against the truth on log axes, with the identity line."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 5.5))
    ax.scatter(y / 1e3, p / 1e3, s=6, alpha=0.5)
    lo, hi = float(min(y.min(), p.min())) / 1e3, float(max(y.max(), p.max())) / 1e3
    ax.plot([lo, hi], [lo, hi], "k--", lw=1)
    ax.set_xlabel("actual price ($1000)")
    ax.set_ylabel("predicted price ($1000)")
    ax.set_title("Test set: predicted vs actual")
    fig.tight_layout()
    return _save(fig, out / "predicted_vs_actual.png")


def residuals(y: FloatArray, p: FloatArray, out: Path) -> Path:
    """log residuals against the prediction, and their histogram."""
    plt = _pyplot()
    r = np.log(y) - np.log(p)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    a1.scatter(p / 1e3, r, s=6, alpha=0.5)
    a1.axhline(0.0, color="k", lw=1)
    a1.set_xlabel("predicted price ($1000)")
    a1.set_ylabel("log(actual) - log(predicted)")
    a2.hist(r, bins=40)
    a2.set_xlabel("log residual")
    fig.suptitle("Test-set residuals")
    fig.tight_layout()
    return _save(fig, out / "residuals.png")


def coefficients(names: Sequence[str], values: FloatArray, title: str, out: Path) -> Path:
    """The 25 largest coefficients (or importances) by magnitude."""
    plt = _pyplot()
    order = np.argsort(-np.abs(values))[:25][::-1]
    fig, ax = plt.subplots(figsize=(7, 0.28 * len(order) + 1.2))
    colors = ["tab:blue" if values[i] >= 0 else "tab:red" for i in order]
    ax.barh([names[i] for i in order], values[order], color=colors)
    ax.tick_params(axis="y", labelsize=7)
    ax.set_title(title)
    fig.tight_layout()
    return _save(fig, out / "coefficients.png")


def psi_heatmap(
    psi: Mapping[str, Sequence[float | None]], windows: Sequence[str], threshold: float
) -> bytes:
    """PSI per feature (rows) and time window (columns) as PNG bytes; blank where a window
    had too few rows, scores over ``threshold`` outlined."""
    plt = _pyplot()
    names = list(psi)
    grid = np.array(
        [[np.nan if v is None else v for v in psi[n]] for n in names], dtype=np.float64
    ).reshape(len(names), len(windows))
    fig, ax = plt.subplots(figsize=(min(2.0 + 0.9 * len(windows), 16), 1.2 + 0.3 * len(names)))
    image = ax.imshow(
        np.ma.masked_invalid(grid),
        aspect="auto",
        cmap="OrRd",
        vmin=0.0,
        vmax=max(2 * threshold, float(np.nanmax(grid)) if np.isfinite(grid).any() else 0.0),
    )
    for i, j in zip(*np.nonzero(np.nan_to_num(grid) > threshold), strict=True):
        ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, ec="k", lw=1.5))
    if len(windows) <= 12:  # the scores themselves, while they fit
        for (i, j), v in np.ndenumerate(grid):
            if np.isfinite(v):
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7)
    ax.set_yticks(range(len(names)), [label(n) for n in names], fontsize=7)
    ax.set_xticks(range(len(windows)), list(windows), rotation=45, ha="right", fontsize=7)
    fig.colorbar(image, ax=ax, label="PSI")
    ax.set_title(f"Drift per window (PSI; outlined above {threshold:g})")
    fig.tight_layout()
    return _png(fig)


def predicted_vs_observed(pairs: Mapping[str, tuple[Sequence[float], Sequence[float]]]) -> bytes:
    """Predicted against observed prices, one colour per model, with the identity line, as
    PNG bytes."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 5.5))
    lo, hi = math.inf, -math.inf
    for name, (observed, predicted) in pairs.items():
        y, p = np.asarray(observed) / 1e3, np.asarray(predicted) / 1e3
        ax.scatter(y, p, s=8, alpha=0.6, label=label(name))
        lo, hi = min(lo, float(y.min()), float(p.min())), max(hi, float(y.max()), float(p.max()))
    ax.plot([lo, hi], [lo, hi], "k--", lw=1)
    ax.set_xlabel("observed price ($1000)")
    ax.set_ylabel("predicted price ($1000)")
    ax.set_title("Live traffic: predicted vs observed")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return _png(fig)
