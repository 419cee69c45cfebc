"""The model registry: stored run artifacts, promote, rollback, gc, runs table/JSON/diff, MLflow.

Runs are trained for real on a small slice of data/ames.csv (a second or so each) with a
signing key, so the signature sidecar goes through every path too. The kill test runs
``houseprice promote`` as a child process that SIGKILLs itself before its N-th rename or
unlink, for every N until it completes, and checks what a server would load afterwards.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_cli import GOOD  # tests/test_cli.py: the small two-feature config

from model.workflow.artifact import load_artifact, read_checksums, verify_artifact
from model.workflow.cli import main

ROOT = Path(__file__).resolve().parents[1]
KEY = "registry-test-key"


def config_text(data: Path, alphas: str = "[1.0]", extra: str = "") -> str:
    """test_cli's two-feature config, with another alpha grid and extra feature tables."""
    return GOOD.format(data=data).replace("alpha = [1.0]", f"alpha = {alphas}") + extra


LOT_AREA = """[[features]]
name = "lot_area"
column = "Lot.Area"
kind = "numeric"
"""


def _train(base: Path, config: Path, *extra: str, plots: bool = False) -> str:
    args = ["train", "--config", str(config), "--out", str(base / "artifacts" / "model.joblib")]
    args += ["--runs-dir", str(base / "runs"), "--quiet", *extra]
    if not plots:
        args.append("--no-plots")
    assert main(args) == 0
    return str(json.loads((base / "runs" / "index.jsonl").read_text().splitlines()[-1])["run_id"])


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, list[str]]]:
    """Three runs: A (2 features, alpha 1), B (3 features, alpha 0.1/10), C (like A, seed 7).
    Each training served its model, so C is served and the history is train A, B, C."""
    base = tmp_path_factory.mktemp("registry")
    lines = (ROOT / "data" / "ames.csv").read_text().splitlines()[:201]
    data = base / "small.csv"
    data.write_text("\n".join(lines) + "\n")
    a = base / "a.toml"
    a.write_text(config_text(data))
    b = base / "b.toml"
    b.write_text(config_text(data, "[0.1, 10.0]", LOT_AREA))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MODEL_SIGNING_KEY", KEY)
        mp.setenv("USER", "tester")
        ids = [_train(base, a), _train(base, b), _train(base, a, "--seed", "7")]
    yield base, ids


@pytest.fixture
def reg(
    trained: tuple[Path, list[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Path, list[str]]:
    """A private copy of the trained registry, the cwd set to it (default paths work) and
    the signing key set (promote then checks signatures too)."""
    src, ids = trained
    base = tmp_path / "reg"
    shutil.copytree(src, base)
    monkeypatch.chdir(base)
    monkeypatch.setenv("MODEL_SIGNING_KEY", KEY)
    return base, ids


def served(base: Path) -> Path:
    return base / "artifacts" / "model.joblib"


def served_files(base: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((base / "artifacts").iterdir()) if p.is_file()}


def served_run(base: Path) -> str:
    return str(load_artifact(served(base), signing_key=KEY.encode()).metadata["run_id"])


def one_error(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def index_lines(base: Path) -> list[dict[str, object]]:
    return [json.loads(x) for x in (base / "runs" / "index.jsonl").read_text().splitlines()]


# --- what a run stores -------------------------------------------------------------------------


def test_each_run_stores_its_verified_artifact_and_serves_a_copy(
    reg: tuple[Path, list[str]],
) -> None:
    base, ids = reg
    for run_id in ids:
        d = base / "runs" / run_id
        names = {"model.joblib", "model.joblib.sha256", "model.joblib.sig", "model.json"}
        assert names <= {p.name for p in d.iterdir()}
        art = load_artifact(d / "model.joblib", signing_key=KEY.encode())
        assert art.metadata["run_id"] == run_id
    # The served files are byte copies of the last run's (artifact and every sidecar).
    last = base / "runs" / ids[-1]
    for name, data in served_files(base).items():
        assert data == (last / name).read_bytes(), name
    records = index_lines(base)
    for r, run_id in zip(records, ids, strict=True):
        assert str(r["artifact"]).endswith(f"/runs/{run_id}/model.joblib")
    assert records[0]["n_features"] == 2 and records[1]["n_features"] == 3
    history = [json.loads(x) for x in (base / "runs" / "promotions.jsonl").read_text().splitlines()]
    assert [(h["action"], h["run_id"], h["user"]) for h in history] == [
        ("train", i, "tester") for i in ids
    ]
    sha = hashlib.sha256((last / "model.joblib").read_bytes()).hexdigest()
    assert history[-1]["sha256"] == sha and history[-1]["out"] == "../artifacts/model.joblib"


def test_train_no_promote_keeps_the_served_model(
    reg: tuple[Path, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    base, _ids = reg
    before = served_files(base)
    new = _train(base, base / "a.toml", "--no-promote", "--seed", "3")
    assert served_files(base) == before
    assert "not served: houseprice promote" in capsys.readouterr().err
    assert (base / "runs" / new / "model.joblib").exists()
    assert index_lines(base)[-1]["out"] is None
    assert main(["promote", new]) == 0
    assert served_run(base) == new


# --- promote and rollback ----------------------------------------------------------------------


def test_promote_rollback_and_runs_marks_the_served_run(
    reg: tuple[Path, list[str]], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    base, (a, b, c) = reg
    monkeypatch.setenv("USER", "alice")
    capsys.readouterr()
    assert main(["promote", a]) == 0
    out = capsys.readouterr().out
    assert f"promoted run {a}" in out and f"(was {c})" in out and "/admin/reload" in out
    assert served_run(base) == a
    for name, data in served_files(base).items():  # an exact copy of run A's files
        assert data == (base / "runs" / a / name).read_bytes(), name
    assert read_checksums(served(base)) == [verify_artifact(served(base))]
    entry = json.loads((base / "runs" / "promotions.jsonl").read_text().splitlines()[-1])
    assert (entry["action"], entry["run_id"], entry["user"]) == ("promote", a, "alice")
    assert entry["sha256"] == verify_artifact(served(base)) and entry["time"].endswith("Z")

    assert main(["runs"]) == 0
    marked = [line for line in capsys.readouterr().out.splitlines() if line.startswith("*")]
    assert len(marked) == 1 and a in marked[0]

    # Promoting the served run again changes nothing and records nothing.
    n = len((base / "runs" / "promotions.jsonl").read_text().splitlines())
    assert main(["promote", a[-6:]]) == 0  # a unique suffix names the run
    assert "already served" in capsys.readouterr().out
    assert len((base / "runs" / "promotions.jsonl").read_text().splitlines()) == n

    # The history is a stack: train A, B, C, promote A; rollback -> C -> B -> A -> nothing.
    for expected in (c, b, a):
        assert main(["rollback"]) == 0
        assert served_run(base) == expected
    capsys.readouterr()
    before = served_files(base)
    assert main(["rollback"]) == 2
    assert "nothing to roll back to" in one_error(capsys.readouterr().err)
    assert served_files(base) == before


@pytest.mark.parametrize("case", ["unknown-id", "corrupt-artifact", "bad-signature", "gc-removed"])
def test_promote_refusals_are_one_error_line_and_leave_the_served_model(
    reg: tuple[Path, list[str]],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    case: str,
) -> None:
    base, (a, _, _) = reg
    run_art = base / "runs" / a / "model.joblib"
    if case == "corrupt-artifact":
        data = bytearray(run_art.read_bytes())
        data[len(data) // 2] ^= 0xFF
        run_art.write_bytes(bytes(data))
        expected = "checksum mismatch"
    elif case == "bad-signature":
        monkeypatch.setenv("MODEL_SIGNING_KEY", "another key")
        expected = "signature mismatch"
    elif case == "gc-removed":
        for p in run_art.parent.glob("model.joblib*"):
            p.unlink()
        expected = "has no stored artifact"
    else:
        expected = "unknown run id 'no-such-run'"
    before = served_files(base)
    history = (base / "runs" / "promotions.jsonl").read_bytes()
    capsys.readouterr()
    assert main(["promote", "no-such-run" if case == "unknown-id" else a]) == 2
    assert expected in one_error(capsys.readouterr().err)
    assert served_files(base) == before
    assert (base / "runs" / "promotions.jsonl").read_bytes() == history
    assert not [p for p in (base / "artifacts").iterdir() if p.name.startswith(".")]


def test_a_promote_that_cannot_write_leaves_the_served_files(reg: tuple[Path, list[str]]) -> None:
    """A real EFBIG ("disk full" for one process: RLIMIT_FSIZE) while the copy is written."""
    base, (a, _, _) = reg
    assert (base / "runs" / a / "model.joblib").stat().st_size > 1024

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1024, 1024))

    before = served_files(base)
    done = subprocess.run(
        [sys.executable, "-m", "model.workflow.cli", "promote", a],
        cwd=base,
        capture_output=True,
        text=True,
        preexec_fn=limit,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    line = one_error(done.stderr)
    assert "cannot write the artifact (File too large)" in line
    assert "the served artifact is unchanged" in line
    assert served_files(base) == before
    assert not [p.name for p in (base / "artifacts").iterdir() if p.name.startswith(".")]


def test_rollback_without_history_and_an_empty_runs_dir(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["rollback"]) == 2
    assert "no runs recorded here" in one_error(capsys.readouterr().err)
    assert main(["promote", "x", "--runs-dir", str(tmp_path / "none")]) == 2
    assert "no runs recorded here" in one_error(capsys.readouterr().err)


# --- a promote killed midway -------------------------------------------------------------------

# Runs `houseprice ARGS...` and SIGKILLs itself just before its N-th os.replace/os.unlink:
# every rename and removal of the promotion (and of the history append after it).
KILL_DRIVER = r"""
import os, signal, sys
limit = int(sys.argv[1])
calls = 0
real_replace, real_unlink = os.replace, os.unlink
def step():
    global calls
    calls += 1
    if calls > limit:
        os.kill(os.getpid(), signal.SIGKILL)
def replace(*a, **k):
    step()
    return real_replace(*a, **k)
def unlink(*a, **k):
    step()
    return real_unlink(*a, **k)
os.replace, os.unlink = replace, unlink
from model.workflow.cli import main
raise SystemExit(main(sys.argv[2:]))
"""


@pytest.mark.slow
def test_a_promote_killed_at_any_step_leaves_the_old_or_the_new_model_served(
    reg: tuple[Path, list[str]], tmp_path: Path
) -> None:
    base, (a, _, c) = reg
    env = {**os.environ, "MODEL_SIGNING_KEY": KEY, "PYTHONPATH": str(ROOT)}
    pristine = tmp_path / "pristine"
    shutil.copytree(base, pristine)
    seen: list[str] = []
    for limit in range(20):
        shutil.rmtree(base)
        shutil.copytree(pristine, base)
        done = subprocess.run(
            [sys.executable, "-c", KILL_DRIVER, str(limit), "promote", a],
            cwd=base,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        # What a server would load now: checksum and signature verified, then unpickled.
        art = load_artifact(served(base), signing_key=KEY.encode())
        run_id = art.metadata["run_id"]
        assert run_id in (a, c), (limit, run_id)
        seen.append(run_id)
        if done.returncode == 0:
            break
        assert done.returncode == -signal.SIGKILL, done.stderr
        # `houseprice runs` says when a promotion was cut short (both digests still listed).
        listed = subprocess.run(
            [sys.executable, "-m", "model.workflow.cli", "runs"],
            cwd=base,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        interrupted = len(read_checksums(served(base))) > 1
        assert ("promotion to artifacts/model.joblib was interrupted" in listed.stderr) == (
            interrupted
        ), listed.stderr
        # A later promote finishes the job and leaves a single-digest checksum file.
        assert (
            main(["promote", a, "--runs-dir", str(base / "runs"), "--out", str(served(base))]) == 0
        )
        assert served_run(base) == a
        assert len(read_checksums(served(base))) == 1
    else:
        pytest.fail("the promote never completed")
    # Kill points before the artifact's rename leave C, after it A; and there were several.
    assert seen[0] == c and seen[-1] == a and len(seen) >= 6, seen
    assert seen == sorted(seen, key=lambda r: r == a), seen  # C ... C, A ... A
    assert json.loads((base / "artifacts" / "model.json").read_text())["run_id"] == a


# --- runs: table, JSON, sort, limit, diff, old index lines ------------------------------------


def test_runs_json_has_one_object_per_line_with_the_fields(
    reg: tuple[Path, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    _base, (a, b, c) = reg
    capsys.readouterr()
    assert main(["runs", "--json"]) == 0
    records = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [r["run_id"] for r in records] == [c, b, a]  # newest first
    for r in records:
        for key in ("run_id", "created_at", "config", "data", "estimator", "params", "cv"):
            assert r[key] is not None, key
        assert r["test"]["rmse"] > 0 and "rmse_log" in r["cv"]
        assert r["artifact"] == str(Path("runs") / r["run_id"] / "model.joblib")
        assert r["served"] is (r["run_id"] == c)
        assert r["data"].endswith("small.csv") and r["config"].endswith(".toml")
    assert main(["runs", "--json", "--sort", "cv", "--limit", "2"]) == 0
    top = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    cvs = sorted(r["cv"]["rmse_log"]["mean"] for r in records)
    assert [r["cv"]["rmse_log"]["mean"] for r in top] == cvs[:2]
    assert main(["runs", "--json", "--sort", "r2", "--limit", "1"]) == 0
    best = json.loads(capsys.readouterr().out)
    assert best["test"]["r2"] == max(r["test"]["r2"] for r in records)


def test_runs_table_columns(
    reg: tuple[Path, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    base, (_a, b, _c) = reg
    capsys.readouterr()
    assert main(["runs", "--sort", "rmse"]) == 0
    lines = capsys.readouterr().out.splitlines()
    head = lines[0].split()
    assert head[:5] == ["run_id", "created_at", "config", "data", "features"]
    assert "test" in head and "r2" in head
    row_b = next(line for line in lines if b in line)
    assert "b.toml" in row_b and "small.csv" in row_b and " 3 " in row_b
    assert "Ridge(alpha=" in row_b and "±" in row_b
    rmse = [index_lines(base)[i]["test"]["rmse"] for i in range(3)]  # type: ignore[index]
    shown = [float(line.split()[-2].replace(",", "")) for line in lines[1:]]
    assert shown == sorted(round(x) for x in rmse)


def test_runs_lists_old_index_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A line written before the registry (no data path, no n_features, artifact = --out)."""
    runs = tmp_path / "runs"
    (runs / "old1").mkdir(parents=True)
    summary = {"data": {"path": "data/x.csv"}, "features": [{"name": "f"}, {"name": "g"}]}
    (runs / "old1" / "metrics.json").write_text(json.dumps(summary))
    old = {
        "run_id": "old1",
        "created_at": "2026-11-27T01:02:03Z",
        "config": "configs/ames.toml",
        "data_sha256": "ab" * 32,
        "rows": 100,
        "estimator": "Ridge",
        "params": {"alpha": 1.0},
        "cv": {"rmse_log": {"mean": 0.12, "std": 0.01}},
        "test": {"rmse": 20000.0, "r2": 0.9, "rmse_log": 0.12},
        "artifact": "artifacts/model.joblib",
        "artifact_sha256": "cd" * 32,
        "seconds": 3.0,
    }
    (runs / "index.jsonl").write_text(
        json.dumps(old) + "\n" + json.dumps({"run_id": "bare"}) + "\n"
    )
    assert main(["runs", "--runs-dir", str(runs)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    row = next(line for line in lines if "old1" in line)
    assert "ames.toml" in row and "x.csv" in row and " 2 " in row and "0.1200 ± 0.0100" in row
    assert main(["runs", "--runs-dir", str(runs), "--json"]) == 0
    recs = {r["run_id"]: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    assert recs["old1"]["artifact"] is None and recs["old1"]["out"] == "artifacts/model.joblib"
    assert recs["old1"]["n_features"] == 2 and recs["bare"]["cv"] == {}
    assert main(["promote", "old1", "--runs-dir", str(runs)]) == 2
    assert "has no stored artifact" in one_error(capsys.readouterr().err)


def test_runs_diff_shows_config_features_and_metrics(
    reg: tuple[Path, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    _base, (a, b, c) = reg
    capsys.readouterr()
    assert main(["runs", "diff", a, b]) == 0
    text = capsys.readouterr().out
    assert f"--- {a}" in text and f"+++ {b}" in text
    assert "~ model.grid.alpha: [1.0] -> [0.1, 10.0]" in text
    assert "+ features.lot_area.column = 'Lot.Area'" in text
    assert "features: 2 -> 3" in text and "  + lot_area (numeric)" in text
    assert "cv rmse_log " in text and "test r2 " in text and "->" in text
    assert main(["runs", "diff", a, c]) == 0
    same_config = capsys.readouterr().out
    assert "config:\n  (no change)" in same_config  # same config; --seed is not in it
    assert main(["runs", "diff", a, "nope"]) == 2
    assert "unknown run id 'nope'" in one_error(capsys.readouterr().err)


# --- gc -----------------------------------------------------------------------------------------


def test_gc_removes_old_unpromoted_artifacts_and_keeps_records(
    reg: tuple[Path, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    base, (a, b, c) = reg
    d = _train(base, base / "a.toml", "--no-promote", "--seed", "11")  # newest, not served
    capsys.readouterr()
    # Served: C. Rollback target: B. Newest: D. Never promoted and old: A.
    assert main(["gc", "--keep", "1", "--dry-run"]) == 0
    assert f"would remove the artifact of run {a}" in capsys.readouterr().out
    assert (base / "runs" / a / "model.joblib").exists()
    before = served_files(base)
    assert main(["gc", "--keep", "1"]) == 0
    out = capsys.readouterr().out
    assert f"removed the artifact of run {a}" in out and "removed 1 artifact(s)" in out
    assert not list((base / "runs" / a).glob("model.joblib*"))
    for kept in (b, c, d):
        assert (base / "runs" / kept / "model.joblib").exists(), kept
    assert (base / "runs" / a / "metrics.json").exists() and len(index_lines(base)) == 4
    assert served_files(base) == before
    assert main(["runs", "--json"]) == 0
    rec_a = next(
        r for r in map(json.loads, capsys.readouterr().out.splitlines()) if r["run_id"] == a
    )
    assert rec_a["artifact"] is None and rec_a["cv"]
    # Promote D: D is served and promoted, C the rollback target; B is neither, so it goes.
    assert main(["promote", d]) == 0
    assert main(["gc", "--keep", "0"]) == 0
    assert not (base / "runs" / b / "model.joblib").exists()
    assert (base / "runs" / c / "model.joblib").exists() and (
        base / "runs" / d / "model.joblib"
    ).exists()


# --- the CLI surface ------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["promote", "rollback", "gc"])
def test_new_subcommands_have_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([command, "--help"]) == 0
    assert capsys.readouterr().out.startswith(f"usage: houseprice {command}")


def test_gc_needs_keep(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gc"]) == 2
    assert "--keep" in one_error(capsys.readouterr().err)


# --- MLflow ---------------------------------------------------------------------------------


def test_training_without_the_flag_never_imports_mlflow(tmp_path: Path) -> None:
    data = tmp_path / "small.csv"
    data.write_text("\n".join((ROOT / "data" / "ames.csv").read_text().splitlines()[:121]) + "\n")
    cfg = tmp_path / "c.toml"
    cfg.write_text(config_text(data))
    code = (
        "import sys\n"
        "from model.workflow.cli import main\n"
        f"assert main(['train', '--config', {str(cfg)!r}, '--quiet', '--no-plots']) == 0\n"
        "assert main(['runs']) == 0\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'mlflow'))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize("store", ["file", "sqlite"])
def test_train_logs_to_a_real_mlflow_store(
    trained: tuple[Path, list[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store: str
) -> None:
    pytest.importorskip("mlflow")
    if store == "sqlite":
        pytest.importorskip("sqlalchemy")
        pytest.importorskip("alembic")
    from mlflow.tracking import MlflowClient

    src, _ = trained
    monkeypatch.chdir(tmp_path)
    uri = "file:./mlruns" if store == "file" else f"sqlite:///{tmp_path / 'mlflow.db'}"
    if store == "file":  # train --mlflow file:... opts in to MLflow 3's file store itself
        monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "")
        monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE")
    args = ("--mlflow", uri, "--mlflow-experiment", "hp-test")
    run_id = _train(tmp_path, src / "b.toml", *args, plots=store == "file")  # PNGs logged too
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("hp-test")
    assert exp is not None
    [run] = client.search_runs([exp.experiment_id])
    assert run.info.status == "FINISHED"
    assert run.data.tags["houseprice.run_id"] == run_id
    meta = json.loads((tmp_path / "runs" / run_id / "metrics.json").read_text())
    assert run.data.params["estimator"] == "Ridge"
    assert run.data.params["param.alpha"] == str(meta["search"]["best_params"]["alpha"])
    assert run.data.params["n_features"] == "3"
    assert run.data.metrics["cv_rmse_log_mean"] == pytest.approx(meta["cv"]["rmse_log"]["mean"])
    assert run.data.metrics["test_r2"] == pytest.approx(meta["test"]["r2"])
    names = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"model.joblib", "model.joblib.sha256", "MODEL_CARD.md", "metrics.json"} <= names
    pngs = {p.name for p in (tmp_path / "runs" / run_id).glob("*.png")}
    assert pngs <= names and (bool(pngs) == (store == "file")), (pngs, names)
    sha = verify_artifact(tmp_path / "runs" / run_id / "model.joblib")
    assert run.data.tags["houseprice.artifact_sha256"] == sha


def test_a_bad_mlflow_uri_fails_before_training(
    trained: tuple[Path, list[str]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytest.importorskip("mlflow")
    src, _ = trained
    monkeypatch.chdir(tmp_path)
    args = ["train", "--config", str(src / "a.toml"), "--quiet", "--mlflow", "bogus://nowhere"]
    assert main(args) == 2
    assert "--mlflow bogus://nowhere" in one_error(capsys.readouterr().err)
    assert not (tmp_path / "runs").exists() and not (tmp_path / "artifacts").exists()


def test_the_loader_accepts_a_listed_digest_only(reg: tuple[Path, list[str]]) -> None:
    """The transition sidecars: any listed digest (and HMAC) verifies, nothing else does."""
    from model.workflow.artifact import ArtifactError

    base, (a, b, _) = reg
    path = base / "runs" / a / "model.joblib"
    other = base / "runs" / b / "model.joblib"
    mine = verify_artifact(path)
    sums = path.with_name("model.joblib.sha256")
    sums.write_text(f"{verify_artifact(other)}  model.joblib\n{mine}  model.joblib\n")
    sig = path.with_name("model.joblib.sig")
    sig.write_text(other.with_name("model.joblib.sig").read_text() + sig.read_text())
    assert load_artifact(path, signing_key=KEY.encode()).metadata["run_id"] == a
    sums.write_text(f"{verify_artifact(other)}  model.joblib\n")
    with pytest.raises(ArtifactError, match="checksum mismatch"):
        verify_artifact(path)
    sums.write_text(f"{mine}  model.joblib\n")
    sig.write_text(other.with_name("model.joblib.sig").read_text())
    with pytest.raises(ArtifactError, match="signature mismatch"):
        verify_artifact(path, signing_key=KEY.encode())
