"""k8s/: kustomize renders the base and both overlays, kubernetes-validate --strict accepts them
for Kubernetes 1.30 and the newest version it bundles, and the rendered objects agree with
the app (probe routes, port, settings), the Dockerfile (user) and each other (selectors)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from .helpers import (
    ROOT,
    RecordingEnv,
    only,
    run,
    selects,
    stages,
    values,
    venv_tool,
)

pytestmark = pytest.mark.deploy

Docs = list[dict[str, Any]]
# Custom resources kubernetes-validate has no schema for (it would only WARN and pass them).
CRD_GROUPS = ("monitoring.coreos.com/",)


def k8s_versions() -> list[str]:
    from kubernetes_validate.utils import latest_version

    return ["1.30.0", latest_version()]


def validate(docs: Docs, tmp_path: Path, name: str) -> str:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    flags = [arg for v in k8s_versions() for arg in ("-k", v)]
    proc = run([venv_tool("kubernetes-validate"), "--strict", *flags, str(path)])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # A kind without a schema is only a WARN with exit code 0: insist on a pass per object.
    assert "WARN" not in proc.stdout and "ERROR" not in proc.stdout, proc.stdout
    passed = proc.stdout.count(" passed for resource ")
    assert passed == len(docs) * len(k8s_versions()), proc.stdout
    return proc.stdout


@pytest.mark.parametrize("overlay", ["base", "dev", "prod"])
def test_kubernetes_validate_strict(
    rendered: dict[str, Docs], overlay: str, tmp_path: Path
) -> None:
    docs = rendered[overlay]
    core = [d for d in docs if not d["apiVersion"].startswith(CRD_GROUPS)]
    crds = [d for d in docs if d["apiVersion"].startswith(CRD_GROUPS)]
    # Only the prod overlay carries a custom resource, and only the ServiceMonitor; it is
    # checked structurally in test_prod_servicemonitor_scrapes_the_service.
    assert [d["kind"] for d in crds] == (["ServiceMonitor"] if overlay == "prod" else [])
    out = validate(core, tmp_path, overlay)
    for version in k8s_versions():
        assert f"against version {version.rsplit('.', 1)[0]}" in out


def test_kubernetes_validate_rejects_an_unknown_field(
    rendered: dict[str, Docs], tmp_path: Path
) -> None:
    # --strict really rejects what a typo would produce (and the test above can fail).
    deployment = yaml.safe_load(yaml.safe_dump(only(rendered["base"], "Deployment")))
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessprobe"] = {}
    with pytest.raises(AssertionError, match="readinessprobe"):
        validate([deployment], tmp_path, "typo")


def test_secret_template_is_valid_and_never_applied(
    rendered: dict[str, Docs], tmp_path: Path
) -> None:
    template = yaml.safe_load((ROOT / "k8s" / "secret-admin-token.example.yaml").read_text())
    validate([template], tmp_path, "secret")
    assert template["stringData"]["ADMIN_TOKEN"] == "", "no working token committed"
    for docs in rendered.values():
        assert not [d for d in docs if d["kind"] == "Secret"], "apply -k would overwrite it"
        container = only(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]
        ref = next(e for e in container["env"] if e["name"] == "ADMIN_TOKEN")
        key = ref["valueFrom"]["secretKeyRef"]
        assert key["name"] == template["metadata"]["name"]
        assert key["key"] in template["stringData"]
        assert key["optional"] is True, "no Secret: admin routes disabled, pod still starts"
    # An empty token is what the settings module treats as "unset" (admin routes disabled).
    from app.settings import Settings

    assert Settings.from_env({"ADMIN_TOKEN": ""}).admin_token is None


@pytest.mark.parametrize("overlay", ["base", "dev", "prod"])
def test_probes_and_ports_match_the_app(
    rendered: dict[str, Docs],
    overlay: str,
    app_get: Callable[[str], int],
    settings_port: int,
) -> None:
    pod = only(rendered[overlay], "Deployment")["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": settings_port}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        get = container[probe]["httpGet"]
        assert ports.get(get["port"], get["port"]) == settings_port, probe
        assert app_get(get["path"]) == 200, f"{probe} {get['path']} is not served"
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
    annotations = pod["metadata"]["annotations"]
    assert int(annotations["prometheus.io/port"]) == settings_port
    assert app_get(annotations["prometheus.io/path"]) == 200


@pytest.mark.parametrize("overlay", ["base", "dev", "prod"])
def test_pod_is_locked_down_and_runs_the_image_user(
    rendered: dict[str, Docs], overlay: str, dockerfile: list[tuple[str, str]]
) -> None:
    image_uid = int(values(stages(dockerfile)[-1], "USER")[-1].split(":")[0])
    spec = only(rendered[overlay], "Deployment")["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    pod_sc, sc = spec["securityContext"], container["securityContext"]
    assert pod_sc["runAsNonRoot"] is True and pod_sc["runAsUser"] == image_uid != 0
    assert pod_sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert spec["automountServiceAccountToken"] is False
    tmp = next(m for m in container["volumeMounts"] if m["mountPath"] == "/tmp")
    volume = next(v for v in spec["volumes"] if v["name"] == tmp["name"])
    assert "emptyDir" in volume


@pytest.mark.parametrize("overlay", ["base", "dev", "prod"])
def test_shutdown_drains_within_the_grace_period(rendered: dict[str, Docs], overlay: str) -> None:
    from app.settings import Settings

    spec = only(rendered[overlay], "Deployment")["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for e in spec["containers"][0].get("env", [])}
    drain = Settings.from_env({k: v for k, v in env.items() if v is not None}).shutdown_timeout
    pause = spec["containers"][0]["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert pause > 0 and pause + drain < spec["terminationGracePeriodSeconds"]


def _quantity(value: str) -> float:
    """A Kubernetes quantity in base units (cores or bytes) for the suffixes used here."""
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "": 1.0}
    match = re.fullmatch(r"([0-9.]+)(m|Ki|Mi|Gi|)", str(value))
    assert match, value
    return float(match.group(1)) * units[match.group(2)]


@pytest.mark.parametrize("overlay", ["base", "dev", "prod"])
def test_rollout_and_resources(rendered: dict[str, Docs], overlay: str) -> None:
    deployment = only(rendered[overlay], "Deployment")
    spec = deployment["spec"]
    assert spec["strategy"]["type"] == "RollingUpdate"
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    # an autoscaled Deployment leaves the count to its HPA (a replicas field would fight it
    # on every apply); dev has no HPA and says 1
    assert spec.get("replicas") == {"base": None, "dev": 1, "prod": None}[overlay]
    resources = spec["template"]["spec"]["containers"][0]["resources"]
    for kind in ("cpu", "memory"):
        request = _quantity(resources["requests"][kind])
        assert 0 < request <= _quantity(resources["limits"][kind]), kind
    # The measured peak (129 MiB, see the comment in deployment.yaml) fits under the limit.
    assert _quantity(resources["limits"]["memory"]) >= 1.5 * 129 * 2**20


@pytest.mark.parametrize("overlay", ["base", "dev", "prod"])
def test_every_object_and_pod_has_the_recommended_labels(
    rendered: dict[str, Docs], overlay: str
) -> None:
    keys = {"name", "instance", "version", "component", "part-of", "managed-by"}
    deployment = only(rendered[overlay], "Deployment")
    pods = deployment["spec"]["template"]["metadata"]["labels"]
    for doc in [*rendered[overlay], {"kind": "Pod", "metadata": {"labels": pods}}]:
        if doc["kind"] == "Namespace":
            continue
        labels = doc["metadata"].get("labels", {})
        have = {k.removeprefix("app.kubernetes.io/") for k in labels if k.startswith("app.k")}
        assert keys <= have, (doc["kind"], sorted(keys - have))
    instance = {"base": "houseprice", "dev": "houseprice-dev", "prod": "houseprice"}[overlay]
    assert pods["app.kubernetes.io/instance"] == instance
    assert "app.kubernetes.io/version" not in deployment["spec"]["selector"]["matchLabels"]


@pytest.mark.parametrize("overlay", ["base", "dev", "prod"])
def test_selectors_and_references_agree(rendered: dict[str, Docs], overlay: str) -> None:
    docs = rendered[overlay]
    deployment = only(docs, "Deployment")
    pod = deployment["spec"]["template"]
    labels = pod["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()

    service = only(docs, "Service")
    assert selects(service["spec"]["selector"], labels)
    port_names = {p["name"] for p in pod["spec"]["containers"][0]["ports"]}
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= port_names

    policy = only(docs, "NetworkPolicy")
    assert selects(policy["spec"]["podSelector"]["matchLabels"], labels)
    assert set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    assert policy["spec"]["egress"] == [], "the service makes no outbound connection"
    ingress_ports = {p["port"] for rule in policy["spec"]["ingress"] for p in rule["ports"]}
    assert ingress_ports <= port_names

    namespace = only(docs, "Namespace")["metadata"]["name"]
    assert {d["metadata"].get("namespace", namespace) for d in docs} == {namespace}

    kinds = {d["kind"] for d in docs}
    if overlay == "dev":
        assert "HorizontalPodAutoscaler" not in kinds and "PodDisruptionBudget" not in kinds
        return
    hpa = only(docs, "HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    assert (
        hpa["spec"]["minReplicas"] >= 2 and hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    )
    (metric,) = hpa["spec"]["metrics"]
    assert metric["type"] == "Resource" and metric["resource"]["name"] == "cpu"
    pdb = only(docs, "PodDisruptionBudget")
    assert selects(pdb["spec"]["selector"]["matchLabels"], labels)


@pytest.mark.parametrize("overlay", ["base", "dev", "prod"])
def test_configmap_holds_only_settings_the_app_reads(
    rendered: dict[str, Docs], overlay: str, settings_env_names: set[str]
) -> None:
    docs = rendered[overlay]
    configmap = only(docs, "ConfigMap")
    container = only(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    (source,) = container["envFrom"]
    assert source["configMapRef"]["name"] == configmap["metadata"]["name"]  # hashed name
    data: dict[str, str] = configmap["data"]
    assert set(data) <= settings_env_names, set(data) - settings_env_names
    assert {e["name"] for e in container["env"]} <= settings_env_names
    # The values parse: the settings reader accepts exactly this environment.
    from app.settings import Settings

    env = RecordingEnv(data)
    settings = Settings.from_env(env)
    assert settings.model_path == data["MODEL_PATH"]


def test_configmap_model_path_is_the_baked_artifact(
    rendered: dict[str, Docs], dockerfile: list[tuple[str, str]]
) -> None:
    env = " ".join(values(stages(dockerfile)[-1], "ENV"))
    baked = re.search(r"MODEL_PATH=(\S+)", env)
    assert baked is not None
    for docs in rendered.values():
        assert only(docs, "ConfigMap")["data"]["MODEL_PATH"] == baked.group(1)


def test_prod_servicemonitor_scrapes_the_service(
    rendered: dict[str, Docs], app_get: Callable[[str], int]
) -> None:
    docs = rendered["prod"]
    monitor = only(docs, "ServiceMonitor")
    service = only(docs, "Service")
    assert selects(monitor["spec"]["selector"]["matchLabels"], service["metadata"]["labels"])
    service_ports = {p["name"] for p in service["spec"]["ports"]}
    for endpoint in monitor["spec"]["endpoints"]:
        assert endpoint["port"] in service_ports
        assert app_get(endpoint["path"]) == 200
    assert monitor["metadata"]["namespace"] == service["metadata"]["namespace"]
    # With the operator scraping, annotation discovery is off: no double scrape.
    pod = only(docs, "Deployment")["spec"]["template"]
    assert pod["metadata"]["annotations"]["prometheus.io/scrape"] == "false"
    assert only(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0][
        "image"
    ].startswith("registry.")
