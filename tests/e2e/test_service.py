"""The service as deployed: a real uvicorn process, real HTTP, the default trained model."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from conftest import require_tool

from e2e.conftest import Server
from model.base import as_columns
from model.workflow.artifact import load_artifact, save_artifact

pytestmark = pytest.mark.e2e

TOKEN = "e2e-admin-token"


def example(server: Server) -> dict[str, Any]:
    doc = httpx.get(server.url + "/openapi.json").json()
    body = doc["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]
    return dict(body["examples"]["house"]["value"])


def variations(base: dict[str, Any], n: int) -> list[dict[str, Any]]:
    """``n`` different houses around the example (sizes and ages vary)."""
    rows = []
    for i in range(n):
        row = dict(base)
        row["living_area"] = 700 + 37 * (i % 60)
        if "year_built" in row:
            row["year_built"] = 1950 + i % 55
            if "year_remodeled" in row:
                row["year_remodeled"] = max(row["year_built"], row["year_remodeled"])
        rows.append(row)
    return rows


def copy_artifact(src: str, directory: Path, name: str) -> Path:
    """Copy an artifact with its sidecars under a new file name (checksums stay valid)."""
    directory.mkdir(parents=True, exist_ok=True)
    dst = directory / name
    shutil.copyfile(src, dst)
    digest = Path(src + ".sha256").read_text().split()[0]
    (directory / f"{name}.sha256").write_text(f"{digest}  {name}\n")
    return dst


def test_predictions_over_http_match_the_pipeline(
    serve: Callable[..., Server], artifact_path: str
) -> None:
    server = serve({"MODEL_PATH": artifact_path})
    art = load_artifact(artifact_path)
    base = example(server)
    rows = variations(base, 40)
    with httpx.Client(base_url=server.url) as c:
        one = c.post("/predict", json=rows[0], headers={"x-request-id": "e2e-1"})
        assert one.status_code == 200, one.text
        assert one.headers["x-request-id"] == one.json()["request_id"] == "e2e-1"
        assert one.json()["model_version"] == art.metadata["model_version"]
        batch = c.post("/predict", json={"instances": rows})
        assert batch.status_code == 200, batch.text
        expected = art.pipeline.predict(as_columns(rows))
        np.testing.assert_allclose(batch.json()["prices"], expected, rtol=1e-9)
        assert one.json()["price"] == pytest.approx(float(expected[0]), rel=1e-9)
        assert c.get("/model").json()["model_version"] == art.metadata["model_version"]
        bad = c.post("/predict", json={**rows[0], "living_area": "big"})
        assert bad.status_code == 422
        assert bad.json()["detail"][0]["loc"] == ["body", "living_area"]
        metrics = c.get("/metrics").text
        assert (
            'houseprice_http_requests_total{method="POST",route="/predict",status="2xx"} 2.0'
            in (metrics)
        )
    logs = [json.loads(x) for x in server.logs().splitlines() if x.startswith("{")]
    access = [x for x in logs if x.get("logger") == "houseprice.access"]
    assert any(x["request_id"] == "e2e-1" and x["status"] == 200 for x in access)


def test_openapi_document_lists_the_models_fields(
    serve: Callable[..., Server], artifact_path: str
) -> None:
    server = serve({"MODEL_PATH": artifact_path})
    features = load_artifact(artifact_path).metadata["features"]
    doc = httpx.get(server.url + "/openapi.json").json()
    house = doc["components"]["schemas"]["House"]
    assert list(house["properties"]) == [f["name"] for f in features]
    assert set(house["required"]) == {f["name"] for f in features if f["required"]}
    for f in features:
        prop = house["properties"][f["name"]]
        assert f["description"] in prop["description"]
        if f["unit"]:
            assert f["unit"] in prop["description"]
        if f["kind"] == "categorical" and f["categories"]:
            assert set(f["categories"]) <= set(prop["examples"])
    docs = httpx.get(server.url + "/docs")
    assert docs.status_code == 200 and "/static/swagger-ui-bundle.js" in docs.text


def _load(
    url: str,
    body: dict[str, Any],
    stop: threading.Event,
    out: list[tuple[int, str]],
    errors: list[str],
) -> None:
    with httpx.Client(base_url=url, timeout=30.0) as c:
        while not stop.is_set():
            try:
                r = c.post("/predict", json=body)
                out.append((r.status_code, r.json().get("model_version", r.text)))
            except Exception as e:  # every failure is recorded and fails the test
                errors.append(repr(e))


def _wait_for(done: list[Any], count: int, timeout: float = 60.0) -> None:
    """Block until ``done`` has ``count`` more items than now (load progressed)."""
    target = len(done) + count
    event = threading.Event()
    deadline = threading.Timer(timeout, event.set)
    deadline.start()
    try:
        while len(done) < target and not event.is_set():
            event.wait(0.01)
    finally:
        deadline.cancel()
    assert len(done) >= target, f"load stalled at {len(done)} requests"


def test_reload_good_and_tampered_artifacts_under_load_fails_no_request(
    serve: Callable[..., Server], artifact_path: str, tmp_path: Path
) -> None:
    models = tmp_path / "models"
    current = copy_artifact(artifact_path, models, "model.joblib")
    art = load_artifact(artifact_path)
    old_version = art.metadata["model_version"]
    new_version = old_version + "-next"
    save_artifact(
        models / "next.joblib", art.pipeline, {**art.metadata, "model_version": new_version}
    )
    tampered = copy_artifact(str(models / "next.joblib"), models, "tampered.joblib")
    data = bytearray(tampered.read_bytes())
    data[len(data) // 3] ^= 0x20
    tampered.write_bytes(bytes(data))

    server = serve({"MODEL_PATH": str(current), "ADMIN_TOKEN": TOKEN})
    body = example(server)
    stop = threading.Event()
    results: list[tuple[int, str]] = []
    errors: list[str] = []
    threads = [
        threading.Thread(target=_load, args=(server.url, body, stop, results, errors))
        for _ in range(4)
    ]
    for t in threads:
        t.start()
    admin = httpx.Client(base_url=server.url, headers={"authorization": f"Bearer {TOKEN}"})
    try:
        _wait_for(results, 50)
        r = admin.post("/admin/reload", json={"path": "next.joblib"})
        assert r.status_code == 200, r.text
        assert r.json()["model_version"] == new_version
        _wait_for(results, 50)
        r = admin.post("/admin/reload", json={"path": "tampered.joblib"})
        assert r.status_code == 409 and "checksum mismatch" in r.json()["detail"]
        _wait_for(results, 50)
        assert httpx.get(server.url + "/health/ready").json()["model_version"] == new_version
        r = admin.post("/admin/reload")  # back to MODEL_PATH
        assert r.status_code == 200 and r.json()["model_version"] == old_version
        _wait_for(results, 50)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
        admin.close()
    assert errors == []
    assert {status for status, _ in results} == {200}, [x for x in results if x[0] != 200][:5]
    versions = [v for _, v in results]
    assert new_version in versions and old_version in versions
    assert versions[-1] == old_version


def test_sigterm_mid_load_finishes_in_flight_requests_and_exits_0(
    serve: Callable[..., Server], artifact_path: str
) -> None:
    server = serve({"MODEL_PATH": artifact_path})
    rows = variations(example(server), 2000)
    payload = json.dumps({"instances": rows}).encode()
    half = len(payload) // 2
    n = 3
    started = [threading.Event() for _ in range(n)]
    go = threading.Event()
    responses: list[httpx.Response] = []
    errors: list[str] = []

    def client(i: int) -> None:
        def body() -> Iterator[bytes]:
            yield payload[:half]
            started[i].set()  # the server has the headers and half the body: in flight
            go.wait(30)
            yield payload[half:]

        try:
            with httpx.Client(base_url=server.url, timeout=60.0) as c:
                responses.append(
                    c.post("/predict", content=body(), headers={"content-type": "application/json"})
                )
        except Exception as e:
            errors.append(repr(e))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for e in started:
        assert e.wait(30)
    # the first halves are on the wire; wait until the server has read all three requests
    in_flight = 0.0
    deadline = time.monotonic() + 30
    while in_flight < n:
        assert time.monotonic() < deadline, "the requests never reached the server"
        text = httpx.get(server.url + "/metrics").text
        line = next(
            x for x in text.splitlines() if x.startswith("houseprice_http_requests_in_flight")
        )
        in_flight = float(line.split()[-1]) - 1  # minus this /metrics request itself
    server.proc.send_signal(signal.SIGTERM)
    go.set()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert [r.status_code for r in responses] == [200] * n
    assert all(len(r.json()["prices"]) == 2000 for r in responses)
    assert server.proc.wait(timeout=30) == 0
    logs = server.logs()
    assert "SIGTERM: readiness is now 503" in logs
    assert "Finished server process" in logs
    with pytest.raises(httpx.ConnectError):
        httpx.get(server.url + "/health/live")


def test_body_over_the_limit_is_refused_while_streaming(
    serve: Callable[..., Server], artifact_path: str
) -> None:
    limit = 100_000
    server = serve({"MODEL_PATH": artifact_path, "MAX_BODY_BYTES": str(limit)})
    port = int(server.url.rsplit(":", 1)[1])
    chunk = b"[" + b" " * 16383  # never valid JSON: only the limit can end it
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(
            b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        try:
            while sent < 50 * limit:  # a server that buffered everything would take 5 MB
                s.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed: exactly what we want
        reply = b""
        try:
            while b"\r\n\r\n" not in reply:
                data = s.recv(65536)
                if not data:
                    break
                reply += data
        except ConnectionResetError:
            pass
    assert reply.startswith(b"HTTP/1.1 413"), reply[:200]
    assert sent < 50 * limit or b"413" in reply


def test_a_server_without_a_model_is_live_but_not_ready(
    serve: Callable[..., Server], tmp_path: Path
) -> None:
    server = serve({"MODEL_PATH": str(tmp_path / "absent.joblib")}, ready=False)
    assert httpx.get(server.url + "/health/live").status_code == 200
    r = httpx.get(server.url + "/health/ready")
    assert r.status_code == 503 and "no such artifact" in r.json()["reason"]
    assert httpx.post(server.url + "/predict", json={"living_area": 1}).status_code == 503
    errors = [
        json.loads(x)
        for x in server.logs().splitlines()
        if x.startswith("{") and json.loads(x)["level"] == "error"
    ]
    assert len(errors) == 1 and "model not loaded" in errors[0]["msg"]


def _chromium(binary: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            binary,
            "--headless",
            "--no-sandbox",  # root in CI containers
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--virtual-time-budget=15000",  # let the page's scripts run to completion
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_docs_render_the_predict_operation_in_headless_chromium(
    serve: Callable[..., Server], artifact_path: str, tmp_path: Path
) -> None:
    """Swagger UI and ReDoc render from the app's own assets (the browser has no internet)."""
    binary = require_tool("chromium")
    server = serve({"MODEL_PATH": artifact_path})
    dom = _chromium(binary, "--dump-dom", server.url + "/docs")
    assert 'data-path="/predict"' in dom.stdout, dom.stderr[-2000:]
    out_dir = Path(os.environ.get("TEST_ARTIFACTS_DIR", tmp_path))
    out_dir.mkdir(parents=True, exist_ok=True)
    shot = out_dir / "docs.png"
    _chromium(binary, "--window-size=1280,1600", f"--screenshot={shot}", server.url + "/docs")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    redoc = _chromium(binary, "--dump-dom", server.url + "/redoc")
    assert "Predict sale prices" in redoc.stdout, redoc.stderr[-2000:]
    served = {
        json.loads(x)["path"]
        for x in server.logs().splitlines()
        if x.startswith("{") and '"houseprice.access"' in x
    }
    assert {"/static/swagger-ui-bundle.js", "/static/swagger-ui.css"} <= served
    assert "/static/redoc.standalone.js" in served
