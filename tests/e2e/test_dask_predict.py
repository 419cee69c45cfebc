"""``houseprice predict --engine dask`` on a real ``distributed`` LocalCluster of worker processes.

The same bytes as the memory scorer in every output format (rows in error, warnings and all)
with the file cut in several byte ranges; a folder of parts holding the same rows; ``--strict``
naming the same first error and writing nothing; a worker killed mid-run failing the run with
one ``error:`` line, the previous output left as it was and no staging folder left behind.
"""

from __future__ import annotations

import io
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from model.workflow.artifact import load_artifact
from model.workflow.cli import main
from model.workflow.config import load_config
from model.workflow.data import DataError
from model.workflow.score import predict_file
from model.workflow.train import train

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
from test_stream import _synth, write_sales  # noqa: E402

pytestmark = pytest.mark.e2e
distributed = pytest.importorskip("distributed")

from model.workflow.dask_engine import DaskRunner  # noqa: E402
from model.workflow.dask_predict import predict_dask  # noqa: E402

from .dask_kill import run_killing_a_worker  # noqa: E402

#: Rows the service would refuse (bounds, not a number), warnings (range, unknown category).
BAD = {
    40: "0,3,1990,5000,D1,20,Normal,1",
    2900: "abc,3,1990,5000,D1,20,Normal,1",
    3100: "9000,3,1990,5000,Xyz,20,Normal,1",
}


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """An artifact trained on clean sales, and a 4,000-row file to price (with ``BAD``)."""
    tmp = tmp_path_factory.mktemp("model")
    cfg = load_config(_synth(tmp, n=1500))
    train(cfg, tmp / "m.joblib", tmp / "runs", plots=False)
    data = tmp / "score.csv"
    write_sales(data, 4000, seed=1, bad=BAD)
    return tmp / "m.joblib", data


@pytest.fixture(scope="module")
def runner() -> Iterator[DaskRunner]:
    from distributed import Client, LocalCluster

    cluster = LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    )
    client = Client(cluster)
    try:
        yield DaskRunner(client, partition_bytes=30_000)  # ~6 ranges of the 4,000 rows
    finally:
        client.close()
        cluster.close()


def _summary(s: Any) -> tuple[Any, ...]:
    return (s.rows, s.errors, s.first_error, s.rows_warned, dict(s.counts), s.absent, s.kept)


@pytest.mark.parametrize("ext", [".csv", ".json", ".jsonl"])
def test_same_bytes_as_the_memory_scorer(
    tmp_path: Path, model: tuple[Path, Path], runner: DaskRunner, ext: str
) -> None:
    path, data = model
    art = load_artifact(path)
    assert len(runner.file_spans(data, _fmt())) >= 4
    a = predict_file(art.pipeline, art.metadata, data, tmp_path / f"m{ext}", chunk_rows=300)
    b = predict_dask(
        art.pipeline, art.metadata, data, tmp_path / f"d{ext}", chunk_rows=300, runner=runner
    )
    assert (tmp_path / f"d{ext}").read_bytes() == (tmp_path / f"m{ext}").read_bytes()
    assert _summary(b) == _summary(a)
    assert b.rows == 4000 and b.errors == 2 and "line 42" in b.first_error
    assert b.counts["outside the training range"] >= 1 and b.counts["unknown category"] >= 1
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([f"d{ext}", f"m{ext}"])


def _fmt() -> Any:
    from model.workflow.data import CsvFormat

    return CsvFormat()


def test_a_folder_of_parts_holds_the_same_rows(
    tmp_path: Path, model: tuple[Path, Path], runner: DaskRunner
) -> None:
    path, data = model
    art = load_artifact(path)
    predict_file(art.pipeline, art.metadata, data, tmp_path / "m.csv")
    s = predict_dask(art.pipeline, art.metadata, data, parts=tmp_path / "parts", runner=runner)
    names = sorted(p.name for p in (tmp_path / "parts").iterdir())
    assert len(names) >= 4 and names[0] == "part-00000.csv" and names[-1].startswith("part-")
    header, *rows = (tmp_path / "m.csv").read_text().splitlines()
    got = []
    for name in names:
        part_header, *part_rows = (tmp_path / "parts" / name).read_text().splitlines()
        assert part_header == header
        got += part_rows
    assert got == rows and s.rows == 4000
    with pytest.raises(DataError, match="already exists"):
        predict_dask(art.pipeline, art.metadata, data, parts=tmp_path / "parts", runner=runner)


def test_strict_names_the_first_error_and_writes_nothing(
    tmp_path: Path, model: tuple[Path, Path], runner: DaskRunner
) -> None:
    path, data = model
    art = load_artifact(path)
    out = tmp_path / "d.csv"
    out.write_text("the previous output")
    with pytest.raises(DataError) as memory:
        predict_file(art.pipeline, art.metadata, data, out, strict=True)
    with pytest.raises(DataError) as dask:
        predict_dask(art.pipeline, art.metadata, data, out, strict=True, runner=runner)
    assert str(dask.value) == str(memory.value) and "line 42" in str(dask.value)
    assert out.read_text() == "the previous output"
    assert [p.name for p in tmp_path.iterdir()] == ["d.csv"]


def test_a_malformed_row_deep_in_the_file_fails_as_in_memory(
    tmp_path: Path, model: tuple[Path, Path], runner: DaskRunner
) -> None:
    path, _ = model
    art = load_artifact(path)
    data = tmp_path / "ragged.csv"
    write_sales(data, 4000, seed=2, bad={3500: "1500,3,1990"})
    out = tmp_path / "d.csv"
    with pytest.raises(DataError) as memory:
        predict_file(art.pipeline, art.metadata, data, out)
    with pytest.raises(DataError) as dask:
        predict_dask(art.pipeline, art.metadata, data, out, runner=runner)
    assert str(dask.value) == str(memory.value)
    assert str(data) in str(dask.value) and "line 3502" in str(dask.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ragged.csv"]


def test_json_input_and_flags_are_refused_clearly(
    tmp_path: Path, model: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    path, data = model
    art = load_artifact(path)
    (tmp_path / "rows.json").write_text("[]")
    with pytest.raises(DataError, match="use --engine memory"):
        predict_dask(art.pipeline, art.metadata, tmp_path / "rows.json", tmp_path / "o.csv")
    args = ["predict", "--model", str(path), "--input", str(data), "--quiet"]
    assert main([*args, "--parts", str(tmp_path / "p")]) == 2
    assert capsys.readouterr().err.strip() == "error: --parts needs --engine dask"


def test_cli_on_a_local_cluster(tmp_path: Path, model: tuple[Path, Path]) -> None:
    path, data = model
    out = tmp_path / "d.csv"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "model.workflow.cli",
            "predict",
            "--model",
            str(path),
            "--input",
            str(data),
            "--output",
            str(out),
            "--engine",
            "dask",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr  # two rows in error
    err = proc.stderr.strip().splitlines()
    assert any(line.startswith("dask: 2 workers at tcp://") for line in err), err
    assert any("priced 3,998 of 4,000 rows" in line for line in err), err
    assert err[-1].startswith(f"error: {data}: 2 of 4,000 rows not priced")
    buf = io.StringIO()
    art = load_artifact(path)
    predict_file(art.pipeline, art.metadata, data, None, stdout=buf)
    assert out.read_text() == buf.getvalue()


def test_a_worker_killed_mid_run_fails_cleanly(tmp_path: Path, model: tuple[Path, Path]) -> None:
    path, _ = model
    data = tmp_path / "big.csv"
    write_sales(data, 150_000)  # a range takes seconds to price: time to kill a worker
    out = tmp_path / "prices.csv"
    out.write_text("the previous output")
    argv = ["predict", "--model", str(path), "--input", str(data), "--output", str(out)]
    killed = run_killing_a_worker([*argv, "--engine", "dask", "--quiet"], task="score_part")
    killed.assert_one_dask_error()
    assert out.read_text() == "the previous output"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.csv", "prices.csv"]
