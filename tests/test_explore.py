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
    assert sorted(names + list(report.left_out)) == sorted(ds.columns)
    assert report.left_out == {
        "Order": "identifier: named like an identifier ('Order')",
        "PID": "identifier: named like an identifier ('PID')",
    }
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
    pngs = ("target_hist.png", "numeric_hist.png", "strongest_scatter.png", "category_box.png")
    for png in (*pngs, "correlation_heatmap.png", "missing.png"):
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


def _write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


IMPOSSIBLE = """\
Id,YearBuilt,Yr.Sold,Year.Remod.Add,GarageYrBlt,LotArea,Bedrooms,Note,price
1,1990,2008,1995,1990,8000,3,a,150000
2,2009,2007,2009,2009,9000,2,b,160000
3,1975,2010,1970,2207,-5,-1,c,0
4,1960,2009,1990,1961,7000,4,d,210000
5,1980,2008,2000,1980,6500,3,e,
"""


def test_impossible_values_are_flagged_by_stated_rules(tmp_path: Path) -> None:
    from datetime import date

    from model.workflow.explore import RULES, load_for_explore

    ds = load_for_explore(_write(tmp_path / "h.csv", IMPOSSIBLE), "price")
    report = explore(ds, today=date(2026, 6, 1))
    got = {(f.column, f.rule): (f.rows, f.examples) for f in report.flags}
    assert got == {
        ("GarageYrBlt", "a year after 2026"): (1, [(4, "2207")]),
        ("LotArea", "a negative area"): (1, [(4, "-5")]),
        ("Bedrooms", "a negative count"): (1, [(4, "-1")]),
        ("Yr.Sold < YearBuilt", "Yr.Sold before YearBuilt"): (1, [(3, "2007 < 2009")]),
        ("Year.Remod.Add < YearBuilt", "Year.Remod.Add before YearBuilt"): (
            1,
            [(4, "1970 < 1975")],
        ),
        ("price", "a target of zero or less"): (1, [(4, "0")]),
    }
    # the garage's year is not a sale's: no "Yr.Sold < GarageYrBlt" pair
    # five rows are too few to call the unique texts of `Note` an identifier by their values
    assert report.left_out == {"Id": "identifier: named like an identifier ('Id')"}
    assert report.target is not None and report.target.missing == 1
    md = render_markdown(report)
    assert all(rule in md for rule in RULES)
    assert "| GarageYrBlt | a year after 2026 | 1 | 4: 2207 |" in md
    assert "Rows without a target value: 1." in md
    # years are printed without thousands separators, other numbers with them
    table = md.split("## Numeric columns")[1].splitlines()
    year_row = next(line for line in table if line.startswith("| YearBuilt |"))
    assert "| 1960 |" in year_row and "1,9" not in year_row
    assert "| 9,000 |" in next(line for line in table if line.startswith("| LotArea |"))


def test_explore_reads_the_format_from_the_config_and_flags_override_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = "house_id;size;zone;value\n" + "".join(
        f"h{i};{'?' if i % 5 == 0 else 50 + i};{'AB'[i % 2]};{1000 + 10 * i}\n" for i in range(30)
    )
    data = _write(tmp_path / "semi.csv", text, "latin-1")
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        '[data]\npath = "semi.csv"\ntarget = "value"\ndelimiter = ";"\nna_values = ["?"]\n'
        'encoding = "latin-1"\n[[features]]\nname = "size"\nkind = "numeric"\n'
    )
    out = tmp_path / "eda"
    assert main(["explore", "--config", str(cfg), "--out", str(out), "--no-plots"]) == 0
    md = (out / "README.md").read_text()
    assert "## Target: `value`" in md and "| house_id | identifier:" in md
    assert "## Numeric columns (1)" in md and "| size | 24 | 6 |" in md
    # a flag replaces the config's value: '?' is text again, so `size` is categorical
    args = ["explore", "--config", str(cfg), "--out", str(out), "--no-plots", "--na-values", ""]
    assert main(args) == 0
    assert "## Numeric columns (0)" in (out / "README.md").read_text()
    # the same without a config, by flags alone
    args = ["explore", str(data), "--target", "value", "--delimiter", ";", "--out", str(out)]
    assert main([*args, "--na-values", ",?", "--encoding", "latin-1", "--no-plots"]) == 0
    assert "| size | 24 | 6 |" in (out / "README.md").read_text()
    capsys.readouterr()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--delimiter", ";;"], "--delimiter: expected one character or 'tab'"),
        (["--encoding", "klingon"], "--encoding: unknown encoding 'klingon'"),
        (["--target", "zone"], "line 2, column 'zone': the target must be a number, got 'A'"),
        (["--target", "valeu"], "no target column 'valeu'; did you mean: 'value'"),
    ],
)
def test_explore_usage_errors_exit_2_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    data = _write(tmp_path / "d.csv", "size,zone,value\n1,A,10\n2,B,20\n")
    args = ["explore", str(data), "--target", "value", "--out", str(tmp_path / "e"), *argv]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err, err
    assert main(["explore", "--out", str(tmp_path / "e")]) == 2
    assert "give a CSV file, or --config" in capsys.readouterr().err


NASTY = {
    "one_row": "a,b,price\n1,x,100\n",
    "constant_target": "a,b,price\n1,x,5\n2,y,5\n3,x,5\n",
    "all_missing_column": "a,b,price\nNA,x,1\n,y,2\n?,x,3\n",
    "only_the_target": "price\n1\n2\n3\n",
    "mathtext_names": "$a$^{,$\\frac{b,price\n1,x,1\n2,y,2\n3,x,3\n",
    "negative_target": "a,b,price\n1,x,-1\n2,y,2\n3,x,0\n",
    "huge_values": "a,b,price\n1e300,x,1e300\n-1e300,y,1\n0,x,2\n",
    "junk_names": "\x01\x02,\u2603\u0301,price\n1,\x7f,1\n2,\u00e9,2\n",
    "target_all_missing": "a,price\n1,\n2,NA\n",
}


@pytest.mark.parametrize("name", sorted(NASTY))
def test_explore_never_tracebacks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    if not plots.available():
        pytest.skip("matplotlib is not installed")
    data = _write(tmp_path / f"{name}.csv", NASTY[name])
    code = main(["explore", str(data), "--out", str(tmp_path / "eda")])
    err = capsys.readouterr().err
    assert code in (0, 2) and "Traceback" not in err
    if code == 2:
        assert err.count("\n") == 1 and err.startswith("error: ")
    else:
        for png in (tmp_path / "eda").glob("*.png"):
            assert png.read_bytes()[:4] == b"\x89PNG"


def test_ticks_are_plain_numbers_and_labels_are_safe() -> None:
    assert plots.tick(1_000_000.0) == "1,000,000"
    assert plots.tick(2500.0) == "2,500" and plots.tick(2005.0, year=True) == "2005"
    assert plots.tick(0.00001) == "0.00001" and plots.tick(0.5) == "0.5"
    assert plots.tick(-1e9) == "-1,000,000,000" and "e" not in plots.tick(1e-7)
    assert plots.label("Price ($)") == r"Price (\$)"
    assert plots.label("a\nb\x00c") == "a b\\x00c" and len(plots.label("x" * 99)) == 40


def test_year_columns_by_name_and_values() -> None:
    from model.workflow.infer import is_year

    a = np.array
    assert is_year("Garage.Yr.Blt", a([1950.0, 2207.0, 1990.0, np.nan]))  # named; a typo kept
    assert is_year("baujahr", a([1900.0, 2020.0, 1985.0]))  # every value a plausible year
    assert not is_year("YearBuilt", a([0.0, 0.0, 1990.0]))  # "0 = never": the median says no
    assert not is_year("size", a([1700.0, 2300.0]))
    assert not is_year("baujahr", a([1990.5, 2001.0]))
    assert not is_year("year", np.array(["1990", "2001"], dtype=object))
