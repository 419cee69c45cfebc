"""Bring your own data: ``houseprice init``, the config's new keys, and the config checked
against the data before any fitting."""

from __future__ import annotations

import math
import tomllib
from pathlib import Path

import numpy as np
import pytest

from model.workflow.checks import check_row_count, grid_edge_warnings
from model.workflow.cli import main
from model.workflow.config import Config, ConfigError, load_config, parse_config
from model.workflow.infer import identifier_reason, is_constant, is_integer
from model.workflow.starter import api_name, bounds_for, skewness, starter_config, unique_names
from model.workflow.train import prepare_data

ROOT = Path(__file__).resolve().parents[1]


def houses(n: int, seed: int = 0) -> list[dict[str, object]]:
    """Synthetic sales: price from size, rooms, age and town, with noise and gaps."""
    rng = np.random.default_rng(seed)
    towns = ["Nordstadt", "Südviertel", "Altstadt", "Hafen"]
    rows = []
    for i in range(n):
        size = float(rng.lognormal(4.6, 0.35))
        rooms = int(rng.integers(1, 7))
        year = int(rng.integers(1900, 2021))
        town = towns[int(rng.integers(0, 4))]
        log_price = 8.5 + 0.9 * math.log(size) + 0.04 * rooms + 0.002 * (year - 1900)
        log_price += {"Nordstadt": 0.2, "Südviertel": 0.0, "Altstadt": 0.35, "Hafen": -0.1}[town]
        rows.append(
            {
                "Sale ID": f"S-{1000 + i}",
                "Größe (m²)": round(size, 1),
                "Zimmer": rooms,
                "baujahr": year if rng.random() > 0.05 else None,
                "Stadtteil": town,
                "Land": "DE",
                "Kaufpreis": round(math.exp(log_price + rng.normal(0, 0.1)), -2),
            }
        )
    return rows


def write_csv(path: Path, rows: list[dict[str, object]], sep: str = ",", na: str = "") -> Path:
    header = list(rows[0])
    lines = [sep.join(header)]
    lines += [sep.join(na if r[h] is None else str(r[h]) for h in header) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# --- names and column facts -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("column", "name"),
    [
        ("1stFlrSF", "x1st_flr_sf"),
        ("Lot.Area", "lot_area"),
        ("GrLivArea", "gr_liv_area"),
        ("MSSubClass", "ms_sub_class"),
        ("Year.Remod.Add", "year_remod_add"),
        ("Größe (m²)", "grosse_m2"),
        ("Sale ID", "sale_id"),
        ("json", "json_value"),
        ("model_config", "model_config_value"),
        ("€€", ""),
    ],
)
def test_api_names(column: str, name: str) -> None:
    assert api_name(column) == name


def test_api_names_are_unique_and_never_empty() -> None:
    assert unique_names(["Lot Area", "lot.area", "LotArea", "€"]) == {
        "Lot Area": "lot_area",
        "lot.area": "lot_area_2",
        "LotArea": "lot_area_3",
        "€": "column_4",
    }


def test_identifier_constant_and_integer_rules() -> None:
    n = 12
    assert identifier_reason("PID", np.arange(n, dtype=float) * 7) is not None
    assert identifier_reason("house_id", np.ones(n)) is not None
    assert identifier_reason("ParcelID", np.ones(n)) is not None
    assert identifier_reason("Paid", np.ones(n)) is None
    assert "counts the rows" in str(identifier_reason("n", np.arange(1, n + 1, dtype=float)))
    texts = np.array([f"addr {i}" for i in range(n)], dtype=object)
    assert "different text" in str(identifier_reason("address", texts))
    assert identifier_reason("address", texts[:5]) is None  # too few rows to tell by values
    assert identifier_reason("area", np.linspace(50, 300, n)) is None
    assert is_constant(np.array(["a", None, "a"], dtype=object))
    assert is_constant(np.array([math.nan, math.nan]))
    assert not is_constant(np.array([1.0, 2.0]))
    assert is_integer(np.array([1.0, 3.0, math.nan, 2.0]))
    assert not is_integer(np.array([1.0, 2.5]))
    assert not is_integer(np.array([0.0, 5000.0]))  # whole numbers, but a measurement's span


def test_bounds_and_skewness() -> None:
    assert bounds_for(np.array([10.0, 20.0, math.nan]), integer=True) == (5.0, 25.0)
    assert bounds_for(np.array([334.0, 5642.0]), integer=False) == (0.0, 8300.0)
    lo, hi = bounds_for(np.array([-3.0, 7.0]), integer=False)
    assert lo <= -8.0 and hi >= 12.0
    assert skewness(np.array([1.0, 1.0, 1.0])) == 0.0
    x = np.random.default_rng(0).lognormal(0, 1, 2000)
    assert skewness(x) > 2  # right-skewed
    assert abs(skewness(np.linspace(0, 1, 101))) < 1e-9


# --- init -----------------------------------------------------------------------------------


def test_init_writes_a_commented_config_that_trains_unchanged(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    data = write_csv(tmp_path / "data" / "sales.csv", houses(160))
    cfg_path = tmp_path / "configs" / "sales.toml"
    cfg_path.parent.mkdir()
    assert main(["init", str(data), "--target", "Kaufpreis", "--out", str(cfg_path)]) == 0
    text = cfg_path.read_text()
    doc = tomllib.loads(text)
    assert doc["data"]["path"] == "../data/sales.csv"  # relative to the config's folder
    assert doc["data"]["id_columns"] == ["Sale ID"]
    assert "#   Sale ID: identifier" in text and "#   Land: constant" in text
    feats = {f["name"]: f for f in doc["features"]}
    assert list(feats) == ["grosse_m2", "zimmer", "baujahr", "stadtteil"]
    assert feats["grosse_m2"]["column"] == "Größe (m²)" and feats["zimmer"]["column"] == "Zimmer"
    assert "column" not in feats["baujahr"]  # written only where it differs from the name
    assert feats["grosse_m2"]["kind"] == "numeric"
    assert feats["zimmer"]["kind"] == feats["baujahr"]["kind"] == "integer"
    assert feats["stadtteil"]["kind"] == "categorical"
    assert feats["zimmer"]["required"] is True and feats["baujahr"]["required"] is False
    lo, hi = feats["baujahr"]["bounds"]
    assert lo <= 1900 and hi >= 2020 and isinstance(feats["baujahr"]["example"], int)
    assert doc["model"]["target_transform"] == "log"
    assert "# unit" in text and "TODO" in text
    cfg = load_config(cfg_path)  # loads from another folder: the path follows the config
    assert Path(cfg.data_path).resolve() == data.resolve()
    out = tmp_path / "m.joblib"
    argv = ["train", "--config", str(cfg_path), "--out", str(out), "--runs-dir", str(tmp_path)]
    assert main([*argv, "--quiet", "--no-plots"]) == 0
    assert out.exists()


def test_init_refuses_to_overwrite_and_prints_without_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write_csv(tmp_path / "s.csv", houses(40), sep=";")
    assert main(["init", str(data)]) == 0  # target guessed: the one column named like a price
    out = capsys.readouterr().out
    assert 'target = "Kaufpreis"' in out and 'delimiter = ";"' in out
    cfg = tmp_path / "c.toml"
    cfg.write_text("keep me")
    assert main(["init", str(data), "--out", str(cfg)]) == 2
    assert "exists; pass --force" in capsys.readouterr().err and cfg.read_text() == "keep me"
    assert main(["init", str(data), "--out", str(cfg), "--force"]) == 0


def test_init_small_files_get_fewer_folds_or_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write_csv(tmp_path / "s.csv", houses(12))
    assert main(["init", str(data), "--target", "Kaufpreis"]) == 0
    assert "folds = 4  # the most that 12 rows allow" in capsys.readouterr().out
    tiny = write_csv(tmp_path / "t.csv", houses(4))
    assert main(["init", str(tiny), "--target", "Kaufpreis"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "4 rows are too few" in err and "at least 6" in err


def test_init_on_the_bundled_data_keeps_every_usable_column() -> None:
    text = starter_config(ROOT / "data" / "ames.csv", "price", out=ROOT / "configs" / "x.toml")
    doc = tomllib.loads(text)
    assert doc["data"]["path"] == "../data/ames.csv"
    assert doc["data"]["id_columns"] == ["Order", "PID"]
    assert len(doc["features"]) == 79
    names = {f["name"] for f in doc["features"]}
    assert {"lot_area", "x1st_flr_sf", "year_built", "neighborhood"} <= names


@pytest.mark.slow
def test_init_on_the_bundled_data_trains_to_the_reference(tmp_path: Path) -> None:
    """The issue's bar: scikit-learn's RidgeCV on all columns of the same rows gets 0.1355."""
    cfg_path = tmp_path / "ames.toml"
    assert main(["init", str(ROOT / "data" / "ames.csv"), "--out", str(cfg_path)]) == 0
    out = tmp_path / "m.joblib"
    argv = ["train", "--config", str(cfg_path), "--out", str(out), "--runs-dir", str(tmp_path)]
    assert main([*argv, "--quiet", "--no-plots"]) == 0
    from model.workflow.artifact import load_artifact

    meta = load_artifact(out).metadata
    assert meta["cv"]["rmse_log"]["mean"] <= 0.135


# --- the config's new keys ------------------------------------------------------------------


DATA_KEYS = """
[data]
path = "sales.csv"
target = "price"
name = "Sales"
license = "CC0-1.0"
delimiter = ";"
na_values = ["", "?"]
encoding = "latin-1"
id_columns = ["pid"]
[[features]]
name = "area"
kind = "integer"
"""


def test_data_keys_relative_path_and_optional_column(tmp_path: Path) -> None:
    text = DATA_KEYS
    (tmp_path / "sub").mkdir()
    cfg_file = tmp_path / "sub" / "c.toml"
    cfg_file.write_text(text)
    cfg = load_config(cfg_file)
    assert cfg.data_path == str(tmp_path / "sub" / "sales.csv")
    assert cfg.features[0].column == "area" and cfg.features[0].numeric
    assert cfg.info.name == "Sales" and cfg.info.license == "CC0-1.0"
    assert cfg.csv.delimiter == ";" and cfg.csv.na_values == frozenset({"", "?"})
    assert cfg.csv.encoding == "latin-1" and cfg.id_columns == ("pid",)
    assert parse_config(tomllib.loads(text)).data_path == "sales.csv"  # not from a file


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (('delimiter = ";"', 'delimiter = ";;"'), "data.delimiter: expected one character"),
        (('encoding = "latin-1"', 'encoding = "klingon"'), "unknown encoding 'klingon'"),
        (('na_values = ["", "?"]', "na_values = [1]"), "na_values: expected an array of str"),
        (('id_columns = ["pid"]', 'id_columns = ["area"]'), "'area' is a feature or the t"),
        (("licence", "licence"), "unknown key 'licence'"),
        (('kind = "integer"', 'kind = "integer"\nexample = 2.5'), "needs a whole number"),
    ],
)
def test_data_key_errors(tmp_path: Path, edit: tuple[str, str], message: str) -> None:
    text = DATA_KEYS
    if edit[0] == "licence":
        text = text.replace('license = "CC0-1.0"', 'licence = "CC0-1.0"')
    else:
        text = text.replace(*edit)
    with pytest.raises(ConfigError, match=message):
        parse_config(tomllib.loads(text), source=str(tmp_path / "c.toml"))


# --- the config checked against the data ----------------------------------------------------

SMALL = """
[data]
path = "sales.csv"
target = "Kaufpreis"
[cv]
folds = 2
[model]
grid = {{ alpha = [1.0] }}
[[features]]
name = "size"
column = "Größe (m²)"
kind = "numeric"
{size}
[[features]]
name = "baujahr"
kind = "{year_kind}"
required = {year_required}
"""


def small_config(
    tmp_path: Path, size: str = "", year_kind: str = "integer", req: str = "false"
) -> Config:
    write_csv(tmp_path / "sales.csv", houses(60))
    p = tmp_path / "c.toml"
    p.write_text(SMALL.format(size=size, year_kind=year_kind, year_required=req))
    return load_config(p)


def test_bounds_that_exclude_training_rows_are_an_error(tmp_path: Path) -> None:
    cfg = small_config(tmp_path, size="bounds = [1, 100]")
    with pytest.raises(ConfigError) as info:
        prepare_data(cfg)
    msg = str(info.value)
    assert "features[0] 'size'" in msg and "bounds [1, 100] exclude" in msg
    n = sum(1 for r in houses(60) if float(r["Größe (m²)"]) > 100)  # type: ignore[arg-type]
    assert f"exclude {n} of 60 training rows" in msg and "first at line" in msg


def test_required_on_a_column_with_gaps_is_an_error(tmp_path: Path) -> None:
    cfg = small_config(tmp_path, req="true")
    missing = sum(1 for r in houses(60) if r["baujahr"] is None)
    with pytest.raises(ConfigError, match=rf"'baujahr'.*required = true, but {missing} of 60"):
        prepare_data(cfg)


def test_integer_kind_with_fractions_is_an_error(tmp_path: Path) -> None:
    cfg = small_config(tmp_path).with_overrides()
    cfg = parse_config(
        tomllib.loads(
            SMALL.format(size="", year_kind="integer", year_required="false").replace(
                'name = "size"\ncolumn = "Größe (m²)"\nkind = "numeric"',
                'name = "size"\ncolumn = "Größe (m²)"\nkind = "integer"',
            )
        ),
        source=cfg.source,
    )
    with pytest.raises(ConfigError, match=r"'size'.*kind = 'integer', but \d+ rows hold a frac"):
        prepare_data(cfg)


def test_a_word_in_a_numeric_column_names_file_line_column_and_value(tmp_path: Path) -> None:
    rows = houses(60)
    rows[7]["Zimmer"] = "drei"
    write_csv(tmp_path / "sales.csv", rows)
    (tmp_path / "c.toml").write_text(
        SMALL.format(size="", year_kind="integer", year_required="false").replace(
            'name = "baujahr"', 'name = "zimmer"\ncolumn = "Zimmer"'
        )
    )
    with pytest.raises(ConfigError) as info:
        prepare_data(load_config(tmp_path / "c.toml"))
    assert "sales.csv: line 9, column 'Zimmer': 'drei' is not a number" in str(info.value)


def test_row_count_errors_and_grid_edge_warnings(tmp_path: Path) -> None:
    cfg = small_config(tmp_path)
    check_row_count(cfg.with_overrides(folds=5), 13, "f.csv")
    with pytest.raises(ConfigError, match=r"f\.csv: 12 rows are too few .* at least 13 rows"):
        check_row_count(cfg.with_overrides(folds=5), 12, "f.csv")
    grid = {"alpha": [0.1, 1.0, 10.0], "fit_intercept": [True, False]}
    assert grid_edge_warnings(grid, {"alpha": 1.0, "fit_intercept": True}) == []
    (line,) = grid_edge_warnings(grid, {"alpha": 10.0, "fit_intercept": True})
    assert "best alpha = 10 is the largest value of the grid [0.1 … 10]" in line
    assert grid_edge_warnings({"alpha": [1.0, 10.0]}, {"alpha": 10.0}) == []


def test_train_prints_one_warning_line_for_a_best_value_at_the_edge(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    small_config(tmp_path)
    text = (tmp_path / "c.toml").read_text().replace("[1.0]", "[1000.0, 3000.0, 10000.0]")
    (tmp_path / "c.toml").write_text(text)
    argv = ["train", "--config", str(tmp_path / "c.toml"), "--out", str(tmp_path / "m.joblib")]
    assert main([*argv, "--runs-dir", str(tmp_path / "r"), "--quiet", "--no-plots"]) == 0
    err = capsys.readouterr().err
    warnings = [line for line in err.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 1 and "best alpha = 1000 is the smallest" in warnings[0]


def test_too_few_rows_to_train_is_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    small_config(tmp_path)
    write_csv(tmp_path / "sales.csv", houses(11))
    argv = ["train", "--config", str(tmp_path / "c.toml"), "--out", str(tmp_path / "m.joblib")]
    text = (tmp_path / "c.toml").read_text().replace("folds = 2", "folds = 5")
    (tmp_path / "c.toml").write_text(text)
    assert main([*argv, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "11 rows are too few" in err and "Traceback" not in err


@pytest.mark.parametrize("name", sorted(p.name for p in (ROOT / "configs").glob("*.toml")))
def test_every_shipped_config_loads_and_passes_its_checks_against_the_data(name: str) -> None:
    """From any working directory: the data path follows the config's folder."""
    cfg = load_config(ROOT / "configs" / name)
    data = prepare_data(cfg)  # bounds, required, integer kinds and row count hold
    assert data.y.size > 2000
