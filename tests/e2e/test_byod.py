"""Bring your own data, end to end: ``init`` -> ``train`` -> ``predict`` -> a served model, on
CSVs unlike the bundled one, with no hand edit between the commands.

The files are made here: the bundled sales with other column spellings, another target name,
semicolons, Latin-1 and ``N/A`` markers; and synthetic sales with German column names, a text
identifier and a constant column. Each goes through the same four steps a new user runs.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from e2e.conftest import Server
from model.workflow.artifact import load_artifact
from model.workflow.cli import main

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from test_init import houses, write_csv

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
#: Words of the bundled data set that must not appear in another data set's model card.
AMES_WORDS = re.compile(r"Ames|Iowa|De Cock|NAmes|CollgCr|OldTown", re.IGNORECASE)


def camel(column: str) -> str:
    """``Lot.Area`` -> ``LotArea``, ``X1st.Flr.SF`` -> ``1stFlrSF``: another export's spelling."""
    parts = column.removeprefix("X").split(".")
    return "".join(p[:1].upper() + p[1:] for p in parts)


def renamed_ames(path: Path, rows: int = 700) -> Path:
    """The bundled sales as another tool exports them: CamelCase names, ``SalePrice``,
    semicolons, Latin-1 with an accented category, and ``N/A`` for missing."""
    with (ROOT / "data" / "ames.csv").open(newline="") as fh:
        records = list(csv.reader(fh))[: rows + 1]
    header = ["SalePrice" if h == "price" else camel(h) for h in records[0]]
    hood = records[0].index("Neighborhood")
    out = io.StringIO()
    w = csv.writer(out, delimiter=";", lineterminator="\n")
    w.writerow(header)
    for r in records[1:]:
        r = ["N/A" if v in ("", "NA") else v for v in r]
        if r[hood] == "NAmes":
            r[hood] = "Nördliche"
        w.writerow(r)
    path.write_bytes(out.getvalue().encode("latin-1"))
    return path


def init_train(data: Path, target: str, tmp: Path) -> tuple[Path, dict[str, Any]]:
    cfg = tmp / "config.toml"
    assert main(["init", str(data), "--target", target, "--out", str(cfg)]) == 0
    model = tmp / "model.joblib"
    argv = ["train", "--config", str(cfg), "--out", str(model), "--runs-dir", str(tmp / "runs")]
    assert main([*argv, "--quiet"]) == 0
    return model, load_artifact(model).metadata


def predict_file(model: Path, data: Path, out: Path) -> list[dict[str, str]]:
    assert main(["predict", "--model", str(model), "--input", str(data), "--output", str(out)]) == 0
    with out.open(newline="") as fh:
        return list(csv.DictReader(fh))


def example_house(meta: dict[str, Any]) -> dict[str, Any]:
    return {f["name"]: f["example"] for f in meta["features"] if f["example"] is not None}


def check_served(server: Server, meta: dict[str, Any], model: Path) -> None:
    house = example_house(meta)
    r = httpx.post(server.url + "/predict", json=house, timeout=10)
    assert r.status_code == 200, r.text
    expected = float(load_artifact(model).pipeline.predict([house])[0])
    assert math.isclose(r.json()["price"], expected, rel_tol=1e-9)
    assert (
        httpx.get(server.url + "/model", timeout=10).json()["model_version"]
        == (meta["model_version"])
    )


def test_renamed_semicolon_latin1_sales(tmp_path: Path, serve: Callable[..., Server]) -> None:
    data = renamed_ames(tmp_path / "sales.csv")
    model, meta = init_train(data, "SalePrice", tmp_path)
    assert meta["data"]["format"]["delimiter"] == ";"
    assert meta["data"]["format"]["encoding"] in ("cp1252", "latin-1")
    hood = next(f for f in meta["features"] if f["name"] == "neighborhood")
    assert "Nördliche" in hood["categories"]
    assert meta["cv"]["rmse_log"]["mean"] < 0.2
    rows = predict_file(model, data, tmp_path / "prices.csv")
    assert len(rows) == 700
    assert [r["PID"] for r in rows[:3]] == ["526301100", "526350040", "526351010"]
    prices = np.array([float(r["price"]) for r in rows])
    assert np.isfinite(prices).all() and (prices > 0).all()
    check_served(serve({"MODEL_PATH": str(model)}), meta, model)


def test_synthetic_sales_with_other_names(tmp_path: Path, serve: Callable[..., Server]) -> None:
    data = write_csv(tmp_path / "verkäufe.csv", houses(300, seed=3))
    model, meta = init_train(data, "Kaufpreis", tmp_path)
    assert {f["name"] for f in meta["features"]} == {"grosse_m2", "zimmer", "baujahr", "stadtteil"}
    assert meta["cv"]["rmse_log"]["mean"] < 0.15  # the noise is 0.1 on the log scale
    rows = predict_file(model, data, tmp_path / "prices.json.csv")
    assert [r["Sale ID"] for r in rows[:2]] == ["S-1000", "S-1001"]
    card = next((tmp_path / "runs").glob("*/MODEL_CARD.md")).read_text()
    assert not AMES_WORDS.search(card), AMES_WORDS.search(card)
    server = serve({"MODEL_PATH": str(model)})
    check_served(server, meta, model)
    bad = {**example_house(meta), "zimmer": 2.5}
    r = httpx.post(server.url + "/predict", json=bad, timeout=10)
    assert r.status_code == 422 and "zimmer" in json.dumps(r.json())
