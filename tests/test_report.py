"""``houseprice report``: the drift and accuracy report over a prediction log.

The log is written here in the documented line format (Contract 3), as the service writes it;
tests/e2e/test_traffic.py runs the report on a log a real server wrote.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_app_api import FEATURES, HOUSE, build_artifact, training_table

from model import drift
from model.workflow import plots
from model.workflow.artifact import load_artifact
from model.workflow.cli import main

T0 = datetime(2026, 11, 30, tzinfo=UTC).timestamp()


@pytest.fixture(scope="module")
def artifact(tmp_path_factory: pytest.TempPathFactory) -> str:
    return build_artifact(tmp_path_factory.mktemp("report-model"), "rep-1")


def line(
    t: float, rid: str, inputs: dict[str, Any], price: float, *, version: str = "rep-1",
    role: str = "champion", index: int = 0,
) -> str:  # fmt: skip
    return json.dumps(
        {
            "event": "prediction",
            "time": datetime.fromtimestamp(t, UTC).isoformat(),
            "request_id": rid,
            "index": index,
            "model_version": version,
            "role": role,
            "inputs": inputs,
            "price": price,
        }
    )


def traffic(n: int = 300, scale: float = 1.0) -> list[dict[str, Any]]:
    """``n`` houses whose living areas are drawn from the training data, times ``scale``."""
    rng = np.random.default_rng(0)
    cols, _ = training_table([f for f in FEATURES if f["name"] == "living_area"])
    area = rng.choice(cols["living_area"], n) * scale
    hoods = rng.choice(["NAmes", "OldTown", "CollgCr", "Mars"], n, p=[0.4, 0.3, 0.27, 0.03])
    return [
        {
            "living_area": float(a),
            "lot_area": None if k % 10 == 0 else 9500.0,
            "neighborhood": str(h),
            "garage_type": "Attchd",
        }
        for k, (a, h) in enumerate(zip(area, hoods, strict=True))
    ]


def run(*args: str) -> int:
    return main(["report", *args])


def test_report_figures_match_the_drift_maths_and_the_feedback(
    artifact: str, tmp_path: Path
) -> None:
    day1, day2 = traffic(300), traffic(300, scale=1.5)  # the second day's houses are larger
    log = tmp_path / "predictions.jsonl"
    rows = [line(T0 + 60 * k, f"a{k}", h, 150_000.0 + k) for k, h in enumerate(day1)]
    rows += [line(T0 + 86400 + 60 * k, f"b{k}", h, 250_000.0) for k, h in enumerate(day2)]
    rows += [line(T0 + 60, "a1", day1[1], 140_000.0, version="chal-1", role="shadow")]
    rows.insert(5, json.dumps({"ts": 1, "level": "info", "msg": "a service log line"}))
    rows.insert(6, "")
    log.write_text("\n".join(rows) + "\n")
    feedback = tmp_path / "feedback.jsonl"
    feedback.write_text(
        "\n".join(
            json.dumps(x)
            for x in [
                {"request_id": "a0", "actual_price": 160_000.0},
                {"request_id": "a1", "index": 0, "actual_price": 145_000.0},
                {"request_id": "zzz", "actual_price": 1.0},
            ]
        )
        + "\n"
    )
    out = tmp_path / "out"
    code = run("--log", str(log), "--feedback", str(feedback), "--model", artifact,
               "--out", str(out), "--window", "1d")  # fmt: skip
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    assert report["lines"] == 601 and report["skipped"] == 1 and report["model_lines"] == 600
    assert report["versions"] == {"rep-1 (champion)": 600, "chal-1 (shadow)": 1}
    assert [w["rows"] for w in report["windows"]] == [300, 300]

    meta = load_artifact(artifact).metadata
    profile = meta["reference"]["features"]["living_area"]
    for j, day in enumerate((day1, day2)):
        expected = drift.profile_psi(profile, np.array([h["living_area"] for h in day]))
        assert report["psi"]["living_area"][j] == pytest.approx(expected, rel=1e-12)
    assert report["psi"]["living_area"][1] > drift.PSI_SIGNIFICANT > report["psi"]["living_area"][0]
    pred = meta["reference"]["prediction"]
    assert report["psi"]["prediction"][0] == pytest.approx(
        drift.profile_psi(pred, np.array([150_000.0 + k for k in range(300)])), rel=1e-12
    )

    q = report["quality"]
    assert q["lot_area"]["missing"] == 60
    assert q["neighborhood"]["unknown"] == sum(h["neighborhood"] == "Mars" for h in day1 + day2)
    assert q["neighborhood"]["unknown_values"] == {"Mars": q["neighborhood"]["unknown"]}
    big = [h["living_area"] for h in day1 + day2]
    hi = next(f for f in meta["features"] if f["name"] == "living_area")["max"]
    assert q["living_area"]["out_of_range"] == sum(a > hi for a in big)

    acc = {(a["model_version"], a["role"]): a for a in report["accuracy"]}
    errors = [160_000.0 - 150_000.0, 145_000.0 - 150_001.0]
    assert acc["rep-1", "champion"]["n"] == 2
    assert acc["rep-1", "champion"]["mae"] == pytest.approx(np.mean(np.abs(errors)))
    assert acc["rep-1", "champion"]["rmse"] == pytest.approx(math.sqrt(np.mean(np.square(errors))))
    assert acc["rep-1", "champion"]["bias"] == pytest.approx(np.mean(errors))
    assert acc["chal-1", "shadow"]["mae"] == pytest.approx(5000.0)
    assert report["feedback_lines"] == 3 and report["feedback_joined"] == 2

    md = (out / "report.md").read_text()
    assert "# Traffic report: model version rep-1" in md
    assert "| chal-1 | shadow | 1 | 5,000 | 5,000 | +5,000 |" in md
    assert "⚠" in md  # the drifted day
    if plots.available():
        for name in ("drift.png", "predicted_vs_observed.png"):
            assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
            assert f"]({name})" in md


def test_small_windows_get_no_score(artifact: str, tmp_path: Path) -> None:
    log = tmp_path / "p.jsonl"
    log.write_text("\n".join(line(T0 + 3600 * k, f"r{k}", HOUSE, 1e5) for k in range(5)) + "\n")
    out = tmp_path / "out"
    assert run("--log", str(log), "--model", artifact, "--out", str(out), "--window", "1h") == 0
    report = json.loads((out / "report.json").read_text())
    assert report["psi"]["living_area"] == [None] * 5
    assert report["psi_all"]["living_area"] is not None  # over the whole log
    assert "No feedback file given" in (out / "report.md").read_text()


def refused(capsys: pytest.CaptureFixture[str], out: Path, *args: str) -> str:
    """Run a report that must be refused: exit 2, one error line, nothing written."""
    assert run(*args, "--out", str(out)) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert not out.exists()
    return err


def test_bad_lines_are_refused_naming_file_and_line(
    artifact: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = line(T0, "r0", HOUSE, 1e5)
    out = tmp_path / "out"
    cases = [
        ("{not json", "not a JSON line"),
        (json.dumps([1, 2]), "expected a JSON object, got list"),
        (json.dumps({"event": "prediction", "time": "x"}), "prediction line without"),
        (line(T0, "r1", HOUSE, 1e5).replace('"champion"', '"boss"'), "'role' must be one of"),
        (line(T0, "r1", HOUSE, float("nan")).replace("NaN", '"cheap"'), "'price' must be"),
        (line(T0, "r1", {**HOUSE, "living_area": "big"}, 1e5), "input 'living_area' of kind"),
        (line(T0, "r1", {"living_area": 1.0}, 1e5), "inputs lack feature(s)"),
        (line(T0, "r1", {**HOUSE, "pool": 1.0}, 1e5), "['pool'] that model version rep-1"),
        (json.dumps({**json.loads(good), "time": "yesterday"}), "not an ISO 8601 time"),
    ]
    for k, (bad, why) in enumerate(cases):
        log = tmp_path / f"log{k}.jsonl"
        log.write_text(f"{good}\n{good}\n{bad}\n")
        err = refused(capsys, out, "--log", str(log), "--model", artifact)
        assert f"{log}:3: " in err and why in err, (bad, err)


def test_a_log_from_another_model_is_refused(
    artifact: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "p.jsonl"
    log.write_text(line(T0, "r", HOUSE, 1e5, version="other-9") + "\n")
    err = refused(capsys, tmp_path / "out", "--log", str(log), "--model", artifact)
    assert "no prediction by model version rep-1 (the log holds ['other-9'])" in err
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    assert "no prediction line" in refused(
        capsys, tmp_path / "out", "--log", str(empty), "--model", artifact
    )


def test_bad_feedback_and_flags_are_refused(
    artifact: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "p.jsonl"
    log.write_text(line(T0, "r", HOUSE, 1e5) + "\n")
    fb = tmp_path / "fb.jsonl"
    for bad, why in [
        ({"actual_price": 1.0}, "without 'request_id'"),
        ({"request_id": "r"}, "without 'actual_price'"),
        ({"request_id": "r", "actual_price": -3}, "'actual_price' must be > 0"),
        ({"request_id": "r", "index": 1.5, "actual_price": 3}, "'index' must be an integer"),
    ]:
        fb.write_text(json.dumps({"request_id": "r", "actual_price": 1.0}) + "\n" + json.dumps(bad))
        err = refused(capsys, tmp_path / "out", "--log", str(log), "--feedback", str(fb),
                      "--model", artifact)  # fmt: skip
        assert f"{fb}:2: " in err and why in err, err
    err = refused(capsys, tmp_path / "out", "--log", str(log), "--model", artifact,
                  "--window", "soon")  # fmt: skip
    assert "--window: expected a duration" in err
    missing = refused(capsys, tmp_path / "out", "--log", str(tmp_path / "nope"), "--model",
                      artifact)  # fmt: skip
    assert "nope: no such file" in missing


def test_an_existing_report_is_kept_when_the_new_one_is_refused(
    artifact: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "p.jsonl"
    log.write_text(line(T0, "r", HOUSE, 1e5) + "\n")
    out = tmp_path / "out"
    assert run("--log", str(log), "--model", artifact, "--out", str(out)) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    log.write_text(line(T0, "r", HOUSE, 1e5) + "\n{broken\n")
    assert run("--log", str(log), "--model", artifact, "--out", str(out)) == 2
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    capsys.readouterr()


def test_the_counts_do_not_depend_on_how_the_lines_are_chunked(
    artifact: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The report keeps bucket counts, not lines: flushing every 7 lines or once at the end
    gives the same figures."""
    from model.workflow import report

    houses = traffic(250) + traffic(250, scale=1.3)
    log = tmp_path / "p.jsonl"
    log.write_text(
        "".join(line(T0 + 600 * k, f"r{k}", h, 1e5 + k) + "\n" for k, h in enumerate(houses))
    )
    meta = load_artifact(artifact).metadata
    whole = report.build(report.LogReader([log]), meta, None, [str(log)], 3600 * 24, 50)
    monkeypatch.setattr(report._Drift, "CHUNK", 7)
    chunked = report.build(report.LogReader([log]), meta, None, [str(log)], 3600 * 24, 50)
    assert whole.windows == chunked.windows and len(whole.windows) == 4
    assert whole.psi == chunked.psi and whole.psi_all == chunked.psi_all
    values = np.array([h["living_area"] for h in houses])
    profile = meta["reference"]["features"]["living_area"]
    assert whole.psi_all["living_area"] == pytest.approx(drift.profile_psi(profile, values))
