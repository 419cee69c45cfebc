"""schemathesis against a real uvicorn process: every route, >= 1,000 generated requests.

The CLI (``schemathesis run``) reads the served ``/openapi.json`` — the document built from
the loaded model's feature schema — and runs its examples, coverage, fuzzing and stateful
phases with every check. The test passes only if no response is a 5xx, every response
matches its declared status codes, content types, headers and schemas, and invalid data is
rejected. The server's own access log is checked independently for a 5xx.

Two documented business rules are told to the positive-data check (a schema cannot express
them): ``/feedback`` answers 404 for a model version this process never served, and the
Open Inference Protocol's generic tensor schema cannot name this model's inputs, so the V2
``infer`` route answers 400 for an unknown input name. A dictionary supplies the serving
model version (and the V2 model name) so that those routes are reached beyond their 4xx.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from .conftest import ROOT, Server

pytestmark = pytest.mark.e2e

TOKEN = "schemathesis-admin-token-7e21"
MIN_CASES = 1000


def config(version: str) -> str:
    return f"""
[dictionaries.versions]
values = [{json.dumps(version)}]

[parameters]
"path.name" = "houseprice"
"path.version" = {json.dumps(version)}
"body.model_version" = {{ dictionary = "versions", probability = 0.8 }}

[[operations]]
include-path = "/feedback"
checks.positive_data_acceptance.expected-statuses = ["2xx", "404", "422"]

[[operations]]
include-path = "/v2/models/{{name}}/infer"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400"]

[[operations]]
include-path = "/v2/models/{{name}}/versions/{{version}}/infer"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400"]
"""


def test_schemathesis_finds_no_5xx_and_no_schema_violation(
    serve: Callable[..., Server], artifact_path: str, tmp_path: Path
) -> None:
    server = serve({"MODEL_PATH": artifact_path, "ADMIN_TOKEN": TOKEN})
    version = httpx.get(server.url + "/health/ready").json()["model_version"]
    cfg = tmp_path / "schemathesis.toml"
    cfg.write_text(config(version))
    reports = tmp_path / "reports"
    st = Path(sys.executable).parent / "schemathesis"
    assert st.exists(), f"{st}: schemathesis is not installed in this environment"
    cmd = [
        str(st), "--config-file", str(cfg), "--no-color",
        "run", server.url + "/openapi.json",
        "--checks", "all",
        "--phases", "examples,coverage,fuzzing,stateful",
        "--max-examples", "60",
        "--seed", "20261127",
        "--workers", "1",  # hypothesis' lambda repr runs ast.parse: not thread-safe on 3.11
        "--request-timeout", "30",
        "--header", f"Authorization: Bearer {TOKEN}",
        "--report", "json",
        "--report-dir", str(reports),
    ]  # fmt: skip
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=400, check=False)
    output = done.stdout + done.stderr
    reports_files = sorted(reports.glob("json-*.json"))
    assert reports_files, output[-4000:]
    report = json.loads(reports_files[-1].read_text())
    assert done.returncode == 0, output[-6000:]
    assert report["failures"] == [] and report["errors"] == [], output[-6000:]
    ops = report["operations"]
    assert ops["tested"] == ops["total"] >= 11, ops  # all routes of the document
    generated = report["test_cases"]["generated"]
    print(f"schemathesis: {generated} cases over {ops['tested']} operations, no failure")
    assert generated >= MIN_CASES, report["test_cases"]
    assert all(p["status"] == "success" for p in report["phases"].values()), report["phases"]

    # Independently of schemathesis: the server's access log shows no 5xx at all.
    lines = [json.loads(x) for x in server.logs().splitlines() if x.startswith("{")]
    statuses = [x["status"] for x in lines if x.get("msg") == "request"]
    assert len(statuses) >= MIN_CASES, len(statuses)
    assert not [s for s in statuses if s >= 500], sorted(set(statuses))
    assert httpx.get(server.url + "/health/live").status_code == 200
    assert server.stop() == 0
