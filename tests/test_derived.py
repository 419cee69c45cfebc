"""Derived features: arithmetic over the declared numeric features, computed in the pipeline.

The expression language is checked on its own (what parses, what is refused and why), the
transformer on a small block (values, missing operands, division by zero), the ``[[derived]]``
config table on its mistakes, and a config with derived features through a whole training run
and the unchanged service: clients send the declared features only and get the pipeline's
prices.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from test_train import SMALL, _subset, small_config  # tests/test_train.py

from app.main import create_app
from app.settings import Settings
from model.derived import DerivedFeatures, ExpressionError, expression_names, parse_expression
from model.fold import CannotFoldError, fold
from model.workflow.artifact import load_artifact
from model.workflow.config import ConfigError, load_config
from model.workflow.stream import check_engine
from model.workflow.train import build_pipeline, train

DERIVED = """
[[derived]]
name = "quality_x_area"
expr = "overall_quality * living_area"
description = "Quality times living area"
transform = "log"
[[derived]]
name = "area_per_car"
expr = "living_area / (garage_cars + 1)"
"""


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ("a + b", ["a", "b"]),
        ("-(a - 2.5) * b / a", ["a", "b"]),
        ("year_sold - year_built", ["year_sold", "year_built"]),
        ("(a * b) + c * a", ["a", "b", "c"]),
        ("3", []),
    ],
)
def test_arithmetic_parses_and_names_its_columns(expr: str, names: list[str]) -> None:
    parse_expression(expr)
    assert expression_names(expr) == names


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("a ** 2", r"only \+ - \* / are allowed"),
        ("a // b", r"only \+ - \* / are allowed"),
        ("log(a)", "not call 'log\\(a\\)'"),
        ("__import__('os').system('x')", "not call"),
        ("a.real", "not attribute"),
        ("a < b", "not compare"),
        ("a[0]", "not subscript"),
        ("'text'", "'text' is not a number"),
        ("True + a", "True is not a number"),
        ("not a", "only unary minus"),
        ("a +", "not an arithmetic expression"),
        ("x = 1", "not an arithmetic expression"),
        ("  ", "expected an arithmetic expression"),
    ],
)
def test_anything_but_arithmetic_is_refused(expr: str, message: str) -> None:
    with pytest.raises(ExpressionError, match=message):
        parse_expression(expr)


def test_derived_features_compute_in_order_with_missing_as_missing() -> None:
    X = np.array([[1.0, 2.0, 4.0], [np.nan, 1.0, 2.0], [3.0, 1.0, 0.0]])
    d = DerivedFeatures(["a", "b", "c"], [("s", "a + b"), ("r", "s / c"), ("m", "-c * 2 + 1")])
    out = d.fit_transform(X)
    expected = np.array([[3.0, 0.75, -7.0], [np.nan, np.nan, -3.0], [4.0, np.nan, 1.0]])
    np.testing.assert_array_equal(out, expected)  # x / 0 is missing, not an infinity
    assert d.get_feature_names_out() == ["s", "r", "m"]
    np.testing.assert_array_equal(d.transform(X[:1]), expected[:1])


@pytest.mark.parametrize(
    ("columns", "expressions", "message"),
    [
        (["a", "b"], [("s", "a + z")], r"unknown column\(s\) \['z'\]"),
        (["a", "b"], [("s", "t + 1"), ("t", "a")], r"unknown column\(s\) \['t'\]"),
        (["a", "b"], [("a", "b + 1")], "'a' is already a column"),
        (["a"], [("s", "a")], "X has 2 columns but columns names 1"),
        (["a", "b"], [], "at least one"),
        (["a", "b"], [("s", "a ** 2")], "only"),
    ],
)
def test_derived_features_refuse_bad_specs(
    columns: list[str], expressions: list[tuple[str, str]], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        DerivedFeatures(columns, expressions).fit(np.ones((3, 2)))


def test_config_reads_derived_features(tmp_path: Path) -> None:
    cfg = load_config(small_config(tmp_path, DERIVED))
    assert [(d.name, d.transform) for d in cfg.derived] == [
        ("quality_x_area", "log"),
        ("area_per_car", None),
    ]
    assert cfg.derived[0].description == "Quality times living area"
    assert [f.name for f in cfg.features][-1] == "dwelling_class"  # inputs unchanged


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('[[derived]]\nname = "x"\nexpr = "living_aera * 2"\n', "did you mean 'living_area'"),
        ('[[derived]]\nname = "x"\nexpr = "neighborhood + 1"\n', "'neighborhood' is categorical"),
        ('[[derived]]\nname = "x"\nexpr = "living_area ** 2"\n', r"derived\[0\]\.expr: .*only"),
        ('[[derived]]\nname = "living_area"\nexpr = "garage_cars"\n', "already a feature"),
        ('[[derived]]\nname = "Bad"\nexpr = "garage_cars"\n', "snake_case"),
        ('[[derived]]\nname = "x"\nexpr = "garage_cars"\ntransform = "sqrt"\n', "only 'log'"),
        ('[[derived]]\nname = "x"\nexpr = "garage_cars"\nunits = "m"\n', "did you mean 'unit'"),
        ('[[derived]]\nname = "x"\n', "missing required key 'expr'"),
        ('[[derived]]\nname = "x"\nexpr = "2 * 3"\n', "reads no feature"),
        (
            '[[derived]]\nname = "x"\nexpr = "y + 1"\n[[derived]]\nname = "y"\nexpr = "2"\n',
            r"derived\[0\]\.expr: 'y' is not a feature defined above",
        ),
    ],
)
def test_config_mistakes_in_derived_are_named(tmp_path: Path, extra: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(small_config(tmp_path, extra))


def test_the_streamed_engines_refuse_derived_features(tmp_path: Path) -> None:
    cfg = load_config(small_config(tmp_path, DERIVED))
    check_engine(cfg, "memory")
    with pytest.raises(ConfigError, match=r"\[\[derived\]\] features cannot train with"):
        check_engine(cfg, "stream")


HOUSES = [
    {"living_area": 1500, "overall_quality": 6, "neighborhood": "NAmes"},
    {"living_area": 2400, "overall_quality": 8, "garage_cars": None, "neighborhood": "X"},
]


def _table(rows: list[dict[str, Any]]) -> dict[str, Any]:
    names = ["living_area", "overall_quality", "garage_cars", "neighborhood", "dwelling_class"]
    out: dict[str, Any] = {}
    for name in names:
        values = [r.get(name) for r in rows]
        if name in ("neighborhood", "dwelling_class"):
            out[name] = np.array(values, dtype=object)
        else:
            out[name] = np.array([math.nan if v is None else v for v in values], float)
    return out


def _features_steps(pipe: Any) -> list[Any]:
    """The pipeline's features step, or a vote's base models' own (fitted if fitted)."""
    if pipe.named_steps["features"] != "passthrough":
        return [pipe.named_steps["features"]]
    reg = pipe.named_steps["regressor"]
    vote = getattr(reg, "regressor_", reg.regressor)
    bases = getattr(vote, "estimators_", None) or [est for _, est in vote.estimators]
    return [base.named_steps["features"] for base in bases]


@pytest.mark.parametrize(
    "model",
    [
        "",  # the small config's ridge
        '[model]\nestimator = "gbdt"\nparams = { max_iter = 20, min_samples_leaf = 5 }\n',
        '[model]\nestimator = "voting"\nbase = ["ridge", "gbdt"]\n'
        "params = { weights = [0.6, 0.4], gbdt__max_iter = 20, gbdt__min_samples_leaf = 5 }\n",
    ],
    ids=["ridge", "gbdt", "voting"],
)
def test_derived_features_train_and_serve_from_the_declared_inputs(
    model: str, tmp_path: Path
) -> None:
    data = _subset(tmp_path / "ames_small.csv")
    text = SMALL.format(data=data)
    if model:
        text = text.replace('[model]\nestimator = "ridge"\ngrid = { alpha = [1.0, 10.0] }\n', model)
        assert model in text
    path = tmp_path / "cfg.toml"
    path.write_text(text + DERIVED)
    cfg = load_config(path)
    for features in _features_steps(build_pipeline(cfg)):
        blocks = {name: cols for name, _, cols in features.transformers}
        assert blocks["derived"] == ["overall_quality", "living_area", "garage_cars"]

    result = train(cfg, tmp_path / "model.joblib", tmp_path / "runs", plots=False)
    card = (result.run_dir / "MODEL_CARD.md").read_text()
    assert "| `quality_x_area` | `overall_quality * living_area`, then log1p |" in card
    art = load_artifact(tmp_path / "model.joblib")
    assert [f["name"] for f in art.metadata["features"]] == list(_table(HOUSES))
    for features in _features_steps(art.pipeline):
        names = features.get_feature_names_out()
        assert any("quality_x_area" in n for n in names)
        assert any("area_per_car" in n for n in names)
    assert result.metadata["cv"]["rmse_log"]["mean"] < 0.3
    with pytest.raises(CannotFoldError):  # not per-column terms: the general path serves it
        fold(art.pipeline)

    expected = art.pipeline.predict(_table(HOUSES))
    assert np.isfinite(expected).all()
    settings = Settings(model_path=str(tmp_path / "model.joblib"), admin_token="t" * 32)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        r = client.post("/predict", json={"instances": HOUSES})
        assert r.status_code == 200, r.text
        np.testing.assert_allclose(r.json()["prices"], expected, rtol=1e-12)
        r = client.post("/predict", json={**HOUSES[0], "quality_x_area": 5.0})
        assert r.status_code == 422  # a derived value is not an input a client may send
