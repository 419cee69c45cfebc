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
    engine = Podman(executable)
    try:
        yield engine
    finally:
        problems = engine.destroy()
        assert not problems, "container clean-up left things behind:\n" + "\n".join(problems)


@pytest.fixture(scope="session")
def image(podman: Podman) -> str:
    """houseprice:<version> built by `.ci/image` (what `make image` runs) on the Debian base."""
    from conftest import require_tool

    require_tool("mmdebstrap")
    version = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M)
    assert version is not None
    started = time.monotonic()
    proc = subprocess.run(
        ["bash", ".ci/image", *podman.flags],
        cwd=ROOT,
        env={**podman.env, "HOUSEPRICE_BASE": "debian"},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, f".ci/image failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    tag = f"localhost/houseprice:{version.group(1)}"
    size, base = podman.image_size_mb(tag), podman.image_size_mb(BASE_IMAGE)
    MEASURED.append(
        f"image {tag}: {size:.0f} MB (Debian base {base:.0f} MB), "
        f"base + build {time.monotonic() - started:.0f} s"
    )
    return tag
