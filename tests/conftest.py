"""Shared fixtures. Tools the end-to-end tests drive are required in CI and skipped elsewhere."""

from __future__ import annotations

import os
import shutil

import pytest


def require_tool(name: str) -> str:
    """Path of an executable; a missing tool fails in CI (CI=true) and skips elsewhere."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (make tools installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def artifact_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A freshly trained default model (configs/ames.toml), trained once per test session."""
    from model.workflow.cli import main

    out = tmp_path_factory.mktemp("artifact")
    path = out / "model.joblib"
    code = main(
        [
            "train",
            "--config",
            "configs/ames.toml",
            "--out",
            str(path),
            "--runs-dir",
            str(out / "runs"),
            "--quiet",
            "--no-plots",
        ]
    )
    assert code == 0, f"training the test artifact failed with exit code {code}"
    return str(path)
