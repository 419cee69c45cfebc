"""The image, built and run for real with podman: locked down, answering as documented,
draining on stop, and refusing a corrupt artifact without dying.

Only documented behaviour is checked (README: /health/live, /health/ready, /predict with the
README's example body, /metrics, "SIGTERM: in-flight requests finish, exit code 0", "bad
artifacts: never ready, one log line saying why").
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from .conftest import MEASURED
from .podman import Podman, free_port, http, poll, status_or_none, wait_ready

pytestmark = [pytest.mark.deploy, pytest.mark.container, pytest.mark.timeout(1200)]

# README "Try it": one valid house, and one with a bad value, a wrong type and an unknown field.
HOUSE = {
    "living_area": 1656,
    "bedrooms": 3,
    "neighborhood": "NAmes",
    "overall_quality": 6,
    "year_built": 1960,
}
BAD_HOUSE = {**HOUSE, "living_area": -5, "bedrooms": True, "pool": 1}

# What `docker run` users are told to do (docs/DEPLOY.md), and compose's api service does.
LOCKED_DOWN = ["--read-only", "--tmpfs", "/tmp", "--cap-drop", "ALL"]
LOCKED_DOWN += ["--security-opt", "no-new-privileges"]


@dataclass
class Container:
    name: str
    url: str


def start(podman: Podman, image: str, name: str, *extra: str) -> Container:
    port = free_port()
    podman.run("run", "--detach", "--name", name, "--publish", f"127.0.0.1:{port}:8000",
               *LOCKED_DOWN, *extra, image)  # fmt: skip
    return Container(name, f"http://127.0.0.1:{port}")


@pytest.fixture(scope="module")
def served(podman: Podman, image: str) -> Iterator[Container]:
    started = time.monotonic()
    container = start(podman, image, "hp-served")
    try:
        wait_ready(container.url, timeout=90)
        MEASURED.append(f"cold start (podman run -> /health/ready 200): "
                        f"{time.monotonic() - started:.1f} s")  # fmt: skip
        yield container
    finally:
        podman.run("rm", "--force", "--time", "0", container.name, check=False)


def test_runs_as_non_root_on_a_read_only_root_without_capabilities(
    podman: Podman, served: Container
) -> None:
    assert podman.inspect(served.name, "{{.HostConfig.ReadonlyRootfs}}") == "true"
    assert podman.inspect(served.name, "{{.EffectiveCaps}}") == "[]"
    # Seen from inside, by the service's own process (PID 1).
    ids = podman.exec_python(served.name, "import os; print(os.getuid(), os.getgid())").split()
    assert ids == ["10001", "10001"]
    status = podman.exec_python(served.name, "print(open('/proc/1/status').read())")
    fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
    assert fields["Uid"].split()[0] == "10001"
    assert int(fields["CapEff"], 16) == 0 and int(fields["CapPrm"], 16) == 0
    assert fields["NoNewPrivs"].strip() == "1"
    probe = "import sys\ntry:\n    open(sys.argv[1], 'w')\nexcept OSError as e:\n    print(e.errno)"
    for path, writable in (("/app/x", False), ("/opt/venv/x", False), ("/tmp/x", True)):
        out = podman.run("exec", served.name, "python", "-c", probe, path).stdout.strip()
        assert (out == "") is writable, f"{path}: {out}"


def test_ready_and_predict_answer_as_documented(served: Container) -> None:
    status, body = http("GET", served.url + "/health/ready")
    assert status == 200, body
    status, body = http("POST", served.url + "/predict", HOUSE)
    assert status == 200, body
    assert isinstance(body, dict) and body["price"] > 0 and body["model_version"]

    status, body = http("POST", served.url + "/predict", BAD_HOUSE)
    assert status == 422, body
    assert isinstance(body, dict)
    named = {tuple(error["loc"]) for error in body["detail"]}
    assert {("body", "living_area"), ("body", "bedrooms"), ("body", "pool")} <= named, named

    status, text = http("GET", served.url + "/metrics")
    assert status == 200 and isinstance(text, str) and "# TYPE " in text


def test_the_images_healthcheck_passes(podman: Podman, served: Container) -> None:
    check = json.loads(podman.inspect(served.name, "{{json .Config.Healthcheck}}"))
    assert "/health/live" in " ".join(check["Test"]), check
    proc = podman.run("healthcheck", "run", served.name, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert podman.inspect(served.name, "{{.State.Health.Status}}") == "healthy"


def test_stop_drains_an_in_flight_request_and_exits_0(podman: Podman, image: str) -> None:
    container = start(podman, image, "hp-drain")
    try:
        wait_ready(container.url, timeout=90)
        body = json.dumps(HOUSE).encode()
        port = int(container.url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
            # A request whose body is still arriving when the stop comes: in flight.
            conn.sendall(
                b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body[:10]
            )
            stop = subprocess.Popen(
                [str(podman.path), "stop", "--time", "30", container.name],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=podman.env,
            )
            try:
                # uvicorn's own line once SIGTERM arrived and it waits for open requests.
                poll(
                    lambda: True if "Shutting down" in podman.logs(container.name) else None,
                    30,
                    "the container to receive SIGTERM",
                )
                assert status_or_none(container.url + "/health/ready") in (None, 503)
                conn.sendall(body[10:])
                response = b""
                while b"\r\n\r\n" not in response or not response.rstrip().endswith(b"}"):
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    response += chunk
            finally:
                _, err = stop.communicate(timeout=60)
        head, _, payload = response.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), response[:300]
        assert json.loads(payload)["price"] > 0
        assert stop.returncode == 0, err
        assert podman.inspect(container.name, "{{.State.ExitCode}}") == "0"
    finally:
        podman.run("rm", "--force", "--time", "0", container.name, check=False)


def test_a_corrupt_artifact_leaves_it_live_not_ready_and_logs_why(
    podman: Podman, image: str, artifact_path: str, tmp_path: Path
) -> None:
    models = tmp_path / "models"
    models.mkdir()
    for source in Path(artifact_path).parent.glob("model.*"):
        shutil.copy(source, models / source.name)
    artifact = models / "model.joblib"
    data = bytearray(artifact.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte; model.joblib.sha256 still names the old bytes
    artifact.write_bytes(bytes(data))
    # The service runs as uid 10001: the mount must be readable by others.
    for path in (tmp_path, models, *models.iterdir()):
        path.chmod(0o755 if path.is_dir() else 0o644)

    container = start(podman, image, "hp-corrupt", "--volume", f"{models}:/models:ro",
                      "--env", "MODEL_PATH=/models/model.joblib")  # fmt: skip
    try:
        poll(lambda: status_or_none(container.url + "/health/live"), 90, "/health/live")
        assert http("GET", container.url + "/health/live")[0] == 200
        assert http("GET", container.url + "/health/ready")[0] == 503
        assert podman.inspect(container.name, "{{.State.Running}}") == "true"
        logs = podman.logs(container.name)
        why = [line for line in logs.splitlines() if "/models/model.joblib" in line]
        assert why, logs
        assert any(word in " ".join(why).lower() for word in ("sha256", "checksum")), why
    finally:
        podman.run("rm", "--force", "--time", "0", container.name, check=False)
