"""The prediction log, feedback by request id, the shadow model and ``houseprice report`` with a
real server: ``python -m app`` under uvicorn on a free port, real HTTP, real files, the CLI run
as a process on the log the server wrote."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from exposition import metric  # tests/exposition.py
from test_app_api import build_artifact  # a small real artifact on three of the features

from e2e.conftest import ROOT, Server
from model.workflow.artifact import load_artifact

pytestmark = pytest.mark.e2e

TOKEN = "e2e-traffic-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def caught_up(server: Server, timeout: float = 30.0) -> str:
    """The server's /metrics once the shadow has priced every house the champion priced."""
    deadline = time.monotonic() + timeout
    while True:
        text = httpx.get(server.url + "/metrics").text
        champion = sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("houseprice_predictions_total{") and 'role="champion"' in line
        )
        shadow = sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("houseprice_predictions_total{") and 'role="shadow"' in line
        )
        if shadow >= champion > 0:
            return text
        if time.monotonic() > deadline:
            raise AssertionError(f"the shadow priced {shadow} of {champion} houses")
        time.sleep(0.05)  # poll interval


def test_log_feedback_shadow_and_report_over_real_http(
    serve: Callable[..., Server], artifact_path: str, tmp_path: Path
) -> None:
    models = tmp_path / "models"
    models.mkdir()
    for suffix in ("", ".sha256"):
        shutil.copyfile(artifact_path + suffix, models / f"model.joblib{suffix}")
    champion = str(models / "model.joblib")
    build_artifact(
        models, "shadow-e2e", names=("living_area", "lot_area", "neighborhood"),
        filename="shadow.joblib",
    )  # fmt: skip
    version = load_artifact(champion).metadata["model_version"]
    logs = tmp_path / "logs"
    logs.mkdir()
    log = logs / "predictions.jsonl"
    server = serve(
        {
            "MODEL_PATH": champion,
            "SHADOW_MODEL_PATH": str(models / "shadow.joblib"),
            "PREDICTION_LOG": str(log),
            "PREDICTION_LOG_MAX_BYTES": "16384",
            "PREDICTION_LOG_BACKUPS": "20",
            "ADMIN_TOKEN": TOKEN,
        }
    )
    meta = httpx.get(server.url + "/model").json()
    assert meta["model_version"] == version and meta["shadow"]["model_version"] == "shadow-e2e"
    example = {f["name"]: f["example"] for f in meta["features"] if f["example"] is not None}

    prices: dict[tuple[str, int], float] = {}
    with httpx.Client(base_url=server.url) as client:
        for k in range(40):
            house = {**example, "living_area": 800 + 40 * k}
            r = client.post("/predict", json=house, headers={"X-Request-Id": f"h-{k}"})
            assert r.status_code == 200 and r.json()["request_id"] == f"h-{k}"
            prices[f"h-{k}", 0] = r.json()["price"]
        batch = [{**example, "living_area": 1000 + 50 * i} for i in range(20)]
        r = client.post("/predict", json={"instances": batch}, headers={"X-Request-Id": "batch"})
        assert r.status_code == 200
        for i, p in enumerate(r.json()["prices"]):
            prices["batch", i] = p
        caught_up(server)

        sales = {("h-3", 0): 180_000.0, ("h-17", 0): 240_000.0, ("batch", 4): 199_000.0}
        for (rid, i), actual in sales.items():
            body: dict[str, Any] = {"request_id": rid, "actual_price": actual}
            if rid == "batch":
                body["index"] = i
            fb = client.post("/feedback", json=body)
            assert fb.status_code == 200, fb.text
            got = fb.json()
            assert got["predicted_price"] == prices[rid, i]
            assert got["abs_error"] == pytest.approx(abs(actual - prices[rid, i]))
            assert got["shadow"]["model_version"] == "shadow-e2e"
        missing = client.post("/feedback", json={"request_id": "nope", "actual_price": 1.0})
        assert missing.status_code == 404 and "'nope' is not among" in missing.json()["detail"]

        text = client.get("/metrics").text
        assert metric(text, "houseprice_predictions_total", model_version=version,
                      role="champion") == 60  # fmt: skip
        assert metric(text, "houseprice_predictions_total", model_version="shadow-e2e",
                      role="shadow") == 60  # fmt: skip
        assert metric(text, "houseprice_feedback_total", model_version="shadow-e2e",
                      role="shadow") == 3  # fmt: skip
        assert metric(text, "houseprice_prediction_log_dropped_total", reason="queue_full") == 0

        dropped = client.post("/admin/reload", json={"drop_shadow": True}, headers=AUTH)
        assert dropped.status_code == 200 and dropped.json()["shadow"] is None
        assert client.post("/predict", json=example, headers={"X-Request-Id": "after"}).is_success
        assert "shadow" not in client.get("/model").json()
    assert server.stop() == 0  # SIGTERM: the log's queue is written before the exit

    files = sorted(logs.iterdir())
    assert len(files) > 2, files  # rotated by size
    assert all(f.stat().st_size <= 16384 for f in files)
    lines = [json.loads(x) for f in files for x in f.read_text().splitlines()]
    champion_lines = {(x["request_id"], x["index"]) for x in lines if x["role"] == "champion"}
    shadow_lines = {(x["request_id"], x["index"]) for x in lines if x["role"] == "shadow"}
    assert champion_lines == {*prices, ("after", 0)} and shadow_lines == set(prices)
    logged = {(x["request_id"], x["index"]): x["price"] for x in lines if x["role"] == "champion"}
    assert all(logged[key] == p for key, p in prices.items())

    feedback = tmp_path / "sales.jsonl"
    feedback.write_text(
        "".join(
            json.dumps({"request_id": rid, "index": i, "actual_price": a}) + "\n"
            for (rid, i), a in sales.items()
        )
    )
    out = tmp_path / "report"
    args = [arg for f in files for arg in ("--log", str(f))]
    done = subprocess.run(
        [sys.executable, "-m", "model.workflow.cli", "report", *args, "--feedback",
         str(feedback), "--model", champion, "--out", str(out), "--min-samples", "10"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["model_lines"] == 61
    assert report["versions"] == {f"{version} (champion)": 61, "shadow-e2e (shadow)": 60}
    assert report["psi"]["living_area"][0] is not None
    acc = {(a["model_version"], a["role"]): a for a in report["accuracy"]}
    errors = [abs(a - prices[key]) for key, a in sales.items()]
    assert acc[version, "champion"]["n"] == 3
    assert acc[version, "champion"]["mae"] == pytest.approx(sum(errors) / 3)
    assert acc["shadow-e2e", "shadow"]["n"] == 3
    assert "# Traffic report" in (out / "report.md").read_text()


def test_the_log_to_stdout_beside_the_json_logs(
    serve: Callable[..., Server], artifact_path: str, tmp_path: Path
) -> None:
    server = serve({"MODEL_PATH": artifact_path, "PREDICTION_LOG": "stdout"})
    meta = httpx.get(server.url + "/model").json()
    example = {f["name"]: f["example"] for f in meta["features"] if f["example"] is not None}
    r = httpx.post(server.url + "/predict", json={"instances": [example, example]},
                   headers={"X-Request-Id": "std-1"})  # fmt: skip
    assert r.status_code == 200
    assert server.stop() == 0
    found = []
    for raw in server.logs().splitlines():
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError:
            continue
        if obj.get("event") == "prediction":
            found.append(obj)
    assert [(x["request_id"], x["index"], x["price"]) for x in found] == [
        ("std-1", 0, r.json()["prices"][0]),
        ("std-1", 1, r.json()["prices"][1]),
    ]


def test_a_bad_setting_stops_the_server_naming_it(tmp_path: Path, artifact_path: str) -> None:
    env = {"MODEL_PATH": artifact_path, "PREDICTION_LOG": str(tmp_path / "no" / "such" / "log")}
    done = subprocess.run(
        [sys.executable, "-m", "app", "--port", "0"], cwd=ROOT, capture_output=True, text=True,
        timeout=60, check=False, env={**os.environ, **env},
    )  # fmt: skip
    assert done.returncode == 2
    assert "houseprice serve: PREDICTION_LOG: folder" in done.stderr


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (from /proc)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:  # exited while listed
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def gone(pid: int, timeout: float = 10.0) -> bool:
    """True once ``pid`` has exited (or is a zombie nobody reaped yet)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
        except OSError:
            return True
        if state == "Z":
            return True
        time.sleep(0.05)  # poll interval
    return False


@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL"])
def test_the_shadow_process_never_outlives_the_server(
    serve: Callable[..., Server], artifact_path: str, tmp_path: Path, how: str
) -> None:
    server = serve({"MODEL_PATH": artifact_path, "SHADOW_MODEL_PATH": artifact_path})
    meta = httpx.get(server.url + "/model").json()
    example = {f["name"]: f["example"] for f in meta["features"] if f["example"] is not None}
    assert httpx.post(server.url + "/predict", json=example).status_code == 200
    caught_up(server)  # the shadow priced the house: its process is alive and serving
    (worker,) = children(server.proc.pid)
    assert "app.shadowworker" in Path(f"/proc/{worker}/cmdline").read_text()
    if how == "SIGTERM":
        assert server.stop() == 0
    else:  # no shutdown code runs: the worker sees its input pipe close
        server.proc.kill()
        server.proc.wait(10)
    assert gone(worker), f"the shadow's process {worker} outlived the server ({how})"


def test_a_shadow_worker_slow_to_exit_holds_no_answer_and_none_outlives_the_server(
    serve: Callable[..., Server], artifact_path: str
) -> None:
    """Over real HTTP: ``/admin/reload`` dropping a shadow whose worker cannot exit (stopped)
    answers once it is killed (after 5 s), ``/health/live`` and ``/predict`` are answered
    meanwhile; at SIGTERM with another such worker the server exits cleanly, the worker gone."""
    server = serve(
        {
            "MODEL_PATH": artifact_path,
            "SHADOW_MODEL_PATH": artifact_path,
            "ADMIN_TOKEN": TOKEN,
        }
    )
    meta = httpx.get(server.url + "/model").json()
    example = {f["name"]: f["example"] for f in meta["features"] if f["example"] is not None}
    (worker,) = children(server.proc.pid)
    os.kill(worker, signal.SIGSTOP)  # it cannot finish, nor exit
    answers: list[httpx.Response] = []
    dropping = threading.Thread(
        target=lambda: answers.append(
            httpx.post(
                server.url + "/admin/reload", json={"drop_shadow": True}, headers=AUTH, timeout=60
            )
        )
    )
    dropping.start()
    try:
        waits: list[float] = []
        dropped = False
        while not dropped or len(waits) < 3:  # until the drop has begun, three rounds at least
            started = time.perf_counter()
            assert httpx.get(server.url + "/health/live").status_code == 200
            assert httpx.post(server.url + "/predict", json=example).status_code == 200
            dropped = "shadow" not in httpx.get(server.url + "/model").json()
            waits.append(time.perf_counter() - started)
            assert len(waits) < 1000
        still_dropping = dropping.is_alive()
    finally:
        dropping.join(60)
    assert max(waits) < 1.0, waits  # not the worker's 5 s
    assert still_dropping and answers[0].status_code == 200, answers
    assert gone(worker)

    r = httpx.post(
        server.url + "/admin/reload", json={"shadow_path": artifact_path}, headers=AUTH, timeout=60
    )
    assert r.status_code == 200, r.text
    (second,) = children(server.proc.pid)
    os.kill(second, signal.SIGSTOP)
    assert server.stop(timeout=30) == 0
    assert gone(second), f"the shadow's process {second} outlived the server"
