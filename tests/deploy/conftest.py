"""What the deploy tests compare the packaging against: the service's own code, never a copy.

The routes come from the FastAPI app object and the environment variables from running the
settings reader on a recording mapping, so a renamed route or variable breaks these tests.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import yaml

from .helpers import (
    OVERLAYS,
    ROOT,
    RecordingEnv,
    parse_dockerfile,
    run,
)
from .podman import BASE_IMAGE, Podman

# Figures the container tests measured (image size, cold start, ...), printed after the run.
MEASURED: list[str] = []


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if MEASURED:
        terminalreporter.section("containers: measured")
        for line in MEASURED:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def app_get(artifact_path: str) -> Iterator[Callable[[str], int]]:
    """GET a path on the real app (lifespan run, default model loaded); returns the status.

    "The probe points at a route the app serves" is proved by asking the app, not by
    comparing strings with a route list.
    """
    from fastapi.testclient import TestClient

    from app.main import create_app
    from app.settings import Settings

    with TestClient(create_app(Settings(model_path=artifact_path))) as client:
        yield lambda path: client.get(path).status_code


@pytest.fixture(scope="session")
def settings_env_names() -> set[str]:
    """Every environment variable app/settings.py reads (observed, not parsed)."""
    from app.settings import Settings

    env = RecordingEnv()
    Settings.from_env(env)
    assert env.read, "Settings.from_env read no variable from the mapping it was given"
    return env.read


@pytest.fixture(scope="session")
def settings_port() -> int:
    from app.settings import Settings

    return Settings().port


@pytest.fixture(scope="session")
def dockerfile() -> list[tuple[str, str]]:
    return parse_dockerfile((ROOT / "Dockerfile").read_text())


@pytest.fixture(scope="session")
def rendered() -> dict[str, list[dict[str, Any]]]:
    """`kubectl kustomize` output of the base and each overlay, parsed."""
    from conftest import require_tool

    kubectl = require_tool("kubectl")
    out: dict[str, list[dict[str, Any]]] = {}
    for name, path in OVERLAYS.items():
        # KUBECONFIG=/dev/null: rendering is offline and must not touch a real cluster config.
        proc = run([kubectl, "kustomize", path], env={**os.environ, "KUBECONFIG": "/dev/null"})
        assert proc.returncode == 0, f"kubectl kustomize {path} failed:\n{proc.stderr}"
        out[name] = [doc for doc in yaml.safe_load_all(proc.stdout) if doc]
    return out


@pytest.fixture(scope="session")
def podman() -> Iterator[Podman]:
    """podman with a private store for this session; everything in it is removed at the end,
    whether the tests passed or not."""
    from conftest import require_tool

    executable = require_tool("podman")
    leftovers = Podman.sweep(executable)
    assert not leftovers, "an earlier session's containers could not be removed:\n" + "\n".join(
        leftovers
    )
    engine = Podman(executable)
    try:
        yield engine
    finally:
        problems = engine.destroy()
        assert not problems, "container clean-up left things behind:\n" + "\n".join(problems)


# The monitoring services' images, built from Debian's packages
# (.ci/containers/<service>.Containerfile).
MONITORING_IMAGES = {
    "prometheus": "localhost/houseprice-ci-prometheus:bookworm",
    "alertmanager": "localhost/houseprice-ci-alertmanager:bookworm",
}


@dataclass
class Builds:
    api: str
    monitoring: dict[str, subprocess.Popen[str]]  # still building when the api image is done


def build_on_base(podman: Podman, name: str, tag: str) -> subprocess.Popen[str]:
    """Start `podman build` of .ci/containers/<name>.Containerfile on the Debian base."""
    return subprocess.Popen(
        [str(podman.path), "build", "--isolation=chroot", "--format", "docker",
         "--build-arg", f"BASE_IMAGE={BASE_IMAGE}", "--tag", tag,
         "--file", f".ci/containers/{name}.Containerfile", ".ci/containers"],
        cwd=ROOT, env=podman.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


@pytest.fixture(scope="session")
def builds(podman: Podman) -> Iterator[Builds]:
    """The Debian base (`.ci/base-image`), then, side by side, houseprice:<version> by
    `.ci/image` (what `make image` runs) and each monitoring image from Debian's package."""
    from conftest import require_tool

    require_tool("mmdebstrap")
    version = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M)
    assert version is not None
    started = time.monotonic()
    options: dict[str, Any] = dict(cwd=ROOT, env=podman.env, capture_output=True, text=True)
    base = subprocess.run(["bash", ".ci/base-image", *podman.flags], timeout=900, **options)
    assert base.returncode == 0, f".ci/base-image failed:\n{base.stderr[-4000:]}"
    MEASURED.append(
        f"Debian base {BASE_IMAGE}: {podman.image_size_mb(BASE_IMAGE):.0f} MB, "
        f"ready in {time.monotonic() - started:.0f} s"
    )
    monitoring = {name: build_on_base(podman, name, tag) for name, tag in MONITORING_IMAGES.items()}
    try:
        started = time.monotonic()
        env = {**podman.env, "HOUSEPRICE_BASE": BASE_IMAGE}
        api = subprocess.run(
            ["bash", ".ci/image", *podman.flags], timeout=900, **{**options, "env": env}
        )
        assert api.returncode == 0, f".ci/image failed:\n{api.stdout[-2000:]}\n{api.stderr[-4000:]}"
        tag = f"localhost/houseprice:{version.group(1)}"
        MEASURED.append(
            f"image {tag}: {podman.image_size_mb(tag):.0f} MB, "
            f"built in {time.monotonic() - started:.0f} s"
        )
        yield Builds(tag, monitoring)
    finally:
        for build in monitoring.values():
            if build.poll() is None:
                build.kill()
            build.communicate()


@pytest.fixture(scope="session")
def image(builds: Builds) -> str:
    return builds.api


def monitoring_image(podman: Podman, builds: Builds, name: str) -> str:
    """The tag of a monitoring image, once its build (started by `builds`) has succeeded."""
    build = builds.monitoring[name]
    output, _ = build.communicate(timeout=600)
    assert build.returncode == 0, f"{name} image build failed:\n{(output or '')[-4000:]}"
    tag = MONITORING_IMAGES[name]
    MEASURED.append(f"{name} image from Debian's package: {podman.image_size_mb(tag):.0f} MB")
    return tag


@pytest.fixture(scope="session")
def prometheus_image(podman: Podman, builds: Builds) -> str:
    return monitoring_image(podman, builds, "prometheus")


@pytest.fixture(scope="session")
def alertmanager_image(podman: Podman, builds: Builds) -> str:
    return monitoring_image(podman, builds, "alertmanager")
