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
from collections.abc import Sequence
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


def _save(fig: Any, path: Path) -> Path:
    plt = _pyplot()
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format="png", dpi=80)
    finally:
        plt.close(fig)
    return atomic_write_bytes(path, buffer.getvalue())


def _grid(n: int, cols: int = 5) -> tuple[int, int]:
    return max(1, math.ceil(n / cols)), min(n, cols) or 1


def eda_plots(dataset: Dataset, report: Report, out: Path) -> list[Path]:
    """Histograms of every numeric column and the target, top-6 scatters, missing counts."""
    plt = _pyplot()
    written: list[Path] = []
    y = dataset.target
    names = [s.name for s in report.numeric]
    if y is not None:
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.hist(y, bins=50, color="tab:green")
        ax.set_title(f"{dataset.target_name} (n={y.size})")
        fig.tight_layout()
        written.append(_save(fig, out / "target_hist.png"))
    if names:
        rows, cols = _grid(len(names))
        fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 2.4 * rows), squeeze=False)
        for ax, name in zip(axes.flat, names, strict=False):
            col = dataset.columns[name]
            present = col[~np.isnan(col)]
            ax.hist(present, bins=30)
            # Text is what matplotlib spends its time laying out: two x labels, no y ticks.
            lo, hi = (float(present.min()), float(present.max())) if present.size else (0, 1)
            ax.set_xticks([lo, hi], [f"{lo:g}", f"{hi:g}"], fontsize=6)
            ax.set_yticks([])
            ax.set_title(name, fontsize=8)
        for ax in list(axes.flat)[len(names) :]:
            ax.axis("off")
        fig.subplots_adjust(hspace=0.6, wspace=0.15, left=0.02, right=0.98, top=0.97, bottom=0.03)
        written.append(_save(fig, out / "numeric_hist.png"))
    if y is not None and names:
        ranked = sorted(
            report.numeric, key=lambda s: -abs(s.corr) if not math.isnan(s.corr) else 1.0
        )[:6]
        fig, axes = plt.subplots(2, 3, figsize=(12, 7), squeeze=False)
        for ax, s in zip(axes.flat, ranked, strict=False):
            ax.scatter(dataset.columns[s.name], y, s=4, alpha=0.4)
            ax.set_xlabel(s.name)
            ax.set_ylabel(dataset.target_name or "target")
            ax.set_title(f"r = {s.corr:.3f}", fontsize=9)
        for ax in list(axes.flat)[len(ranked) :]:
            ax.axis("off")
        fig.tight_layout()
        written.append(_save(fig, out / "strongest_scatter.png"))
    missing = [(s.name, s.missing) for s in report.numeric if s.missing]
    missing += [(c.name, c.missing) for c in report.categorical if c.missing]
    missing.sort(key=lambda t: t[1])
    fig, ax = plt.subplots(figsize=(7, max(2.0, 0.25 * len(missing) + 1)))
    if missing:
        ax.barh([m[0] for m in missing], [m[1] for m in missing], color="tab:red")
        ax.tick_params(axis="y", labelsize=7)
    else:
        ax.text(0.5, 0.5, "no missing values", ha="center", va="center")
    ax.set_xlabel(f"missing values (of {dataset.n_rows} rows)")
    fig.tight_layout()
    written.append(_save(fig, out / "missing.png"))
    return written


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
