"""The ``houseprice`` command: help, exit codes, config errors, predict, runs, serve."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from model.workflow.artifact import load_artifact
from model.workflow.cli import build_parser, main
from model.workflow.config import ConfigError, load_config, parse_config

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = ("explore", "train", "predict", "runs", "serve")

GOOD = """
[data]
path = "{data}"
target = "price"
[cv]
folds = 2
[model]
estimator = "ridge"
grid = {{ alpha = [1.0] }}
[[features]]
name = "living_area"
column = "area"
kind = "numeric"
bounds = [1, 20000]
[[features]]
name = "neighborhood"
column = "Neighborhood"
kind = "categorical"
"""


@pytest.fixture
def small_csv(tmp_path: Path) -> Path:
    lines = (ROOT / "data" / "ames.csv").read_text().splitlines()[:121]
    path = tmp_path / "small.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("command", COMMANDS)
def test_every_subcommand_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([command, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: houseprice {command}")
    assert "--help" in out


def test_top_level_help_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in COMMANDS:
        assert command in out


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert main(["fly"]) == 2
    assert main(["train"]) == 2  # --config is required
    assert main(["train", "--config", "x.toml", "--folds", "two"]) == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'fly'" in err
    assert "--config" in err


def test_console_script_is_installed_and_runs() -> None:
    exe = Path(sys.executable).with_name("houseprice")
    if not exe.exists():
        pytest.skip("the houseprice console script is not installed in this venv")
    proc = subprocess.run([str(exe), "runs", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "usage: houseprice runs" in proc.stdout


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("[cv]\nfolds = 2", "[cv]\nfold = 2"), "unknown key 'fold'; did you mean 'folds'?"),
        (('column = "area"', 'column = "Area"'), "no feature column 'Area'; did you mean"),
        (("folds = 2", 'folds = "2"'), "cv.folds: expected an integer, got str '2'"),
        (("folds = 2", "folds = true"), "cv.folds: expected an integer, got a boolean"),
        (
            ('kind = "numeric"', 'kind = "number"'),
            "kind: expected one of numeric, integer, categorical",
        ),
        (('column = "Neighborhood"', 'column = "MS.Zoning"\nunit = 3'), "unit: expected a"),
        (('column = "area"', 'column = "Neighborhood"'), "'Neighborhood' is used twice"),
        (('estimator = "ridge"', 'estimator = "xgboost"'), "model.estimator: expected one of"),
        (("bounds = [1, 20000]", "bounds = [20000, 1]"), "bounds: expected [lo, hi]"),
        (("grid = { alpha = [1.0] }", "grid = { alfa = [1.0] }"), "invalid parameter"),
        (('name = "living_area"', 'name = "LivingArea"'), "snake_case"),
        (("[cv]", "[cv\n"), "invalid TOML"),
    ],
)
def test_bad_config_exits_2_with_a_clear_message_and_writes_nothing(
    edit: tuple[str, str],
    message: str,
    small_csv: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    good = GOOD.format(data=small_csv)
    assert edit[0] in good
    cfg = tmp_path / "bad.toml"
    cfg.write_text(good.replace(edit[0], edit[1], 1))
    out = tmp_path / "art" / "model.joblib"
    code = main(
        ["train", "--config", str(cfg), "--out", str(out), "--runs-dir", str(tmp_path / "r")]
    )
    err = capsys.readouterr().err
    assert code == 2, err
    assert message in err
    assert err.startswith("error: ") and err.count("\n") == 1  # one line, no traceback
    assert not out.parent.exists() or not any(out.parent.iterdir())
    assert not (tmp_path / "r" / "index.jsonl").exists()


def test_numeric_feature_on_a_text_column_is_a_config_error(
    small_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        GOOD.format(data=small_csv).replace(
            'column = "Neighborhood"\nkind = "categorical"',
            'column = "Neighborhood"\nkind = "numeric"',
        )
    )
    assert main(["train", "--config", str(cfg), "--out", str(tmp_path / "m.joblib")]) == 2
    err = capsys.readouterr().err
    assert "small.csv: line 2, column 'Neighborhood': 'NAmes' is not a number" in err
    assert "feature 'neighborhood' is declared numeric" in err


def test_flags_override_the_config(small_csv: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(GOOD.format(data=small_csv))
    out = tmp_path / "m.joblib"
    args = ["train", "--config", str(cfg), "--out", str(out), "--runs-dir", str(tmp_path / "r")]
    assert main([*args, "--seed", "3", "--folds", "4", "--test-size", "0.3", "--no-plots"]) == 0
    meta = load_artifact(out).metadata
    assert meta["split"] == {"test_size": 0.3, "seed": 3, "folds": 4}
    assert len(meta["cv"]["rmse_log"]["folds"]) == 4
    assert meta["data"]["rows_test"] == 36  # ceil(0.3 * 120)
    assert main([*args, "--folds", "1"]) == 2


def test_config_parsing_reports_key_paths() -> None:
    doc = {
        "data": {"path": "d.csv", "target": "price"},
        "features": [{"name": "a", "column": "A", "kind": "numeric", "colour": "red"}],
    }
    with pytest.raises(ConfigError, match=r"features\[0\]: unknown key 'colour'"):
        parse_config(doc)
    doc["features"] = [{"name": "a", "column": "price", "kind": "numeric"}]
    with pytest.raises(ConfigError, match="target column 'price' cannot also be a feature"):
        parse_config(doc)


def test_shipped_configs_are_valid() -> None:
    default = load_config(ROOT / "configs" / "ames.toml")
    full = load_config(ROOT / "configs" / "ames-full.toml")
    assert 10 <= len(default.features) <= 20
    assert len(full.features) > 70
    for cfg in (default, full):
        assert cfg.target_transform == "log" and cfg.grid
        assert any(r.column == "area" and r.op == "<=" and r.value == 4000 for r in cfg.filters)
        for f in cfg.features:
            assert f.description, f.name
    area = next(f for f in default.features if f.name == "living_area")
    assert area.bounds == (1.0, 20000.0) and area.unit == "sq ft" and area.required


def test_predict_cli_matches_the_loaded_pipeline(
    artifact_path: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Same price from the CLI (JSON and CSV input) as from the artifact given a row dict."""
    row = {
        "living_area": 1710,
        "bedrooms": 3,
        "neighborhood": "CollgCr",
        "overall_quality": 7,
        "year_built": 2003,
        "kitchen_quality": "Gd",
    }
    pipeline = load_artifact(artifact_path).pipeline
    meta = load_artifact(artifact_path).metadata
    full = {f["name"]: row.get(f["name"]) for f in meta["features"]}
    expected = float(pipeline.predict([full])[0])
    assert 100_000 < expected < 400_000

    src = tmp_path / "rows.json"
    src.write_text(json.dumps([row, {**row, "living_area": 2500}]))
    out = tmp_path / "pred.json"
    assert (
        main(["predict", "--model", artifact_path, "--input", str(src), "--output", str(out)]) == 0
    )
    prices = [r["price"] for r in json.loads(out.read_text())]
    assert prices[0] == pytest.approx(expected, rel=1e-12)
    assert prices[1] > prices[0]

    csv_in = tmp_path / "rows.csv"
    csv_in.write_text(",".join(row) + "\n" + ",".join(str(v) for v in row.values()) + "\n")
    assert main(["predict", "--model", artifact_path, "--input", str(csv_in)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "price,low,high,model_version,warnings"
    assert float(lines[1].split(",")[0]) == pytest.approx(expected, rel=1e-12)


def test_predict_refuses_a_missing_required_feature(
    artifact_path: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "rows.json"
    src.write_text(json.dumps({"living_area": 1500}))
    assert main(["predict", "--model", artifact_path, "--input", str(src)]) == 2
    assert "required feature" in capsys.readouterr().err
    assert main(["predict", "--model", str(tmp_path / "none.joblib"), "--input", str(src)]) == 2
    row = {"living_area": 1500, "bedrooms": 3, "neighborhood": "NAmes", "year_built": 1975}
    src.write_text(json.dumps([{**row, "overall_quality": 5}, {**row, "overall_quality": 11}]))
    capsys.readouterr()
    assert main(["predict", "--model", artifact_path, "--input", str(src)]) == 2
    assert "item [1], column 'overall_quality': 11 outside the bounds [1, 10]" in (
        capsys.readouterr().err
    )


def test_runs_lists_the_index(
    small_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(GOOD.format(data=small_csv))
    runs = tmp_path / "runs"
    for seed in ("1", "2"):
        args = ["--out", str(tmp_path / "m.joblib"), "--runs-dir", str(runs), "--seed", seed]
        assert main(["train", "--config", str(cfg), *args, "--quiet", "--no-plots"]) == 0
    capsys.readouterr()
    args = ["runs", "--runs-dir", str(runs), "--out", str(tmp_path / "m.joblib")]
    assert main(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:4] == ["run_id", "created_at", "config", "data"]
    records = [json.loads(x) for x in (runs / "index.jsonl").read_text().splitlines()]
    assert len(lines) == 3 and len(records) == 2
    # Newest first; the second run's model is the one served at --out.
    for line, rec in zip(lines[1:], records[::-1], strict=True):
        assert line[3:].startswith(rec["run_id"])
        assert line.startswith("*  ") == (rec is records[-1])
        assert f"{rec['cv']['rmse_log']['mean']:.4f}" in line
        assert "c.toml" in line and small_csv.name in line and "Ridge(alpha=1.0)" in line
    assert main(["runs", "--runs-dir", str(tmp_path / "empty")]) == 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.e2e
def test_serve_starts_uvicorn_on_the_given_port(artifact_path: str, tmp_path: Path) -> None:
    """`houseprice serve --port P` is a real server answering on 127.0.0.1:P."""
    pytest.importorskip("app.main")
    port = _free_port()
    env = {**os.environ, "MODEL_PATH": artifact_path}
    env.pop("MODEL_SIGNING_KEY", None)
    cmd = [
        sys.executable,
        "-m",
        "model.workflow.cli",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    log = tmp_path / "serve.log"
    with open(log, "wb") as fh:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        body = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/live", timeout=1) as r:
                    body = r.status
                    break
            except OSError:
                time.sleep(0.1)
        assert body == 200, log.read_text()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_parser_is_buildable_without_side_effects() -> None:
    parser = build_parser()
    args = parser.parse_args(["train", "--config", "c.toml"])
    assert (args.out, args.runs_dir, args.quiet, args.print_every) == (
        "artifacts/model.joblib",
        "runs",
        False,
        0,
    )


def test_train_signs_when_the_key_is_in_the_environment(
    small_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from model.workflow.artifact import ArtifactError

    cfg = tmp_path / "c.toml"
    cfg.write_text(GOOD.format(data=small_csv))
    out = tmp_path / "m.joblib"
    monkeypatch.setenv("MODEL_SIGNING_KEY", "k3y")
    args = ["train", "--config", str(cfg), "--out", str(out), "--runs-dir", str(tmp_path / "r")]
    assert main([*args, "--quiet", "--no-plots"]) == 0
    assert load_artifact(out, signing_key=b"k3y").signed
    with pytest.raises(ArtifactError):
        load_artifact(out, signing_key=b"wrong")
    src = tmp_path / "row.json"
    src.write_text(json.dumps({"living_area": 1500, "neighborhood": "NAmes"}))
    assert main(["predict", "--model", str(out), "--input", str(src)]) == 0
    monkeypatch.setenv("MODEL_SIGNING_KEY", "wrong")
    assert main(["predict", "--model", str(out), "--input", str(src)]) == 2
