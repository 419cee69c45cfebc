"""The Kubernetes dev overlay, run for real with `podman kube play` (no API server can run here).

`kubectl kustomize k8s/overlays/dev` is played with two changes: the image is the one just
built, and the container port gets a free loopback host port (podman 4.3 publishes container
ports on the host, where 8000 may be taken). podman plays the Deployment (one pod), its
generated ConfigMap and emptyDir; it ignores the Namespace, Service and NetworkPolicy. The pod
must become ready and answer /predict from inside, with the manifest's security context,
settings and probes; `podman kube down` removes it.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import MEASURED
from .helpers import only, run
from .podman import Podman, free_port, poll
from .test_container_image import HOUSE

pytestmark = [pytest.mark.deploy, pytest.mark.container, pytest.mark.timeout(1200)]


@dataclass
class Played:
    manifest: Path
    deployment: dict[str, Any]
    configmap: dict[str, Any]
    pod: str
    container: str
    started: float  # time.monotonic() when `kube play` was called

    @property
    def spec(self) -> dict[str, Any]:
        containers = self.deployment["spec"]["template"]["spec"]["containers"]
        return next(c for c in containers if c["name"] == "api")

    def port(self, name_or_number: str | int) -> int:
        """A probe's port: a number, or the name of one of the container's ports."""
        if isinstance(name_or_number, int):
            return name_or_number
        return next(p["containerPort"] for p in self.spec["ports"] if p["name"] == name_or_number)


@pytest.fixture(scope="module")
def played(
    podman: Podman, image: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Played]:
    from conftest import require_tool

    kubectl = require_tool("kubectl")
    proc = run(
        [kubectl, "kustomize", "k8s/overlays/dev"], env={**os.environ, "KUBECONFIG": "/dev/null"}
    )
    assert proc.returncode == 0, proc.stderr
    docs = [d for d in yaml.safe_load_all(proc.stdout) if d]
    deployment, configmap = only(docs, "Deployment"), only(docs, "ConfigMap")
    for container in deployment["spec"]["template"]["spec"]["containers"]:
        if container["name"] == "api":
            container["image"] = image
            for port in container["ports"]:
                port.update(hostIP="127.0.0.1", hostPort=free_port())
    manifest = tmp_path_factory.mktemp("kube") / "dev.yaml"
    manifest.write_text(yaml.safe_dump_all(docs, sort_keys=False))

    started = time.monotonic()
    podman.run("kube", "play", str(manifest), timeout=180)
    try:
        pods = podman.run("pod", "ps", "--format", "{{.Name}}").stdout.split()
        name = deployment["metadata"]["name"]
        [pod] = [p for p in pods if p.startswith(name)]
        [container] = podman.run(
            "ps", "--format", "{{.Names}}", "--filter", f"pod={pod}", "--filter", "name=-api$"
        ).stdout.split()
        yield Played(manifest, deployment, configmap, pod, container, started)
    finally:
        podman.run("kube", "down", str(manifest), check=False, timeout=120)


def test_the_pod_becomes_ready_and_answers_predict_from_inside(
    podman: Podman, played: Played
) -> None:
    probe = played.spec["readinessProbe"]["httpGet"]
    ready = f"http://127.0.0.1:{played.port(probe['port'])}{probe['path']}"
    poll(
        lambda: True if podman.http_inside(played.container, "GET", ready)[0] == 200 else None,
        90,
        "the pod's readiness probe",
        interval=0.5,
    )
    port = played.port("http")
    status, body = podman.http_inside(
        played.container, "POST", f"http://127.0.0.1:{port}/predict", HOUSE
    )
    assert status == 200 and body["price"] > 0, body
    MEASURED.append(f"kube play -> pod ready: {time.monotonic() - played.started:.1f} s")


def test_every_http_probe_of_the_manifest_answers_200_inside_the_pod(
    podman: Podman, played: Played
) -> None:
    # podman 4.3 turns livenessProbe into a healthcheck with curl (not in the image) on port 0
    # (it does not resolve named ports) and ignores the other two, so the probes are played
    # here, from inside the pod, exactly as written in the manifest.
    probes = {k: v for k, v in played.spec.items() if k.endswith("Probe")}
    assert set(probes) == {"startupProbe", "readinessProbe", "livenessProbe"}
    for kind, probe in probes.items():
        get = probe["httpGet"]
        url = f"http://127.0.0.1:{played.port(get['port'])}{get['path']}"
        status, body = podman.http_inside(played.container, "GET", url)
        assert status == 200, (kind, url, body)


def test_the_manifests_security_context_is_applied(podman: Podman, played: Played) -> None:
    pod_context = played.deployment["spec"]["template"]["spec"]["securityContext"]
    context = {**pod_context, **played.spec["securityContext"]}
    user = f"{context['runAsUser']}:{context['runAsGroup']}"
    assert podman.inspect(played.container, "{{.Config.User}}") == user
    readonly = podman.inspect(played.container, "{{.HostConfig.ReadonlyRootfs}}")
    assert readonly == str(context["readOnlyRootFilesystem"]).lower()
    assert context["capabilities"]["drop"] == ["ALL"]
    status = podman.exec_python(played.container, "print(open('/proc/1/status').read())")
    fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
    assert fields["Uid"].split()[0] == str(context["runAsUser"])
    assert int(fields["CapEff"], 16) == 0
    assert fields["NoNewPrivs"].strip() == str(int(not context["allowPrivilegeEscalation"]))
    # Read-only root, writable emptyDir on /tmp, as the manifest mounts it.
    mounts = {m["mountPath"] for m in played.spec["volumeMounts"]}
    assert mounts == {"/tmp"}
    probe = "import sys\ntry:\n    open(sys.argv[1], 'w')\nexcept OSError as e:\n    print(e.errno)"
    for path, writable in (("/app/x", False), ("/tmp/x", True)):
        out = podman.run("exec", played.container, "python", "-c", probe, path).stdout.strip()
        assert (out == "") is writable, f"{path}: {out}"


def test_the_configmap_reaches_the_process(podman: Podman, played: Played) -> None:
    env = json.loads(
        podman.exec_python(played.container, "import json, os; print(json.dumps(dict(os.environ)))")
    )
    data = played.configmap["data"]
    assert data["LOG_LEVEL"] == "debug", "the dev overlay's setting"
    for key, value in data.items():
        assert env.get(key) == value, key


def test_kube_down_removes_the_pod(podman: Podman, played: Played) -> None:
    # Last in this module: the fixture's own `kube down` then finds nothing to do.
    podman.run("kube", "down", str(played.manifest), timeout=120)
    assert podman.run("pod", "exists", played.pod, check=False).returncode == 1
    assert podman.run("container", "exists", played.container, check=False).returncode == 1
