"""The compose stack, brought up for real: docker-compose.yml with .ci/compose.ci.yml under
podman-compose. Prometheus scrapes the API and has loaded the repo's alert rules (asked through
its HTTP API); a killed API process is restarted per the file's restart policy.

Grafana is left out here, and why is written in .ci/compose.ci.yml (no image, no package).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import yaml

from .conftest import MEASURED
from .helpers import ROOT, venv_tool
from .podman import Podman, poll
from .test_container_image import HOUSE

pytestmark = [pytest.mark.deploy, pytest.mark.container, pytest.mark.timeout(1200)]


@dataclass
class Stack:
    """The running stack, reached from inside its api container (no host ports in CI)."""

    podman: Podman
    project: str

    def container(self, service: str) -> str:
        names = self.podman.run(
            "ps", "--all", "--format", "{{.Names}}",
            "--filter", f"label=io.podman.compose.project={self.project}",
            "--filter", f"label=io.podman.compose.service={service}",
        ).stdout.split()  # fmt: skip
        assert len(names) == 1, f"{service}: {names}"
        return names[0]

    def api(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        return self.podman.http_inside(
            self.container("api"), method, "http://127.0.0.1:8000" + path, body
        )

    def prometheus(self, path: str) -> Any:
        """`data` of a Prometheus HTTP API answer, asked by service name over compose's network."""
        status, body = self.podman.http_inside(
            self.container("api"), "GET", "http://prometheus:9090" + path
        )
        assert status == 200 and body["status"] == "success", body
        return body["data"]

    def wait_api_ready(self, timeout: float) -> None:
        poll(
            lambda: True if self.api("GET", "/health/ready")[0] == 200 else None,
            timeout,
            "the api service to be ready",
            interval=0.5,
        )


@pytest.fixture(scope="module")
def stack(podman: Podman, image: str, prometheus_image: str) -> Iterator[Stack]:
    project = f"hpci{os.getpid()}"
    compose = [
        venv_tool("podman-compose"), "--podman-path", str(podman.path),
        "--project-name", project, "--env-file", ".env.example",
        "--file", "docker-compose.yml", "--file", ".ci/compose.ci.yml",
    ]  # fmt: skip
    env = {
        **podman.env,
        "HOUSEPRICE_IMAGE": image,
        "PROMETHEUS_IMAGE": prometheus_image,
    }

    def compose_run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*compose, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
        )

    started = time.monotonic()
    up = compose_run("up", "--detach", "api", "prometheus")
    try:
        assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
        result = Stack(podman, project)
        result.wait_api_ready(timeout=90)
        # podman 4.3 cannot wait for `service_healthy` (podman-compose skips the condition
        # with a warning), so Prometheus' readiness is polled here as well.
        poll(lambda: result.prometheus("/api/v1/status/runtimeinfo") or None, 90, "Prometheus")
        MEASURED.append(
            f"compose api + prometheus up and ready: {time.monotonic() - started:.1f} s"
        )
        yield result
    finally:
        down = compose_run("down", "--volumes", "--timeout", "10")
        assert down.returncode == 0, down.stderr[-3000:]


def test_only_api_and_prometheus_run(podman: Podman, stack: Stack) -> None:
    running = podman.run(
        "ps",
        "--format",
        "{{.Labels}}",
        "--filter",
        f"label=io.podman.compose.project={stack.project}",
    ).stdout
    assert "service:api" in running and "service:prometheus" in running
    assert "service:grafana" not in running


def test_the_api_answers_as_in_the_compose_file(podman: Podman, stack: Stack) -> None:
    status, body = stack.api("POST", "/predict", HOUSE)
    assert status == 200 and body["price"] > 0, body
    api = stack.container("api")
    spec = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["api"]
    assert podman.inspect(api, "{{.HostConfig.ReadonlyRootfs}}") == str(spec["read_only"]).lower()
    assert podman.inspect(api, "{{.EffectiveCaps}}") == "[]"
    assert podman.inspect(api, "{{.HostConfig.RestartPolicy.Name}}") == spec["restart"]


def test_prometheus_scrapes_the_api(stack: Stack) -> None:
    def api_target_up() -> bool | None:
        targets = stack.prometheus("/api/v1/targets")["activeTargets"]
        ours = [t for t in targets if t["labels"]["job"] == "houseprice"]
        return True if ours and all(t["health"] == "up" for t in ours) else None

    # Targets are discovered just after start-up; the first scrape comes within one
    # scrape_interval (15 s).
    poll(api_target_up, 90, "Prometheus' houseprice target to be up", interval=1)
    result = stack.prometheus("/api/v1/query?query=up%7Bjob%3D%22houseprice%22%7D")["result"]
    assert [r["value"][1] for r in result] == ["1"], result


def test_prometheus_loaded_the_alert_rules(stack: Stack) -> None:
    expected = {
        rule["alert"]
        for group in yaml.safe_load((ROOT / "monitoring" / "alerts.yml").read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }
    groups = stack.prometheus("/api/v1/rules")["groups"]
    loaded = {
        rule["name"] for group in groups for rule in group["rules"] if rule["type"] == "alerting"
    }
    assert expected and loaded == expected, (expected, loaded)

    def evaluated() -> bool | None:
        # "unknown" until a rule's first evaluation (evaluation_interval 15 s), then "ok" or "err".
        rules = [r for g in stack.prometheus("/api/v1/rules")["groups"] for r in g["rules"]]
        assert not [r for r in rules if r["health"] == "err"], rules
        return True if all(r["health"] == "ok" for r in rules) else None

    poll(evaluated, 90, "every rule to be evaluated", interval=1)


def test_a_killed_api_process_is_restarted_per_the_restart_policy(
    podman: Podman, stack: Stack
) -> None:
    api = stack.container("api")
    pid = int(podman.inspect(api, "{{.State.Pid}}"))
    restarts = int(podman.inspect(api, "{{.RestartCount}}"))
    os.kill(pid, signal.SIGKILL)  # the container's uvicorn, as the host sees it

    def restarted() -> bool | None:
        state = podman.inspect(api, "{{.State.Running}} {{.State.Pid}} {{.RestartCount}}").split()
        return True if state[0] == "true" and int(state[1]) not in (0, pid) else None

    poll(restarted, 60, "podman to restart the api container", interval=0.5)
    assert int(podman.inspect(api, "{{.RestartCount}}")) == restarts + 1
    stack.wait_api_ready(timeout=90)
    assert stack.api("POST", "/predict", HOUSE)[0] == 200
