"""The tree ensembles and the combined models through the training workflow and the service.

A config naming ``gbdt``, ``forest``, ``stack`` or ``voting`` trains through
:func:`model.workflow.train.train` like a linear one, and its artifact serves through the
unchanged app: ``/predict``, the V2 route and ``/model`` give the pipeline's own prices.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from test_train import SMALL, _subset  # tests/test_train.py

from app.main import create_app
from app.settings import Settings
from model.ensemble import HistGradientBoostingRegressor, StackingRegressor
from model.residual import ResidualRegressor
from model.workflow.artifact import load_artifact
from model.workflow.config import ConfigError, load_config
from model.workflow.train import build_pipeline, prepare_data, search_grid, train

RIDGE_MODEL = """[model]
estimator = "ridge"
grid = {{ alpha = [1.0, 10.0] }}
"""

MODELS = {
    "gbdt": """[model]
estimator = "gbdt"
params = { max_iter = 20, min_samples_leaf = 5 }
grid = { learning_rate = [0.1, 0.3] }
""",
    "stack": """[model]
estimator = "stack"
base = ["ridge", "gbdt"]
params = { ridge__alpha = 10.0, gbdt__max_iter = 20, cv = 3 }
grid = { gbdt__learning_rate = [0.1, 0.3] }
""",
}

HOUSE = {"living_area": 1500, "overall_quality": 6, "neighborhood": "NAmes"}
ODD = {  # a never-seen neighbourhood, the optional fields given as null
    "living_area": 2400,
    "overall_quality": 8,
    "garage_cars": None,
    "neighborhood": "Atlantis",
    "dwelling_class": None,
}


def _config_text(model: str, data: Path) -> str:
    text = SMALL.format(data=data)
    assert RIDGE_MODEL.format() in text
    return text.replace(RIDGE_MODEL.format(), model)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _subset(tmp_path_factory.mktemp("ens") / "ames_small.csv")


@pytest.fixture(scope="module", params=sorted(MODELS))
def trained(
    request: pytest.FixtureRequest, data: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    d = tmp_path_factory.mktemp(request.param)
    cfg_path = d / "cfg.toml"
    cfg_path.write_text(_config_text(MODELS[request.param], data))
    result = train(load_config(cfg_path), d / "model.joblib", d / "runs", plots=False)
    return {"name": request.param, "artifact": d / "model.joblib", "result": result}


@pytest.fixture(scope="module")
def client(trained: dict[str, Any]) -> Iterator[TestClient]:
    settings = Settings(model_path=str(trained["artifact"]), admin_token="t" * 32)
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        yield c


def _table(rows: list[dict[str, Any]], features: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in features:
        values = [r.get(f["name"]) for r in rows]
        if f["kind"] == "categorical":
            col = np.empty(len(values), dtype=object)
            col[:] = values
            out[f["name"]] = col
        else:
            out[f["name"]] = np.array([math.nan if v is None else v for v in values], float)
    return out


def test_train_searches_the_grid_and_records_the_model(trained: dict[str, Any]) -> None:
    meta = trained["result"].metadata
    assert len(meta["search"]["candidates"]) == 2
    assert math.isfinite(meta["cv"]["rmse_log"]["mean"]) and meta["cv"]["rmse_log"]["mean"] < 0.3
    expected = {"gbdt": "HistGradientBoostingRegressor", "stack": "StackingRegressor"}
    assert meta["model"]["estimator"] == expected[trained["name"]]
    json.dumps(meta)  # every recorded value is JSON (a stack's base models by their repr)
    metrics = json.loads((trained["result"].run_dir / "metrics.json").read_text())
    assert metrics["model"]["estimator"] == meta["model"]["estimator"]


def test_predict_serves_the_pipelines_prices(client: TestClient, trained: dict[str, Any]) -> None:
    art = load_artifact(trained["artifact"])
    features = art.metadata["features"]
    r = client.post("/predict", json={"instances": [HOUSE, ODD]})
    assert r.status_code == 200, r.text
    body = r.json()
    expected = art.pipeline.predict(_table([HOUSE, ODD], features))
    np.testing.assert_allclose(body["prices"], expected, rtol=1e-12)
    one = client.post("/predict", json=HOUSE).json()
    assert one["price"] == pytest.approx(float(expected[0]), rel=1e-12)
    assert client.post("/predict", json=ODD).json()["unknown_categories"] == {
        "neighborhood": "Atlantis"
    }
    v2 = {
        "inputs": [
            {
                "name": f["name"],
                "shape": [2],
                "datatype": "BYTES" if f["kind"] == "categorical" else "FP64",
                "data": [row.get(f["name"]) for row in (HOUSE, ODD)],
            }
            for f in features
        ]
    }
    r2 = client.post("/v2/models/houseprice/infer", json=v2)
    assert r2.status_code == 200, r2.text
    np.testing.assert_allclose(r2.json()["outputs"][0]["data"], expected, rtol=1e-12)
    assert client.get("/model").status_code == 200


def test_gbdt_pipeline_passes_categories_natively(data: Path, tmp_path: Path) -> None:
    path = tmp_path / "cfg.toml"
    path.write_text(_config_text(MODELS["gbdt"], data))
    cfg = load_config(path)
    pipe = build_pipeline(cfg)
    est = pipe.named_steps["regressor"].regressor
    assert isinstance(est, HistGradientBoostingRegressor)
    # three numbers pass through, then the two categories as codes
    assert est.categorical_features == [3, 4]
    assert search_grid(cfg) == {"regressor__regressor__learning_rate": [0.1, 0.3]}


def test_stack_params_and_grid_address_the_base_models(data: Path, tmp_path: Path) -> None:
    path = tmp_path / "cfg.toml"
    path.write_text(_config_text(MODELS["stack"], data))
    cfg = load_config(path)
    stack = build_pipeline(cfg).named_steps["regressor"].regressor
    assert isinstance(stack, StackingRegressor) and stack.cv == 3
    assert stack.get_params()["ridge__model__alpha"] == 10.0
    assert stack.get_params()["gbdt__model__max_iter"] == 20
    assert search_grid(cfg) == {"regressor__regressor__gbdt__model__learning_rate": [0.1, 0.3]}
    chained = cfg.with_overrides(
        base=("kernelridge", "huber+gbdt"), params={"huber+gbdt__gbdt__max_iter": 7}, grid={}
    )
    chain = build_pipeline(chained).named_steps["regressor"].regressor.estimators[1][1]
    assert isinstance(chain, ResidualRegressor)
    assert [name for name, _ in chain.estimators] == ["huber", "gbdt"]
    assert chain.get_params()["gbdt__model__max_iter"] == 7
    bad = cfg.with_overrides(grid={"gbdt__bogus": [1]})
    with pytest.raises(ConfigError, match=r"model.grid: invalid parameter\(s\) \['gbdt__bogus'\]"):
        search_grid(bad)


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ('estimator = "stack"\n', r"model: missing required key 'base'"),
        ('estimator = "voting"\nbase = ["ridge"]\n', "needs at least two base models"),
        ('estimator = "stack"\nbase = ["ridge", "stack"]\n', "expected names from .*got 'stack'"),
        ('estimator = "stack"\nbase = ["gbdt", "gbdt"]\n', "each base model may appear once"),
        ('estimator = "voting"\nbase = ["ridge", "huber+bogus"]\n', "got 'huber\\+bogus'"),
        ('estimator = "voting"\nbase = ["ridge", "gbdt+gbdt"]\n', "names a model twice in one"),
        ('estimator = "gbdt"\nbase = ["ridge", "gbdt"]\n', "only 'stack' and 'voting' combine"),
        ('estimator = "gbdt"\nparams = { learning_rate = -1.0 }\n', None),
    ],
)
def test_config_mistakes_are_named(model: str, message: str | None, tmp_path: Path) -> None:
    path = tmp_path / "cfg.toml"
    path.write_text(_config_text("[model]\n" + model, tmp_path / "none.csv"))
    if message is None:  # a bad value is refused when the model is fitted, naming the range
        cfg = load_config(path)
        with pytest.raises(ValueError, match=r"learning_rate must be a number in \(0, inf\)"):
            build_pipeline(cfg).fit(_table([HOUSE] * 3, _features()), np.ones(3) * 1e5)
        return
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def _features() -> list[dict[str, Any]]:
    kinds = {"neighborhood": "categorical", "dwelling_class": "categorical"}
    names = ["living_area", "overall_quality", "garage_cars", "neighborhood", "dwelling_class"]
    return [{"name": n, "kind": kinds.get(n, "numeric")} for n in names]


@pytest.mark.parametrize(
    "model",
    [
        '[model]\nestimator = "forest"\nparams = { n_estimators = 5, min_samples_leaf = 3 }\n',
        '[model]\nestimator = "voting"\nbase = ["lasso", "forest"]\n'
        "params = { weights = [2.0, 1.0], lasso__alpha = 0.001, forest__n_estimators = 5 }\n",
        '[model]\nestimator = "voting"\nbase = ["huber", "gbdt", "kernelridge"]\n'
        'params = { huber__epsilon = 1.6, gbdt__loss = "huber", gbdt__max_iter = 20, '
        'kernelridge__kernel = "polynomial", kernelridge__degree = 2 }\n',
        '[model]\nestimator = "voting"\nbase = ["ridge", "huber+gbdt"]\n'
        'params = { "huber+gbdt__huber__epsilon" = 1.6, "huber+gbdt__gbdt__max_iter" = 20 }\n',
    ],
    ids=["forest", "voting", "robust-voting", "residual-voting"],
)
def test_forest_and_voting_configs_fit_and_predict(model: str, data: Path, tmp_path: Path) -> None:
    path = tmp_path / "cfg.toml"
    path.write_text(_config_text(model, data))
    cfg = load_config(path)
    prepared = prepare_data(cfg)
    pipe = build_pipeline(cfg).fit(prepared.table, prepared.y)
    pred = pipe.predict(_table([HOUSE, ODD], _features()))
    assert np.isfinite(pred).all() and (pred > 10_000).all()


def test_train_shows_the_trees_of_each_fit_on_a_terminal(data: Path, tmp_path: Path) -> None:
    from test_train import _Stream

    from model.workflow.progress import ProgressBar

    cfg_path = tmp_path / "cfg.toml"
    cfg_path.write_text(_config_text(MODELS["gbdt"], data))
    tty = _Stream(tty=True)
    bar = ProgressBar(tty)
    bar.TREE_REDRAW_S = 0.0  # every tree drawn
    train(
        load_config(cfg_path), tmp_path / "m.joblib", tmp_path / "runs", plots=False, progress=bar
    )
    out = tty.getvalue()
    assert "\r[" in out and "] tree 1/20" in out  # before the first CV fit ends
    assert "tree 20/20  1/" in out  # within the search, after the first fit
    logs = _Stream(tty=False)  # not a terminal: no bar at all
    train(
        load_config(cfg_path),
        tmp_path / "m2.joblib",
        tmp_path / "runs",
        plots=False,
        progress=ProgressBar(logs),
    )
    assert logs.getvalue() == ""


def test_tree_redraws_are_throttled_but_the_last_tree_is_drawn() -> None:
    from test_train import _Stream

    from model.workflow.progress import ProgressBar

    tty = _Stream(tty=True)
    bar = ProgressBar(tty, width=10)
    bar.TREE_REDRAW_S = 3600.0
    for k in range(1, 201):
        bar.trees(k, 200)
    out = tty.getvalue()
    assert out.count("\r") == 2  # the first tree, then only the last
    assert "\r[----------] tree 1/200" in out and "\r[##########] tree 200/200" in out
    for stream, kwargs in ((_Stream(tty=False), {}), (_Stream(tty=True), {"quiet": True})):
        quiet = ProgressBar(stream, **kwargs)
        quiet.trees(1, 2)
        assert stream.getvalue() == ""
