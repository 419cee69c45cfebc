"""Exploration statistics against pandas and literal loops; the Markdown report."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from model.workflow import plots
from model.workflow.cli import main
from model.workflow.data import load_csv
from model.workflow.explore import (
    categorical_summary,
    correlation_ratio,
    explore,
    iqr_outliers,
    numeric_summary,
    pearson,
    render_markdown,
)

ROOT = Path(__file__).resolve().parents[1]
AMES = ROOT / "data" / "ames.csv"


@pytest.fixture(scope="module")
def ames() -> tuple[pd.DataFrame, object]:
    return pd.read_csv(AMES, keep_default_na=False, na_values=["", "NA"]), load_csv(
        AMES, target="price"
    )


@pytest.mark.parametrize("column", ["area", "Lot.Frontage", "Garage.Yr.Blt", "Mas.Vnr.Area"])
def test_numeric_summary_matches_pandas_describe(column: str, ames: tuple) -> None:
    df, ds = ames
    s = numeric_summary(column, ds.columns[column], ds.target)
    ref = df[column].describe()
    assert s.count == ref["count"] and s.missing == df[column].isna().sum()
    for ours, theirs in [
        (s.mean, ref["mean"]),
        (s.std, ref["std"]),
        (s.min, ref["min"]),
        (s.q1, ref["25%"]),
        (s.median, ref["50%"]),
        (s.q3, ref["75%"]),
        (s.max, ref["max"]),
    ]:
        assert ours == pytest.approx(theirs, rel=1e-12)
    assert s.corr == pytest.approx(df[column].corr(df["price"]), rel=1e-10)


def test_pearson_against_numpy_and_degenerate_cases() -> None:
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=50), rng.normal(size=50)
    assert pearson(x, y) == pytest.approx(np.corrcoef(x, y)[0, 1])
    assert math.isnan(pearson(np.ones(5), np.arange(5.0)))
    x[:3] = np.nan
    assert pearson(x, y) == pytest.approx(np.corrcoef(x[3:], y[3:])[0, 1])


def test_iqr_outliers_like_a_literal_loop() -> None:
    rng = np.random.default_rng(2)
    x = np.concatenate([rng.lognormal(0, 1, 200), [np.nan, np.nan]])
    q1, q3 = np.nanpercentile(x, [25, 75])
    lo, hi = q1 - 1.5 * (q3 - q1), q3 + 1.5 * (q3 - q1)
    expected = [not math.isnan(v) and (v < lo or v > hi) for v in x]
    assert iqr_outliers(x).tolist() == expected
    assert sum(expected) > 0


def test_correlation_ratio_by_hand() -> None:
    labels = np.array(["a", "a", "b", "b", None, "c"], dtype=object)
    y = np.array([1.0, 3.0, 5.0, 7.0, 2.0, 10.0])
    groups: dict[object, list[float]] = {}
    for lab, v in zip(labels, y, strict=True):
        groups.setdefault(lab, []).append(v)
    m = sum(y) / len(y)
    between = sum(len(g) * (sum(g) / len(g) - m) ** 2 for g in groups.values())
    total = sum((v - m) ** 2 for v in y)
    assert correlation_ratio(labels, y) == pytest.approx(math.sqrt(between / total))
    # two categories: eta is |r| of the indicator
    two = np.array(["x", "y", "x", "y", "y"], dtype=object)
    yy = np.array([1.0, 4.0, 2.0, 6.0, 5.0])
    assert correlation_ratio(two, yy) == pytest.approx(abs(pearson((two == "y") * 1.0, yy)))


def test_categorical_summary_matches_value_counts(ames: tuple) -> None:
    df, ds = ames
    s = categorical_summary("Neighborhood", ds.columns["Neighborhood"], ds.target, top=5)
    counts = df["Neighborhood"].value_counts()
    assert s.n_categories == counts.size and s.missing == 0
    assert s.top == [(k, int(v)) for k, v in counts.head(5).items()]
    fence = categorical_summary("Fence", ds.columns["Fence"], None)
    assert fence.missing == df["Fence"].isna().sum() and math.isnan(fence.eta)


def test_report_covers_every_column(ames: tuple) -> None:
    _, ds = ames
    report = explore(ds)
    names = [s.name for s in report.numeric] + [c.name for c in report.categorical]
    assert sorted(names) == sorted(ds.columns)
    assert report.target is not None and report.target.count == 2930
    md = render_markdown(report)
    assert "## Target: `price`" in md
    strongest = md.split("## Strongest")[1].split("\n")[4]
    assert strongest.startswith("| Overall.Qual | 0.799")
    assert "| Pool.QC | 2,917 | 99.6% |" in md
    # the target's outliers, as file lines, farthest from the median first
    df = pd.read_csv(AMES, keep_default_na=False, na_values=["", "NA"])
    q1, q3 = df["price"].quantile([0.25, 0.75])
    out = df[(df["price"] < q1 - 1.5 * (q3 - q1)) | (df["price"] > q3 + 1.5 * (q3 - q1))]
    assert len(report.target_outliers) == len(out) == report.target.outliers
    line, value = report.target_outliers[0]
    assert value == df["price"].max() and line == int(df["price"].idxmax()) + 2
    assert f"Target: {len(out)} rows outside" in md


def _small_csv(tmp_path: Path) -> Path:
    """200 rows of a few columns (numeric, categorical, with missing values): plots stay quick."""
    df = pd.read_csv(AMES, keep_default_na=False, na_values=["", "NA"], nrows=200)
    path = tmp_path / "small.csv"
    cols = ["area", "Lot.Frontage", "Overall.Qual", "Neighborhood", "Fence", "price"]
    df[cols].to_csv(path, index=False)
    return path


def test_explore_cli_writes_markdown_and_plots(tmp_path: Path) -> None:
    if not plots.available():
        pytest.skip("matplotlib is not installed")
    out = tmp_path / "eda"
    assert main(["explore", str(_small_csv(tmp_path)), "--target", "price", "--out", str(out)]) == 0
    md = (out / "README.md").read_text()
    assert "# Exploratory data analysis" in md and "200 rows" in md
    for png in ("target_hist.png", "numeric_hist.png", "strongest_scatter.png", "missing.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
        assert f"]({png})" in md


def test_explore_says_when_matplotlib_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(plots, "available", lambda: False)
    out = tmp_path / "eda"
    assert main(["explore", str(_small_csv(tmp_path)), "--out", str(out)]) == 0
    assert "matplotlib is not installed" in (out / "README.md").read_text()
    assert "matplotlib is not installed" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["README.md"]


def test_explore_bad_target_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv = _small_csv(tmp_path)
    assert main(["explore", str(csv), "--target", "prize", "--out", str(tmp_path / "e")]) == 2
    assert "did you mean: 'price'" in capsys.readouterr().err
