"""The compose stack, brought up for real: docker-compose.yml with .ci/compose.ci.yml under
podman-compose. Prometheus scrapes the API and has loaded the repo's alert rules (asked through
its HTTP API) and sends to Alertmanager; Alertmanager's route delivers an alert to the file
receiver (alert-sink); a killed API process is restarted per the file's restart policy.

The alert that reaches the file is posted to Alertmanager's API by the test, not fired by a
Prometheus rule: the fastest rule (HousepriceDown, `for: 1m`) plus a failed scrape and the
route's `group_wait: 30s` would take about two minutes. Prometheus' side of the path is proved
by its alertmanagers API (Alertmanager discovered and active).

Grafana is left out here, and why is written in .ci/compose.ci.yml (no image, no package).
"""

from __future__ import annotations

import json
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
# Everything in docker-compose.yml but grafana (.ci/compose.ci.yml says why) and the train job.
SERVICES = ("api", "prometheus", "alertmanager", "alert-sink")
# A test alert routed like every other one (route: group_by alertname, severity -> file).
TEST_ALERT = {"alertname": "HousepriceComposeRouteCheck", "severity": "info"}


@dataclass
class Stack:
    """The running stack, reached from inside its api container (no host ports in CI)."""

    podman: Podman
    project: str
    alert_posted: float = 0.0  # time.monotonic() when the test alert went to Alertmanager

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

    def alertmanager_ready(self) -> bool | None:
        """Alertmanager's /-/ready, asked with the compose healthcheck's own tool (wget)."""
        proc = self.podman.run(
            "exec", self.container("alertmanager"),
            "wget", "-q", "-O-", "http://127.0.0.1:9093/-/ready", check=False,
        )  # fmt: skip
        return True if proc.returncode == 0 and proc.stdout.strip() == "OK" else None

    def post_test_alert(self) -> None:
        """Send TEST_ALERT to Alertmanager's API from the api container, by service name."""
        alert = {
            "labels": TEST_ALERT,
            "annotations": {"summary": "posted by tests/deploy/test_container_compose.py"},
        }
        status, body = self.podman.http_inside(
            self.container("api"), "POST", "http://alertmanager:9093/api/v2/alerts", [alert]
        )
        assert status == 200, body
        self.alert_posted = time.monotonic()

    def delivered(self) -> list[dict[str, Any]]:
        """The notifications the file receiver has written (alerts.jsonl in its volume)."""
        proc = self.podman.run(
            "exec", self.container("alert-sink"), "cat", "/tmp/alerts.jsonl", check=False
        )
        return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]

    def wait_api_ready(self, timeout: float) -> None:
        poll(
            lambda: True if self.api("GET", "/health/ready")[0] == 200 else None,
            timeout,
            "the api service to be ready",
            interval=0.5,
        )


@pytest.fixture(scope="module")
def stack(
    podman: Podman, image: str, prometheus_image: str, alertmanager_image: str
) -> Iterator[Stack]:
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
        "ALERTMANAGER_IMAGE": alertmanager_image,
    }

    def compose_run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*compose, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
        )

    started = time.monotonic()
    up = compose_run("up", "--detach", *SERVICES)
    try:
        assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
        result = Stack(podman, project)
        result.wait_api_ready(timeout=90)
        # podman 4.3 cannot wait for `service_healthy` (podman-compose skips the condition
        # with a warning), so Prometheus' readiness is polled here as well.
        poll(lambda: result.prometheus("/api/v1/status/runtimeinfo") or None, 90, "Prometheus")
        poll(result.alertmanager_ready, 90, "Alertmanager's /-/ready", interval=0.5)
        # Posted now so that the route's group_wait (30 s) runs while the other tests do;
        # test_an_alert_posted_to_alertmanager_reaches_the_file_receiver looks for it.
        result.post_test_alert()
        MEASURED.append(
            f"compose {' + '.join(SERVICES)} up and ready: {time.monotonic() - started:.1f} s"
        )
        yield result
    finally:
        down = compose_run("down", "--volumes", "--timeout", "10")
        assert down.returncode == 0, down.stderr[-3000:]


def test_the_services_run_and_grafana_does_not(podman: Podman, stack: Stack) -> None:
    running = podman.run(
        "ps",
        "--format",
        "{{.Labels}}",
        "--filter",
        f"label=io.podman.compose.project={stack.project}",
    ).stdout
    assert all(f"service:{name}" in running for name in SERVICES), running
    assert "service:grafana" not in running


def test_alertmanager_checks_its_config_and_routes_to_the_file(stack: Stack) -> None:
    am = stack.container("alertmanager")
    config = "/etc/alertmanager/alertmanager.yml"
    check = stack.podman.run("exec", am, "amtool", "check-config", config, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    for rule in yaml.safe_load((ROOT / "monitoring" / "alerts.yml").read_text())["groups"]:
        for alert in (r for r in rule["rules"] if "alert" in r):
            labels = [f"alertname={alert['alert']}", f"severity={alert['labels']['severity']}"]
            route = stack.podman.run(
                "exec", am, "amtool", "config", "routes", "test", f"--config.file={config}",
                *labels,
            )  # fmt: skip
            assert route.stdout.split() == ["file"], (labels, route.stdout)


def test_prometheus_sends_to_the_alertmanager(stack: Stack) -> None:
    def active() -> list[dict[str, Any]] | None:
        return stack.prometheus("/api/v1/alertmanagers")["activeAlertmanagers"] or None

    found = poll(active, 60, "Prometheus to discover the Alertmanager", interval=1)
    assert [a["url"] for a in found] == ["http://alertmanager:9093/api/v2/alerts"], found


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


def test_an_alert_posted_to_alertmanager_reaches_the_file_receiver(stack: Stack) -> None:
    def received() -> dict[str, Any] | None:
        ours = [n for n in stack.delivered() if n["groupLabels"] == TEST_ALERT]
        return ours[0] if ours else None

    # Posted when the stack came up; the route holds it for group_wait (30 s) first.
    note = poll(received, 75, "the test alert in alerts.jsonl", interval=2)
    waited = time.monotonic() - stack.alert_posted
    assert note["receiver"] == "file" and note["status"] == "firing", note
    assert [a["labels"] for a in note["alerts"]] == [TEST_ALERT], note
    MEASURED.append(f"alert posted to Alertmanager, in alerts.jsonl after {waited:.0f} s")


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
