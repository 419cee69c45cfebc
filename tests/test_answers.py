"""Intervals and explanations in the service's answers, through FastAPI's TestClient.

Two small real artifacts: a linear one (log target, served by the folded terms) that stores
split-conformal intervals, and test_app_api's regression tree, which stores none.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from exposition import metric  # tests/exposition.py
from fastapi.testclient import TestClient
from test_app_api import (
    FEATURES,
    HOUSE,
    build_artifact,
    make_client,
    training_table,
)  # tests/test_app_api.py

from app.settings import Settings, SettingsError
from model.compose import ColumnTransformer, TransformedTargetRegressor
from model.linear import Ridge
from model.pipeline import Pipeline
from model.preprocessing import OneHotEncoder, SimpleImputer, StandardScaler
from model.selection import cross_val_predict
from model.workflow.artifact import load_artifact, save_artifact
from model.workflow.intervals import calibrate

OTHER = {"living_area": 2400, "lot_area": None, "neighborhood": "NoRidge"}


def build_linear(directory: Path) -> str:
    """A ridge on log-price with intervals calibrated on its out-of-fold residuals."""
    cols, y = training_table(FEATURES)
    pipe = Pipeline(
        [
            (
                "features",
                ColumnTransformer(
                    [
                        (
                            "numeric",
                            Pipeline([("impute", SimpleImputer()), ("scale", StandardScaler())]),
                            ["living_area", "lot_area"],
                        ),
                        ("categorical", OneHotEncoder(), ["neighborhood", "garage_type"]),
                    ]
                ),
            ),
            ("regressor", TransformedTargetRegressor(Ridge(alpha=1.0), func="log")),
        ]
    )
    oof = cross_val_predict(pipe, cols, y, cv=5)
    pipe.fit(cols, y)
    tree = load_artifact(build_artifact(directory, "tree-1", filename="tree.joblib")).metadata
    metadata = {
        **tree,
        "model_version": "linear-1",
        "intervals": calibrate(y[:1000], oof[:1000], y[1000:], oof[1000:], "log"),
    }
    path = directory / "linear.joblib"
    save_artifact(path, pipe, metadata)
    return str(path)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("answers")
    linear = build_linear(d)
    return {"linear": linear, "tree": str(d / "tree.joblib")}


@pytest.fixture(scope="module")
def linear(models: dict[str, str]) -> Iterator[TestClient]:
    with make_client(models["linear"], max_batch_size=100) as c:
        yield c


@pytest.fixture(scope="module")
def tree(models: dict[str, str]) -> Iterator[TestClient]:
    with make_client(models["tree"], max_batch_size=100) as c:
        yield c


def halfwidth(path: str, level: float) -> float:
    levels = load_artifact(path).metadata["intervals"]["levels"]
    return float(next(e["halfwidth"] for e in levels if e["level"] == level))


# --- intervals -------------------------------------------------------------------------------


def test_every_answer_carries_its_interval_in_dollars(
    linear: TestClient, models: dict[str, str]
) -> None:
    q = halfwidth(models["linear"], 0.9)
    body = linear.post("/predict", json=HOUSE).json()
    price, iv = body["price"], body["interval"]
    assert iv["level"] == 0.9
    assert iv["low"] == pytest.approx(price * math.exp(-q), rel=1e-12)
    assert iv["high"] == pytest.approx(price * math.exp(q), rel=1e-12)
    assert iv["low"] < price < iv["high"]
    batch = linear.post("/predict", json={"instances": [HOUSE, OTHER, HOUSE]}).json()
    assert len(batch["intervals"]) == 3
    for p, one in zip(batch["prices"], batch["intervals"], strict=True):
        assert one["low"] == pytest.approx(p * math.exp(-q), rel=1e-12)
    assert batch["intervals"][0] == iv


def test_interval_level_setting_picks_a_stored_level(models: dict[str, str]) -> None:
    q = halfwidth(models["linear"], 0.95)
    with make_client(models["linear"], interval_level=0.95) as c:
        body = c.post("/predict", json=HOUSE).json()
        assert body["interval"]["level"] == 0.95
        assert body["interval"]["high"] == pytest.approx(body["price"] * math.exp(q), rel=1e-12)
        served = c.get("/model").json()["served_interval"]
        assert served == {"level": 0.95, "halfwidth": q, "space": "log"}


def test_an_unstored_interval_level_is_a_clear_start_up_error(models: dict[str, str]) -> None:
    with make_client(models["linear"], interval_level=0.85) as c:
        r = c.get("/health/ready")
        assert r.status_code == 503
        reason = r.json()["reason"]
        assert "INTERVAL_LEVEL=0.85" in reason and "0.8, 0.9, 0.95" in reason, reason
        assert c.post("/predict", json=HOUSE).status_code == 503


def test_interval_level_must_be_a_probability() -> None:
    assert Settings.from_env({"INTERVAL_LEVEL": "0.95"}).interval_level == 0.95
    for bad in ("1", "1.5", "0", "-0.1", "ninety"):
        with pytest.raises(SettingsError, match="INTERVAL_LEVEL"):
            Settings.from_env({"INTERVAL_LEVEL": bad})


def test_an_artifact_without_intervals_serves_without_them(tree: TestClient) -> None:
    body = tree.post("/predict", json=HOUSE).json()
    assert "interval" not in body and body["price"] > 0
    assert "intervals" not in tree.post("/predict", json={"instances": [HOUSE]}).json()
    assert tree.get("/model").json()["served_interval"] is None


def test_model_shows_the_stored_intervals(linear: TestClient, models: dict[str, str]) -> None:
    assert linear.post("/predict", json=HOUSE).status_code == 200  # the rule has been used
    meta = linear.get("/model").json()
    stored = load_artifact(models["linear"]).metadata["intervals"]
    assert meta["intervals"] == stored
    assert [e["level"] for e in meta["intervals"]["levels"]] == [0.8, 0.9, 0.95]
    assert meta["served_interval"]["level"] == 0.9
    assert set(meta["served_interval"]) == {"level", "halfwidth", "space"}


# --- explanations ----------------------------------------------------------------------------


def test_explain_adds_up_to_the_price_for_a_linear_model(linear: TestClient) -> None:
    body = linear.post("/predict?explain=true", json=HOUSE).json()
    e = body["explanation"]
    assert e["space"] == "log" and e["method"] == "exact-linear"
    assert set(e["contributions"]) == {f["name"] for f in FEATURES}
    total = e["baseline"] + sum(e["contributions"].values())
    assert math.isclose(math.exp(total), body["price"], rel_tol=1e-9)
    assert "interval" in body
    assert "explanation" not in linear.post("/predict?explain=false", json=HOUSE).json()
    assert "explanation" not in linear.post("/predict", json=HOUSE).json()


@pytest.mark.parametrize("n", [2, 40])  # the folded terms, then the pipeline's NumPy
def test_explain_a_batch_one_per_house(linear: TestClient, n: int) -> None:
    rows = [HOUSE, OTHER] * (n // 2)
    body = linear.post("/predict?explain=1", json={"instances": rows}).json()
    assert len(body["explanations"]) == n
    for price, e in zip(body["prices"], body["explanations"], strict=True):
        total = e["baseline"] + sum(e["contributions"].values())
        assert math.isclose(math.exp(total), price, rel_tol=1e-9)


def test_explain_a_tree_by_path_contributions(tree: TestClient) -> None:
    body = tree.post("/predict?explain=true", json={"instances": [HOUSE, OTHER]}).json()
    for price, e in zip(body["prices"], body["explanations"], strict=True):
        assert e["space"] == "price" and e["method"] == "saabas"
        total = e["baseline"] + sum(e["contributions"].values())
        assert math.isclose(total, price, rel_tol=1e-9)
        assert set(e["contributions"]) == {f["name"] for f in FEATURES}
    assert np.std([e["baseline"] for e in body["explanations"]]) == 0.0


def test_explain_must_be_a_boolean(linear: TestClient) -> None:
    r = linear.post("/predict?explain=maybe", json=HOUSE)
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["query", "explain"]
    assert "maybe" in r.json()["detail"][0]["msg"]
    assert linear.post("/predict?other=1", json=HOUSE).status_code == 200


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (b"", False),
        (b"other=1", False),
        *((b"explain=" + v.encode(), True) for v in ("1", "true", "yes", "on")),
        *((b"explain=" + v.encode(), False) for v in ("0", "false", "no", "off")),
        (b"explain=TRUE", True),
        (b"explain=%74rue", True),
        (b"explain=+on+", True),
        (b"a=1&explain=true", True),
        (b"explain=true&explain=false", False),  # the last one wins
        (b"explain=false&explain=yes", True),
        (b"explained=1", False),
    ],
)
def test_the_explain_flag_reads_every_spelling(query: bytes, expected: bool) -> None:
    from app.answers import explain_flag

    assert explain_flag({"query_string": query}) is expected


def test_docs_document_explain_with_an_example(linear: TestClient) -> None:
    op = linear.get("/openapi.json").json()["paths"]["/predict"]["post"]
    (param,) = op["parameters"]
    assert param["name"] == "explain" and param["in"] == "query"
    assert param["schema"] == {"type": "boolean", "default": False}
    examples = op["responses"]["200"]["content"]["application/json"]["examples"]
    e = examples["house_explained"]["value"]
    total = e["explanation"]["baseline"] + sum(e["explanation"]["contributions"].values())
    assert math.isclose(math.exp(total), e["price"], rel_tol=1e-9)
    assert "interval" in examples["house"]["value"] and "intervals" in examples["batch"]["value"]


# --- houseprice predict ----------------------------------------------------------------------


def cli_rows(artifact_path: str, tmp_path: Path) -> Path:
    """Three houses of the default model (the schema's example, a variant, one in error)."""
    from model.workflow.artifact import load_artifact as load

    meta = load(artifact_path).metadata
    one = {f["name"]: f["example"] for f in meta["features"] if f["example"] is not None}
    numeric = next(f for f in meta["features"] if f["kind"] != "categorical" and f["required"])
    rows = [one, {**one, numeric["name"]: numeric["max"]}, {**one, numeric["name"]: "many"}]
    src = tmp_path / "houses.json"
    src.write_text(json.dumps(rows))
    return src


def test_predict_cli_writes_the_interval_and_explanations_in_csv(
    artifact_path: str, tmp_path: Path
) -> None:
    from model.workflow.cli import main

    src, out = cli_rows(artifact_path, tmp_path), tmp_path / "out.csv"
    code = main(["predict", "--model", artifact_path, "--input", str(src), "--output", str(out),
                 "--explain", "--quiet"])  # fmt: skip
    assert code == 2  # the third row is in error; the others are priced
    rows = list(csv.DictReader(out.open()))
    q = halfwidth(artifact_path, 0.9)
    names = [f["name"] for f in load_artifact(artifact_path).metadata["features"]]
    header = list(rows[0])
    assert header[:3] == ["price", "low", "high"]
    assert {f"contribution_{n}" for n in names} <= set(header)
    for row in rows[:2]:
        price = float(row["price"])
        assert float(row["low"]) == pytest.approx(price * math.exp(-q), rel=1e-12)
        assert float(row["high"]) == pytest.approx(price * math.exp(q), rel=1e-12)
        assert row["explanation_space"] == "log" and row["explanation_method"] == "exact-linear"
        total = float(row["explanation_baseline"]) + sum(
            float(row[f"contribution_{n}"]) for n in names
        )
        assert math.isclose(math.exp(total), price, rel_tol=1e-9)
    bad = rows[2]
    assert bad["price"] == bad["low"] == bad["explanation_baseline"] == ""
    assert "error:" in bad["warnings"]


def test_predict_cli_explanation_columns_do_not_depend_on_the_first_chunk(
    artifact_path: str, tmp_path: Path
) -> None:
    """A first chunk whose rows are all in error still writes the contribution columns in
    the header, so the later chunks' rows line up with it."""
    from model.workflow.cli import main

    src, out = cli_rows(artifact_path, tmp_path), tmp_path / "out.csv"
    rows = json.loads(src.read_text())
    src.write_text(json.dumps([rows[2], rows[0]]))  # the bad row first, alone in chunk 1
    code = main(["predict", "--model", artifact_path, "--input", str(src), "--output", str(out),
                 "--explain", "--chunk-rows", "1", "--quiet"])  # fmt: skip
    assert code == 2
    lines = list(csv.reader(out.open()))
    assert len({len(line) for line in lines}) == 1  # every row as wide as the header
    names = [f["name"] for f in load_artifact(artifact_path).metadata["features"]]
    good = dict(zip(lines[0], lines[2], strict=True))
    total = float(good["explanation_baseline"]) + sum(
        float(good[f"contribution_{n}"]) for n in names
    )
    assert math.isclose(math.exp(total), float(good["price"]), rel_tol=1e-9)


def test_predict_cli_explains_in_json_and_picks_the_level(
    artifact_path: str, tmp_path: Path
) -> None:
    from model.workflow.cli import main

    src, out = cli_rows(artifact_path, tmp_path), tmp_path / "out.json"
    argv = ["predict", "--model", artifact_path, "--input", str(src), "--output", str(out)]
    assert main([*argv, "--explain", "--interval-level", "0.8", "--quiet"]) == 2
    rows = json.loads(out.read_text())
    q = halfwidth(artifact_path, 0.8)
    for row in rows[:2]:
        assert row["high"] == pytest.approx(row["price"] * math.exp(q), rel=1e-12)
        e = row["explanation"]
        total = e["baseline"] + sum(e["contributions"].values())
        assert math.isclose(math.exp(total), row["price"], rel_tol=1e-9)
    assert rows[2]["explanation"] is None and rows[2]["low"] is None


def test_predict_cli_refuses_a_level_the_artifact_lacks(
    artifact_path: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from model.workflow.cli import main

    src = cli_rows(artifact_path, tmp_path)
    argv = ["predict", "--model", artifact_path, "--input", str(src), "--interval-level", "0.85"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "--interval-level 0.85" in err and "0.8, 0.9, 0.95" in err


def test_a_model_failing_to_explain_is_a_500_and_nothing_is_priced(
    models: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import app.answers

    def refuse(*_: Any) -> Any:
        raise ValueError("X: column 'lot_area' holds a value log1p refuses")

    monkeypatch.setattr(app.answers, "explain", refuse)
    with make_client(models["tree"]) as c:
        r = c.post("/predict?explain=true", json=HOUSE)
        assert r.status_code == 500 and r.json() == {"detail": "explanation failed"}
        metrics = c.get("/metrics").text
        assert metric(metrics, "houseprice_prediction_errors_total", reason="model_error") == 1
        assert c.post("/predict", json=HOUSE).status_code == 200
