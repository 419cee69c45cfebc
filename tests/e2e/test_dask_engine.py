"""``--engine dask`` on real ``distributed`` clusters of worker processes on this machine.

The model equals the stream engine's; a bad row fails as in the stream engine; a worker killed
while it runs a task fails the run with one ``error:`` line and leaves the previous artifact;
a scheduler that is not there is a usage error.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from model.workflow import dask_engine
from model.workflow.artifact import load_artifact
from model.workflow.config import load_config
from model.workflow.data import DataError
from model.workflow.train import train

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
from test_stream import _synth, write_sales  # noqa: E402

from .dask_kill import run_killing_a_worker  # noqa: E402

pytestmark = pytest.mark.e2e
distributed = pytest.importorskip("distributed")


def _coef(path: Path) -> np.ndarray:
    return np.asarray(load_artifact(path).pipeline.named_steps["regressor"].regressor_.coef_)


def test_dask_equals_stream_on_partitions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = load_config(_synth(tmp_path, n=6000))
    monkeypatch.setattr(dask_engine, "PARTITION_BYTES", 40_000)  # ~6 partitions
    a = train(cfg, tmp_path / "s.joblib", tmp_path / "runs", plots=False, engine="stream")
    b = train(cfg, tmp_path / "d.joblib", tmp_path / "runs", plots=False, engine="dask")
    np.testing.assert_allclose(
        _coef(tmp_path / "d.joblib"), _coef(tmp_path / "s.joblib"), rtol=0, atol=1e-9
    )
    assert b.metadata["engine"]["name"] == "dask"
    for m, v in a.metadata["cv"].items():
        assert b.metadata["cv"][m]["mean"] == pytest.approx(v["mean"], rel=1e-9)
    assert b.metadata["data"]["rows_read"] == 6000
    assert b.metadata["features"] == a.metadata["features"]


def test_dask_names_a_bad_row_as_stream_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = load_config(_synth(tmp_path, n=6000, bad={5000: "1500,3,199O,5000,D1,20,Normal,1"}))
    monkeypatch.setattr(dask_engine, "PARTITION_BYTES", 40_000)
    with pytest.raises(Exception) as stream_err:
        train(cfg, tmp_path / "s.joblib", tmp_path / "runs", engine="stream")
    with pytest.raises(Exception) as dask_err:
        train(cfg, tmp_path / "d.joblib", tmp_path / "runs", engine="dask")
    assert str(dask_err.value) == str(stream_err.value)
    assert "line 5002" in str(dask_err.value) and "'199O'" in str(dask_err.value)
    assert not (tmp_path / "d.joblib").exists()


def test_unreachable_scheduler_is_a_usage_error(tmp_path: Path) -> None:
    cfg = _synth(tmp_path, n=300)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "model.workflow.cli",
            "train",
            "--config",
            str(cfg),
            "--out",
            str(tmp_path / "m.joblib"),
            "--runs-dir",
            str(tmp_path / "runs"),
            "--engine",
            "dask",
            "--scheduler",
            "tcp://127.0.0.1:9",
            "--quiet",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --scheduler tcp://127.0.0.1:9")


def test_a_worker_killed_mid_run_fails_cleanly(tmp_path: Path) -> None:
    data = tmp_path / "sales.csv"
    cfg = _synth(tmp_path, n=10)
    write_sales(data, 150_000)  # a pass over it takes seconds: time to kill a worker
    out = tmp_path / "model.joblib"
    out.write_bytes(b"the previous artifact")
    argv = ["train", "--config", str(cfg), "--out", str(out), "--runs-dir", str(tmp_path / "runs")]
    argv += ["--engine", "dask", "--quiet", "--chunk-rows", "2000"]
    line = run_killing_a_worker(argv, task="pass").assert_one_dask_error()
    assert "nothing was written" in line
    assert out.read_bytes() == b"the previous artifact"
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").glob("2*"))


def test_stream_engine_errors_are_not_engine_errors() -> None:
    assert not issubclass(DataError, dask_engine.EngineError)
