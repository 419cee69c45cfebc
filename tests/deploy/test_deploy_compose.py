"""docker-compose.yml: valid for docker-compose and the compose-spec schema, and wired to the
repo's files (monitoring config, the API's routes, port and settings)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import PurePosixPath
from typing import Any

import pytest
import yaml
from conftest import require_tool

from .helpers import ROOT, run, venv_tool

pytestmark = pytest.mark.deploy

# Variables docker compose itself consumes (project name), not passed to any container.
COMPOSE_ONLY = {"COMPOSE_PROJECT_NAME", "HOUSEPRICE_TAG", "GF_SECURITY_ADMIN_PASSWORD"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(data, dict)
    return data


def env_example() -> dict[str, str]:
    pairs = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            pairs[key.strip()] = value.strip()
    return pairs


@pytest.mark.parametrize("profile", [None, "train"])
def test_docker_compose_config_is_valid(profile: str | None) -> None:
    exe = require_tool("docker-compose")
    cmd = [exe, "--env-file", ".env.example"]
    if profile:
        cmd += ["--profile", profile]
    proc = run([*cmd, "config", "-q"])
    assert proc.returncode == 0, proc.stderr


def test_docker_compose_refuses_to_start_without_a_grafana_password(tmp_path: Any) -> None:
    # No committed default admin password: without .env the stack does not even resolve.
    exe = require_tool("docker-compose")
    empty = tmp_path / "empty.env"
    empty.write_text("")
    proc = run([exe, "--env-file", str(empty), "config", "-q"])
    assert proc.returncode != 0 and "GF_SECURITY_ADMIN_PASSWORD" in proc.stderr


def test_compose_spec_schema() -> None:
    exe = venv_tool("check-jsonschema")
    proc = run([exe, "--builtin-schema", "vendor.compose-spec", "docker-compose.yml"])
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_images_are_pinned(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        image = service["image"]
        tag = image.rpartition(":")[2]
        assert ":" in image and tag != "latest", f"{name}: {image}"
        if "build" not in service:  # third-party images: an exact version
            assert re.fullmatch(r"v?\d+\.\d+\.\d+", tag), f"{name}: {image}"


def test_api_service_matches_the_app(
    compose: dict[str, Any],
    settings_port: int,
    settings_env_names: set[str],
    app_get: Callable[[str], int],
) -> None:
    api = compose["services"]["api"]
    assert api["build"]["context"] == "." and api["build"]["target"] == "runtime"
    assert api["read_only"] is True and "/tmp" in api["tmpfs"]
    assert api["cap_drop"] == ["ALL"]
    assert any(p.endswith(f":{settings_port}") for p in api["ports"])
    assert all(p.startswith("127.0.0.1:") for p in api["ports"]), "laptop stack: loopback only"
    assert set(api["environment"]) <= settings_env_names, set(api["environment"])
    probe = " ".join(api["healthcheck"]["test"])
    url = re.search(rf"http://127\.0\.0\.1:{settings_port}(/[\w/]+)", probe)
    assert url is not None and app_get(url.group(1)) == 200


def test_env_example_covers_every_substitution(compose: dict[str, Any]) -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    used = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", text))
    documented = env_example()
    assert used <= set(documented), used - set(documented)
    assert documented["GF_SECURITY_ADMIN_PASSWORD"], "a documented default for the laptop"
    assert documented["ADMIN_TOKEN"] == "", "no working admin token committed"
    assert set(documented) - COMPOSE_ONLY <= used


def test_prometheus_gets_its_config_and_rules_and_reaches_the_api(
    compose: dict[str, Any], settings_port: int, app_get: Callable[[str], int]
) -> None:
    prom = compose["services"]["prometheus"]
    mounts = {}
    for volume in prom["volumes"]:
        source, target = volume.split(":")[:2]
        mounts[PurePosixPath(target)] = source
    config_flag = next(a for a in prom["command"] if a.startswith("--config.file="))
    config_target = PurePosixPath(config_flag.split("=", 1)[1])
    assert mounts[config_target] == "./monitoring/prometheus.yml"
    config = yaml.safe_load((ROOT / "monitoring" / "prometheus.yml").read_text())
    for rule_file in config.get("rule_files", []):
        target = config_target.parent / rule_file  # relative to the config file
        assert target in mounts, f"rule file {rule_file} is not mounted at {target}"
        assert (ROOT / mounts[target]).is_file()
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "houseprice")
    targets = [t for sc in job["static_configs"] for t in sc["targets"]]
    assert f"api:{settings_port}" in targets
    assert app_get(job.get("metrics_path", "/metrics")) == 200


def test_monitoring_starts_whether_or_not_the_api_is_healthy(compose: dict[str, Any]) -> None:
    """Prometheus, Alertmanager and Grafana must be up exactly when the API is not: none of
    them waits for it, directly or through another service."""
    services = compose["services"]

    def waits_for(name: str) -> set[str]:
        deps = services[name].get("depends_on", {})
        direct = set(deps if isinstance(deps, list) else deps.keys())
        return direct.union(*(waits_for(d) for d in direct))

    for name in ("prometheus", "alertmanager", "grafana"):
        assert "api" not in waits_for(name), name
    config = yaml.safe_load((ROOT / "monitoring" / "prometheus.yml").read_text())
    (am,) = config["alerting"]["alertmanagers"]
    assert am["static_configs"][0]["targets"] == ["alertmanager:9093"]
    assert "alertmanager" in services and "alert-sink" in services
    mounts = dict(v.split(":")[:2][::-1] for v in services["alertmanager"]["volumes"])
    assert mounts["/etc/alertmanager/alertmanager.yml"] == "./monitoring/alertmanager.yml"


def test_every_bind_mount_exists(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name}: {source}"
            else:
                assert source in compose["volumes"], f"{name}: undeclared volume {source}"


def test_grafana_is_provisioned_and_anonymous_viewer(compose: dict[str, Any]) -> None:
    grafana = compose["services"]["grafana"]
    env = grafana["environment"]
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "true"
    assert env["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"
    assert env["GF_SECURITY_ADMIN_PASSWORD"].startswith("${GF_SECURITY_ADMIN_PASSWORD")
    home = PurePosixPath(env["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"])
    by_target = {v.split(":")[1]: v.split(":")[0] for v in grafana["volumes"]}
    assert (ROOT / by_target[str(home.parent)] / home.name).is_file()
    datasources = yaml.safe_load(
        (ROOT / "monitoring/grafana/provisioning/datasources/prometheus.yml").read_text()
    )
    url = datasources["datasources"][0]["url"]
    assert url == "http://prometheus:9090" and "prometheus" in compose["services"]
    assert grafana["depends_on"]["prometheus"]["condition"] == "service_healthy"


def test_train_profile_writes_to_the_volume_the_api_reads(compose: dict[str, Any]) -> None:
    train = compose["services"]["train"]
    api = compose["services"]["api"]
    assert train["profiles"] == ["train"] and train["build"]["target"] == "build"
    out = PurePosixPath(train["command"][train["command"].index("--out") + 1])
    train_mounts = dict(v.split(":")[:2] for v in train["volumes"])
    api_mounts = {v.split(":")[0]: v.split(":")[1] for v in api["volumes"]}
    volume = next(src for src, dst in train_mounts.items() if out.is_relative_to(dst))
    assert api_mounts[volume] == train_mounts[volume], "api must see the trained artifact"
    assert api["volumes"][0].endswith(":ro")
    # Same numeric user as the image, so the 0600 temp-then-rename artifact stays readable.
    assert train["user"].split(":")[0] == "10001"
