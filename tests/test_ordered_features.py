"""Categorical features declared as a scale (``order = [lowest, ..., highest]`` in the config).

The config refuses the mistakes by name; the linear models get each such feature's rank (in
addition to its one-hot columns), a missing or undeclared category one below the lowest; the
tree models keep the category as it is; a whole training run serves through the unchanged API.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from test_train import _subset, small_config  # tests/test_train.py

from app.main import create_app
from app.settings import Settings
from model.fold import CannotFoldError, fold
from model.workflow.artifact import load_artifact
from model.workflow.config import ConfigError, load_config
from model.workflow.stream import check_engine
from model.workflow.train import build_pipeline, ordered_block, train

KITCHEN = """
[[features]]
name = "kitchen_quality"
column = "Kitchen.Qual"
kind = "categorical"
required = false
order = ["Po", "Fa", "TA", "Gd", "Ex"]
"""


def test_config_reads_the_order(tmp_path: Path) -> None:
    cfg = load_config(small_config(tmp_path, KITCHEN))
    orders = {f.name: f.order for f in cfg.features}
    assert orders["kitchen_quality"] == ("Po", "Fa", "TA", "Gd", "Ex")
    assert orders["neighborhood"] is None


@pytest.mark.parametrize(
    ("order", "message"),
    [
        ('["Po"]', "two or more distinct"),
        ('["Po", "Fa", "Po"]', "two or more distinct"),
        ('["Po", 2]', "two or more distinct"),
        ('"Po, Fa"', "order"),
    ],
)
def test_config_refuses_a_bad_order(tmp_path: Path, order: str, message: str) -> None:
    extra = KITCHEN.replace('["Po", "Fa", "TA", "Gd", "Ex"]', order)
    with pytest.raises(ConfigError, match=rf"features\[5\]\.order.*{message}|{message}"):
        load_config(small_config(tmp_path, extra))


def test_config_refuses_an_order_on_a_numeric_feature(tmp_path: Path) -> None:
    extra = '[[features]]\nname = "cars"\ncolumn = "Garage.Cars"\nkind = "numeric"\n'
    extra += 'required = false\norder = ["a", "b"]\n'
    with pytest.raises(ConfigError, match=r"features\[5\]\.order: only a categorical"):
        load_config(small_config(tmp_path, extra))


def test_the_streamed_engines_refuse_an_order(tmp_path: Path) -> None:
    cfg = load_config(small_config(tmp_path, KITCHEN))
    check_engine(cfg, "memory")
    with pytest.raises(ConfigError, match=r"kitchen_quality.*cannot train with --engine stream"):
        check_engine(cfg, "stream")


def test_the_rank_is_the_place_on_the_scale_and_missing_is_below_it(tmp_path: Path) -> None:
    cfg = load_config(small_config(tmp_path, KITCHEN))
    ((name, step, columns),) = ordered_block(cfg)
    assert (name, columns) == ("ordered", ["kitchen_quality"])
    X = np.array([["Gd"], ["Po"], [None], ["Ex"], ["Zz"], [math.nan], ["TA"]], dtype=object)
    out = step.fit_transform(X).ravel()
    raw = np.array([3.0, 0.0, -1.0, 4.0, -1.0, -1.0, 2.0])  # undeclared "Zz" as missing
    np.testing.assert_allclose(out, (raw - raw.mean()) / raw.std(), rtol=1e-12)
    assert ordered_block(load_config(small_config(tmp_path, ""))) == []


def test_only_the_linear_models_get_the_rank(tmp_path: Path) -> None:
    text = KITCHEN
    linear = build_pipeline(load_config(small_config(tmp_path, text))).named_steps["features"]
    blocks = {name: cols for name, _, cols in linear.transformers}
    assert blocks["ordered"] == ["kitchen_quality"]
    assert "kitchen_quality" in blocks["categorical"]  # its one-hot columns stay
    gbdt = load_config(small_config(tmp_path, text)).with_overrides(estimator="gbdt", grid={})
    native = build_pipeline(gbdt).named_steps["features"]
    assert "ordered" not in {name for name, _, _ in native.transformers}


HOUSES = [
    {"living_area": 1500, "overall_quality": 6, "neighborhood": "NAmes", "kitchen_quality": "Gd"},
    {"living_area": 1500, "overall_quality": 6, "neighborhood": "NAmes", "kitchen_quality": "Ex"},
    {"living_area": 2400, "overall_quality": 8, "neighborhood": "X", "kitchen_quality": None},
]


def _table(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in ["living_area", "overall_quality", "garage_cars"]:
        out[name] = np.array([math.nan if r.get(name) is None else r[name] for r in rows], float)
    for name in ["neighborhood", "dwelling_class", "kitchen_quality"]:
        out[name] = np.array([r.get(name) for r in rows], dtype=object)
    return out


def test_a_run_with_an_ordered_feature_trains_and_serves(tmp_path: Path) -> None:
    data = _subset(tmp_path / "ames_small.csv")
    cfg = load_config(small_config(tmp_path, KITCHEN, data))
    result = train(cfg, tmp_path / "model.joblib", tmp_path / "runs", plots=False)
    assert result.metadata["cv"]["rmse_log"]["mean"] < 0.3
    card = (result.run_dir / "MODEL_CARD.md").read_text()
    ordered = (
        "- Ordered categories (`kitchen_quality`): the linear models also read each one's rank"
    )
    assert ordered in card
    art = load_artifact(tmp_path / "model.joblib")
    names = art.pipeline.named_steps["features"].get_feature_names_out()
    assert sum("kitchen_quality" in n for n in names) >= 4  # one-hot columns and the rank
    with pytest.raises(CannotFoldError):  # the general path serves it
        fold(art.pipeline)
    expected = art.pipeline.predict(_table(HOUSES))
    assert np.isfinite(expected).all() and expected[0] != expected[1]
    settings = Settings(model_path=str(tmp_path / "model.joblib"), admin_token="t" * 32)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        r = client.post("/predict", json={"instances": HOUSES})
        assert r.status_code == 200, r.text
        np.testing.assert_allclose(r.json()["prices"], expected, rtol=1e-12)
