"""Training runs end to end on a small config: artifact, sidecars, run dir, index, metadata."""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from model.workflow.artifact import load_artifact
from model.workflow.config import load_config
from model.workflow.progress import ProgressBar
from model.workflow.runs import append_index, read_index
from model.workflow.train import METRICS, prepare_data, regression_metrics, train

ROOT = Path(__file__).resolve().parents[1]
AMES = ROOT / "data" / "ames.csv"

SMALL = """
[data]
path = "{data}"
target = "price"
[[data.filters]]
column = "area"
op = "<="
value = 4000
[split]
test_size = 0.25
seed = 7
[cv]
folds = 3
[model]
estimator = "ridge"
grid = {{ alpha = [1.0, 10.0] }}
[[features]]
name = "living_area"
column = "area"
kind = "numeric"
unit = "sq ft"
description = "Living area"
bounds = [1, 20000]
example = 1500
transform = "log"
[[features]]
name = "overall_quality"
column = "Overall.Qual"
kind = "numeric"
bounds = [1, 10]
[[features]]
name = "garage_cars"
column = "Garage.Cars"
kind = "numeric"
required = false
[[features]]
name = "neighborhood"
column = "Neighborhood"
kind = "categorical"
[[features]]
name = "dwelling_class"
column = "MS.SubClass"
kind = "categorical"
required = false
"""


def small_config(tmp_path: Path, extra: str, data: Path | None = None) -> Path:
    """``SMALL`` over ``data`` (a file that need not exist) with ``extra`` TOML appended."""
    path = tmp_path / "cfg.toml"
    path.write_text(SMALL.format(data=data or tmp_path / "none.csv") + extra)
    return path


def _subset(path: Path, n: int = 400) -> Path:
    """The first ``n`` rows of the Ames file plus the 5 huge houses the filter must drop."""
    with open(AMES, newline="") as fh:
        rows = list(csv.reader(fh))
    header, body = rows[0], rows[1:]
    j = header.index("area")
    huge = [r for r in body if float(r[j]) > 4000]
    with open(path, "w", newline="") as fh:
        csv.writer(fh).writerows([header, *body[:n], *huge])
    return path


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("small")
    data = _subset(d / "ames_small.csv")
    cfg = d / "small.toml"
    cfg.write_text(SMALL.format(data=data))
    out = d / "art" / "model.joblib"
    result = train(load_config(cfg), out, d / "runs", plots=False)
    return {
        "dir": d,
        "data": data,
        "config": cfg,
        "artifact": out,
        "runs": d / "runs",
        "run_dir": result.run_dir,
    }


def test_train_writes_artifact_sidecars_run_dir_and_index(small: dict[str, Path]) -> None:
    art = small["artifact"]
    assert art.exists()
    assert (art.parent / "model.joblib.sha256").read_text().endswith("  model.joblib\n")
    assert json.loads((art.parent / "model.json").read_text())["run_id"]
    run_dir = small["run_dir"]
    for name in ("config.toml", "metrics.json", "MODEL_CARD.md"):
        assert (run_dir / name).is_file(), name
    assert (run_dir / "config.toml").read_text() == small["config"].read_text()
    index = read_index(small["runs"])
    assert [r["run_id"] for r in index] == [run_dir.name]
    loaded = load_artifact(art)
    assert index[0]["artifact_sha256"] == loaded.sha256
    # no temporary files or staging directories left behind
    leftovers = [p.name for p in art.parent.iterdir()] + [p.name for p in small["runs"].iterdir()]
    assert not [n for n in leftovers if n.startswith(".")], leftovers


def test_metadata_follows_contract_1(small: dict[str, Path]) -> None:
    meta = load_artifact(small["artifact"]).metadata
    keys = {
        "format_version", "model_version", "created_at", "run_id", "data", "target",
        "features", "model", "search", "cv", "test", "segments", "versions", "reference",
    }  # fmt: skip
    assert keys <= set(meta)
    assert meta["format_version"] == 1
    assert {"path", "sha256", "rows", "rows_train", "rows_test"} <= set(meta["data"])
    assert meta["data"]["rows"] == 400  # the 5 houses over 4000 sq ft were dropped
    assert meta["data"]["rows_train"] + meta["data"]["rows_test"] == 400
    assert meta["data"]["rows_test"] == math.ceil(0.25 * 400)
    assert meta["target"]["column"] == "price" and meta["target"]["transform"] == "log"
    data = prepare_data(load_config(small["config"]))
    assert data.y.min() <= meta["target"]["min"] <= meta["target"]["median"]
    assert meta["target"]["median"] <= meta["target"]["max"] <= data.y.max()
    feature_keys = {
        "name", "column", "kind", "unit", "description", "required", "categories",
        "min", "max", "bounds", "example",
    }  # fmt: skip
    by_name = {f["name"]: f for f in meta["features"]}
    assert list(by_name) == [
        "living_area",
        "overall_quality",
        "garage_cars",
        "neighborhood",
        "dwelling_class",
    ]
    for f in meta["features"]:
        assert set(f) == feature_keys, f["name"]
    area = by_name["living_area"]
    assert area["bounds"] == [1.0, 20000.0] and area["example"] == 1500
    assert area["unit"] == "sq ft" and area["required"] is True
    assert area["max"] <= 4000 and area["categories"] is None
    assert by_name["garage_cars"]["required"] is False
    # numeric codes become categories as strings, as a client sends them
    assert "20" in by_name["dwelling_class"]["categories"]
    assert by_name["neighborhood"]["min"] is None
    assert set(meta["search"]["grid"]) == {"alpha"}
    assert meta["search"]["best_params"]["alpha"] in (1.0, 10.0)
    assert meta["model"]["estimator"] == "Ridge"
    for m in METRICS:
        assert len(meta["cv"][m]["folds"]) == 3
        assert meta["cv"][m]["mean"] == pytest.approx(np.mean(meta["cv"][m]["folds"]))
        assert meta["cv"][m]["std"] == pytest.approx(np.std(meta["cv"][m]["folds"]))
        assert math.isfinite(meta["test"][m])
    assert {"houseprice", "python", "numpy"} <= set(meta["versions"])
    ref = meta["reference"]
    assert set(ref["features"]) == set(by_name)
    assert ref["features"]["neighborhood"]["kind"] == "categorical"
    assert ref["prediction"]["kind"] == "numeric"
    assert ref["prediction"]["count"] == meta["data"]["rows_train"]


def test_test_metrics_match_a_recomputation(small: dict[str, Path]) -> None:
    """The recorded test metrics are those of the artifact on the held-out rows."""
    from model.selection import train_test_split

    cfg = load_config(small["config"])
    data = prepare_data(cfg)
    _, X_test, _, y_test = train_test_split(
        data.table, data.y, test_size=cfg.test_size, random_state=cfg.seed
    )
    art = load_artifact(small["artifact"])
    p = art.pipeline.predict(X_test)
    test = art.metadata["test"]
    assert test["mae"] == pytest.approx(np.mean(np.abs(y_test - p)))
    ss_tot = np.sum((y_test - y_test.mean()) ** 2)
    assert test["r2"] == pytest.approx(1 - np.sum((y_test - p) ** 2) / ss_tot)
    assert test["rmse_log"] == pytest.approx(math.sqrt(np.mean((np.log(y_test / p)) ** 2)))


def test_regression_metrics_against_sklearn() -> None:
    from sklearn import metrics as skm

    rng = np.random.default_rng(0)
    y = rng.uniform(5e4, 5e5, 200)
    p = y * rng.lognormal(0, 0.1, 200)
    got = regression_metrics(y, p)
    assert got["mse"] == pytest.approx(skm.mean_squared_error(y, p))
    assert got["rmse"] == pytest.approx(math.sqrt(skm.mean_squared_error(y, p)))
    assert got["mae"] == pytest.approx(skm.mean_absolute_error(y, p))
    assert got["r2"] == pytest.approx(skm.r2_score(y, p))
    assert got["mape"] == pytest.approx(skm.mean_absolute_percentage_error(y, p))
    assert got["rmse_log"] == pytest.approx(math.sqrt(skm.mean_squared_error(np.log(y), np.log(p))))


def test_filters_keep_rows_like_a_literal_loop(small: dict[str, Path], tmp_path: Path) -> None:
    text = (
        small["config"]
        .read_text()
        .replace(
            "value = 4000\n",
            'value = 4000\n[[data.filters]]\ncolumn = "Sale.Condition"\nop = "in"\n'
            'value = ["Normal", "Partial"]\n',
        )
    )
    cfg_path = tmp_path / "f.toml"
    cfg_path.write_text(text)
    data = prepare_data(load_config(cfg_path))
    with open(small["data"], newline="") as fh:
        rows = list(csv.DictReader(fh))
    kept = [
        r for r in rows
        if float(r["area"]) <= 4000 and r["Sale.Condition"].strip() in ("Normal", "Partial")
    ]  # fmt: skip
    assert data.y.size == len(kept)
    assert data.y.tolist() == [float(r["price"]) for r in kept]
    assert data.dropped == {
        "area <= 4000": 5,
        "Sale.Condition in ['Normal', 'Partial']": 400 - len(kept),
    }


def test_failed_run_leaves_previous_artifact_and_index(
    small: dict[str, Path], tmp_path: Path
) -> None:
    """A run on a broken data file raises before writing anything."""
    art_dir = small["artifact"].parent
    before = {p.name: p.read_bytes() for p in art_dir.iterdir()}
    index_before = (small["runs"] / "index.jsonl").read_bytes()
    runs_before = sorted(p.name for p in small["runs"].iterdir())
    bad = tmp_path / "bad.csv"
    text = small["data"].read_text().splitlines()
    assert ",172000," in text[3]
    text[3] = text[3].replace(",172000,", ",,")  # a missing price on line 4
    bad.write_text("\n".join(text) + "\n")
    cfg = load_config(small["config"]).with_overrides(data_path=str(bad))
    from model.workflow.data import DataError

    with pytest.raises(DataError, match="target is missing"):
        train(cfg, small["artifact"], small["runs"], plots=False)
    assert {p.name: p.read_bytes() for p in art_dir.iterdir()} == before
    assert (small["runs"] / "index.jsonl").read_bytes() == index_before
    assert sorted(p.name for p in small["runs"].iterdir()) == runs_before


def test_signing_key_writes_a_signature_the_loader_accepts(
    small: dict[str, Path], tmp_path: Path
) -> None:
    from model.workflow.artifact import ArtifactError

    out = tmp_path / "signed" / "model.joblib"
    cfg = replace(load_config(small["config"]), folds=2, grid={"alpha": [1.0]})
    train(cfg, out, tmp_path / "runs", plots=False, signing_key=b"secret")
    assert (out.parent / "model.joblib.sig").exists()
    assert load_artifact(out, signing_key=b"secret").signed
    with pytest.raises(ArtifactError):
        load_artifact(out, signing_key=b"other")


def test_append_index_keeps_old_lines_and_repairs_a_missing_newline(tmp_path: Path) -> None:
    index = tmp_path / "index.jsonl"
    index.write_text('{"run_id": "a"}')  # no trailing newline
    append_index(tmp_path, {"run_id": "b", "x": 1.5})
    append_index(tmp_path, {"run_id": "c"})
    assert index.read_text().splitlines() == [
        '{"run_id": "a"}',
        '{"run_id": "b", "x": 1.5}',
        '{"run_id": "c"}',
    ]
    index.write_text(index.read_text() + "{torn\n")
    assert [r["run_id"] for r in read_index(tmp_path)] == ["a", "b", "c"]


class _Stream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


def _progress(done: int, total: int = 4) -> object:
    from model.selection import Progress

    return Progress(
        done, total, 0, done - 1, {"regressor__regressor__alpha": 1.0}, {"rmse_log": 0.125}
    )


def test_progress_bar_draws_only_on_a_tty_and_always_summarises() -> None:
    tty = _Stream(tty=True)
    bar = ProgressBar(tty, width=8)
    for k in range(1, 5):
        bar(_progress(k))
    bar.close("done")
    out = tty.getvalue()
    assert "\r[####----] 2/4 fits  alpha=1.0 fold 2  rmse_log=0.1250" in out
    assert "\r[########] 4/4 fits" in out
    assert out.endswith("\ndone\n")

    for stream, kwargs in ((_Stream(tty=False), {}), (_Stream(tty=True), {"quiet": True})):
        bar = ProgressBar(stream, **kwargs)
        for k in range(1, 5):
            bar(_progress(k))
        bar.close("summary line")
        assert stream.getvalue() == "summary line\n"

    logs = _Stream(tty=False)
    bar = ProgressBar(logs, print_every=2)
    for k in range(1, 5):
        bar(_progress(k))
    lines = logs.getvalue().splitlines()
    assert [line.split()[1] for line in lines] == ["2/4", "4/4"]


def test_interrupted_run_leaves_everything_as_it_was(small: dict[str, Path]) -> None:
    """Ctrl-C during the search: no artifact change, no index line, no staging directory."""
    art_dir = small["artifact"].parent
    before = {p.name: p.read_bytes() for p in art_dir.iterdir()}
    runs_before = {p.name: p.is_dir() for p in small["runs"].iterdir()}
    index_before = (small["runs"] / "index.jsonl").read_bytes()

    class Interrupt(ProgressBar):
        def __call__(self, p: object) -> None:
            if getattr(p, "done", 0) == 2:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(
            load_config(small["config"]),
            small["artifact"],
            small["runs"],
            plots=False,
            progress=Interrupt(io.StringIO()),
        )
    assert {p.name: p.read_bytes() for p in art_dir.iterdir()} == before
    assert {p.name: p.is_dir() for p in small["runs"].iterdir()} == runs_before
    assert (small["runs"] / "index.jsonl").read_bytes() == index_before


def test_failed_artifact_write_removes_the_run_dir_and_keeps_the_index(
    small: dict[str, Path], tmp_path: Path
) -> None:
    from model.workflow.artifact import ArtifactError

    runs_before = sorted(p.name for p in small["runs"].iterdir())
    index_before = (small["runs"] / "index.jsonl").read_bytes()
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the artifact's directory should be")
    with pytest.raises(ArtifactError):
        train(load_config(small["config"]), blocker / "model.joblib", small["runs"], plots=False)
    assert sorted(p.name for p in small["runs"].iterdir()) == runs_before
    assert (small["runs"] / "index.jsonl").read_bytes() == index_before


def test_model_card_states_use_data_metrics_and_reproduction(small: dict[str, Path]) -> None:
    card = (small["run_dir"] / "MODEL_CARD.md").read_text()
    meta = load_artifact(small["artifact"]).metadata
    for heading in (
        "## Intended use",
        "### Out-of-scope use",
        "## Training data",
        "### Features",
        "## Evaluation",
        "### Test errors by `neighborhood`",
        "### Test errors by quintile of the actual `price`",
        "## Limitations and risks",
        "## Assumptions and decisions",
        "## How to reproduce",
    ):
        assert heading in card
    assert card.startswith("---\nlicense: unknown\n")  # the config says no license
    cv = meta["cv"]["rmse_log"]
    assert f"| RMSE of log price | {cv['mean']:.4f} ± {cv['std']:.4f} |" in card
    assert "(5 dropped)" in card and "Plots were not requested" in card
    assert f"--config {small['config']}" in card and "--seed 7 --folds 3" in card
    assert "The config gives no name or description of the data set" in card
