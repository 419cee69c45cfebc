"""The model card of a run on a data set that is not Ames: nothing of Ames in it, Hugging Face
front matter that parses, and per-segment test errors that a recomputation confirms."""

from __future__ import annotations

import csv
import math
import re
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from model.workflow.artifact import load_artifact
from model.workflow.card import _yaml_str
from model.workflow.config import Config, load_config
from model.workflow.explore import category_signal
from model.workflow.train import prepare_data, train

ROOT = Path(__file__).resolve().parents[1]

CONFIG = """
[data]
path = "harbour.csv"
target = "sale_price"
name = "Harbourtown sales (synthetic)"
description = "Sales made up by tests/test_card.py: a town of five districts."
source = "tests/test_card.py"
citation = "Nobody (2024). Made-up sales."
license = "CC0-1.0"
id_columns = ["house_id"]
[split]
test_size = 0.25
seed = 3
[cv]
folds = 3
[model]
estimator = "ridge"
grid = { alpha = [0.1, 1.0] }
[[features]]
name = "floor_area"
column = "Floor Area (m2)"
kind = "numeric"
unit = "m2"
bounds = [1, 5000]
[[features]]
name = "year_built"
column = "YrBuilt"
kind = "integer"
bounds = [1800, 2100]
[[features]]
name = "rooms"
column = "Rooms"
kind = "integer"
[[features]]
name = "garden"
column = "Garden"
kind = "numeric"
required = false
[[features]]
name = "district"
kind = "categorical"
[[features]]
name = "heating"
kind = "categorical"
"""

HEADER = [
    "house_id",
    "Floor Area (m2)",
    "YrBuilt",
    "Rooms",
    "Garden",
    "district",
    "heating",
    "sale_price",
]
DISTRICTS = {"North": 0.0, "South": -0.3, "Harbour": 0.5, "Hills": 0.25, "Centre": 0.1}


def _write_sales(path: Path, n: int = 400) -> None:
    """Semicolon-separated made-up sales; 'Quarry' is a district of 3 rows, 'Garden' has gaps."""
    rng = np.random.default_rng(11)
    names = [*DISTRICTS, "Quarry"]
    weights = np.array([0.3, 0.25, 0.15, 0.15, 0.15 - 3 / n, 3 / n])
    district = rng.choice(names, size=n, p=weights / weights.sum())
    area = rng.uniform(40, 300, n)
    year = rng.integers(1950, 2021, n)
    rooms = rng.integers(1, 9, n)
    garden = rng.uniform(0, 500, n)
    heating = rng.choice(["gas", "oil", "heat pump"], size=n)
    log_price = (
        11.0
        + 0.006 * area
        + 0.004 * (year - 1950)
        + 0.02 * rooms
        + np.array([DISTRICTS.get(d, -0.5) for d in district])
        + rng.normal(0, 0.08, n)
    )
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, delimiter=";")
        w.writerow(HEADER)
        for i in range(n):
            w.writerow(
                [
                    f"H{i:05d}",
                    f"{area[i]:.1f}",
                    int(year[i]),
                    int(rooms[i]),
                    "" if i % 17 == 0 else f"{garden[i]:.0f}",
                    district[i],
                    heating[i],
                    f"{math.exp(log_price[i]):.0f}",
                ]
            )


class Run(NamedTuple):
    cfg: Config
    meta: dict[str, Any]
    card: str


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    d = tmp_path_factory.mktemp("harbour")
    _write_sales(d / "harbour.csv")
    (d / "harbour.toml").write_text(CONFIG)
    cfg = load_config(d / "harbour.toml")
    result = train(cfg, d / "model.joblib", d / "runs", plots=False)
    card = (result.run_dir / "MODEL_CARD.md").read_text(encoding="utf-8")
    return Run(cfg, load_artifact(d / "model.joblib").metadata, card)


def _ames_words() -> list[str]:
    """Every word a card could only have taken from Ames: the place, the author, and the
    neighbourhoods (the codes in data/ames.csv and their names in De Cock's documentation)."""
    codes = set(pd.read_csv(ROOT / "data" / "ames.csv", usecols=["Neighborhood"])["Neighborhood"])
    names = [
        "Bloomington Heights", "Bluestem", "Briardale", "Brookside", "Clear Creek",
        "College Creek", "Crawford", "Edwards", "Gilbert", "Greens", "Green Hills",
        "Iowa DOT", "Landmark", "Meadow Village", "Mitchell", "North Ames", "Northridge",
        "Northpark Villa", "Old Town", "Sawyer", "Somerset", "Stone Brook", "Timberland",
        "Veenker",
    ]  # fmt: skip
    return ["Ames", "Iowa", "De Cock", "Midwest", *sorted(codes), *names]


def test_card_of_another_data_set_has_no_word_of_ames(run: Run) -> None:
    card = run.card
    found = [w for w in _ames_words() if re.search(rf"\b{re.escape(w)}\b", card, re.IGNORECASE)]
    assert found == []
    # what the config said of the data is there instead
    assert "**Harbourtown sales (synthetic)**: Sales made up by tests/test_card.py" in card
    assert "- Citation: Nobody (2024). Made-up sales." in card
    assert "- Identifier columns, not used as features: `house_id`." in card
    assert "delimiter ';'" in card


def test_front_matter_is_yaml_with_the_hugging_face_fields(run: Run) -> None:
    card, meta = run.card, run.meta
    assert card.startswith("---\n")
    front = yaml.safe_load(card.split("---\n")[1])
    assert front["license"] == "cc0-1.0"
    assert front["datasets"] == ["Harbourtown sales (synthetic)"]
    assert {"tabular-regression", "ridge"} <= set(front["tags"])
    assert front["pipeline_tag"] == "tabular-regression"
    assert set(front["metrics"]) == {"rmse", "mae", "r2", "mape", "rmse_log"}
    (entry,) = front["model-index"]
    assert entry["name"] == meta["model_version"]
    (result,) = entry["results"]
    assert result["task"]["type"] == "tabular-regression"
    assert result["dataset"] == {
        "name": "Harbourtown sales (synthetic)",
        "type": "Harbourtown sales (synthetic)",
        "split": "test",
    }
    values = {m["type"]: m["value"] for m in result["metrics"]}
    assert values == pytest.approx({m: meta["test"][m] for m in values})


@given(st.text(max_size=40))
def test_yaml_strings_round_trip(text: str) -> None:
    assert yaml.safe_load(f"key: {_yaml_str(text)}\n") == {"key": text}


def test_years_and_integers_are_printed_without_separators(run: Run) -> None:
    card, meta = run.card, run.meta
    year = next(f for f in meta["features"] if f["name"] == "year_built")
    lo, hi = int(year["min"]), int(year["max"])
    assert f"| [1800, 2100] | {lo} … {hi} |" in card
    assert f"Years seen: `year_built` {lo}–{hi}." in card
    assert not re.search(r"\b1,[89]\d\d\b|\b2,0[0-2]\d\b", card)
    assert f"the latest year seen is {hi}" in card


def test_card_limitations_come_from_the_data(run: Run) -> None:
    card, meta = run.card, run.meta
    limits = card.split("## Limitations and risks")[1].split("\n## ")[0]
    assert "`district`: categories with fewer than 10 training rows" in limits
    assert "Quarry (" in limits
    garden = meta["reference"]["features"]["garden"]
    missing = round(garden["shares"][-1] * garden["count"])
    assert missing > 0 and f"`garden` {missing} (" in limits
    assert "price quintile Q" in limits
    area = next(f for f in meta["features"] if f["name"] == "floor_area")
    assert f"`floor_area` seen {area['min']:,g}" in limits
    assert f"The test figures rest on {meta['data']['rows_test']} rows" in limits


def test_segments_match_a_recomputation(run: Run) -> None:
    """Per-category and per-quintile test errors, recomputed with pandas from the artifact's
    predictions on the same held-out rows; the category chosen by epsilon² recomputed too."""
    from model.selection import train_test_split

    cfg, meta = run.cfg, run.meta
    data = prepare_data(cfg)
    X_train, X_test, y_train, y_test = train_test_split(
        data.table, data.y, test_size=0.25, random_state=3
    )
    art = load_artifact(Path(meta["data"]["path"]).parent / "model.joblib")
    p = art.pipeline.predict(X_test)
    seg = meta["segments"]

    def eps2(col: np.ndarray) -> float:
        df = pd.DataFrame({"g": col.astype(str), "y": np.log(y_train)})
        within = df.groupby("g")["y"].transform(lambda s: (s - s.mean()) ** 2).sum()
        total = ((df["y"] - df["y"].mean()) ** 2).sum()
        n, k = len(df), df["g"].nunique()
        return float(1 - (within / (n - k)) / (total / (n - 1)))

    signals = {n: eps2(X_train[n]) for n in ("district", "heating")}
    assert seg["by_category"]["signals"] == pytest.approx(signals, abs=1e-6)
    assert seg["by_category"]["feature"] == "district" == max(signals, key=signals.__getitem__)

    df = pd.DataFrame({"cat": X_test["district"], "y": y_test, "p": p})
    df["d"] = np.log(df["p"]) - np.log(df["y"])
    by_cat = {g["category"]: g for g in seg["by_category"]["groups"]}
    for cat, rows in df.groupby("cat"):
        g = by_cat[cat]
        assert g["rows"] == len(rows)
        assert g["rmse_log"] == pytest.approx(math.sqrt((rows["d"] ** 2).mean()))
        assert g["mae"] == pytest.approx((rows["p"] - rows["y"]).abs().mean())
        assert g["bias"] == pytest.approx((rows["p"] - rows["y"]).mean())
        assert g["rows_train"] == int((X_train["district"] == cat).sum())
    counts = [g["rows"] for g in seg["by_category"]["groups"]]
    assert counts == sorted(counts, reverse=True) and sum(counts) == y_test.size

    df["band"] = pd.qcut(df["y"], 5, labels=False) + 1
    assert [b["band"] for b in seg["by_price"]] == [1, 2, 3, 4, 5]
    for b in seg["by_price"]:
        rows = df[df["band"] == b["band"]]
        assert (b["rows"], b["min"], b["max"]) == (len(rows), rows["y"].min(), rows["y"].max())
        assert b["mape"] == pytest.approx(((rows["p"] - rows["y"]).abs() / rows["y"]).mean())


def test_category_signal_adjusts_for_the_number_of_categories() -> None:
    rng = np.random.default_rng(5)
    y = rng.normal(size=60)
    # one category per row explains everything before adjustment and nothing after
    unique = np.array([f"r{i}" for i in range(60)], dtype=object)
    assert math.isnan(category_signal(unique, y))
    # a column of noise labels scores about 0, one that moves y scores near its R²
    noise = rng.choice(np.array(["a", "b", "c"], dtype=object), 60)
    assert abs(category_signal(noise, y)) < 0.1
    shifted = y + np.where(noise == "a", 3.0, 0.0)
    groups = {g: shifted[noise == g] for g in ("a", "b", "c")}
    within = sum(float(((v - v.mean()) ** 2).sum()) for v in groups.values())
    total = float(((shifted - shifted.mean()) ** 2).sum())
    assert category_signal(noise, shifted) == pytest.approx(1 - (within / 57) / (total / 59))
    assert category_signal(noise, shifted) > 0.5
    assert math.isnan(category_signal(noise, np.ones(60)))


def test_segment_metrics_without_categories_or_with_few_test_rows() -> None:
    from model.workflow.config import Feature, parse_config
    from model.workflow.train import segment_metrics

    doc = {
        "data": {"path": "x.csv", "target": "y"},
        "features": [{"name": "a", "kind": "numeric"}],
    }
    cfg = parse_config(doc)
    assert cfg.features == (Feature("a", "a", "numeric"),)
    X = {"a": np.arange(6.0)}
    y = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    seg = segment_metrics(cfg, X, y, {"a": np.arange(3.0)}, y[:3], y[:3] + 1)
    assert seg["by_category"] is None
    # three test rows: three non-empty quintiles, none of them invented
    assert [b["rows"] for b in seg["by_price"]] == [1, 1, 1]
    assert [b["bias"] for b in seg["by_price"]] == [1.0, 1.0, 1.0]
    # a target that is not positive has no log errors, and says so with NaN
    seg = segment_metrics(cfg, X, y - 3, {"a": np.arange(3.0)}, y[:3] - 3, y[:3] - 2)
    assert all(math.isnan(b["rmse_log"]) for b in seg["by_price"])
    assert all(b["rmse"] == pytest.approx(1.0) for b in seg["by_price"])


def test_card_renders_without_categories_license_or_log_errors(run: Run) -> None:
    """Read back from model.json, NaN metrics are null: the card shows a dash and the front
    matter leaves them out; no categorical feature and no license are said as such."""
    import copy
    from dataclasses import replace

    from model.workflow.card import render_model_card
    from model.workflow.config import DataInfo

    meta = copy.deepcopy(run.meta)
    meta["segments"]["by_category"] = None
    meta["test"]["rmse_log"] = None
    meta["data"]["license"] = ""
    cfg = replace(run.cfg, info=DataInfo())
    card = render_model_card(cfg, meta, [], "no plots")
    front = yaml.safe_load(card.split("---\n")[1])
    assert front["license"] == "unknown" and "rmse_log" not in front["metrics"]
    assert "No categorical feature: no per-category errors." in card
    assert "| RMSE of log price |" in card and "| — |" in card
    meta["data"]["license"] = "Free for research; ask before selling"
    front = yaml.safe_load(render_model_card(cfg, meta, []).split("---\n")[1])
    assert front["license"] == "other"
    assert front["license_name"] == "free-for-research-ask-before-selling"


def test_card_states_the_prediction_intervals_and_their_coverage(run: Run) -> None:
    rec = run.meta["intervals"]
    assert "### Prediction intervals" in run.card
    for lv in rec["levels"]:
        row = next(
            line for line in run.card.splitlines() if line.startswith(f"| {lv['level']:.0%}")
        )
        assert f"{lv['coverage_test']:.1%}" in row and f"{lv['halfwidth']:.4g}" in row
