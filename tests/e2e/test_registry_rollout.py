"""The two-step roll-out of docs/DEPLOY.md against a real server: promote, then /admin/reload;
rollback, then /admin/reload. A refused promote leaves the served file, and so the next
reload, on the model that was serving."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from test_cli import GOOD  # tests/test_cli.py: the small two-feature config

from .conftest import ROOT, Server

pytestmark = pytest.mark.e2e

TOKEN = "rollout-test-token"


def houseprice(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "model.workflow.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_promote_and_rollback_reach_a_running_server_through_admin_reload(
    serve: Callable[..., Server], tmp_path: Path
) -> None:
    data = tmp_path / "small.csv"
    data.write_text("\n".join((ROOT / "data" / "ames.csv").read_text().splitlines()[:201]) + "\n")
    cfg = tmp_path / "c.toml"
    cfg.write_text(GOOD.format(data=data))
    out = tmp_path / "models" / "model.joblib"
    common = ["--out", str(out), "--runs-dir", str(tmp_path / "models" / "runs")]
    ids = []
    for seed in ("1", "2"):
        done = houseprice(
            tmp_path, "train", "--config", str(cfg), "--seed", seed, "--quiet", *common
        )
        assert done.returncode == 0, done.stderr
        ids.append(done.stderr.rsplit("(run ", 1)[1].split(")")[0])
    first, second = ids

    server = serve({"MODEL_PATH": str(out), "ADMIN_TOKEN": TOKEN})
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=server.url, timeout=30) as c:

        def serving() -> str:
            return str(c.get("/health/ready").json()["model_version"])

        assert serving().endswith(second)

        done = houseprice(tmp_path, "promote", first, *common)
        assert done.returncode == 0, done.stderr
        assert '{"allow_downgrade": true}' in done.stdout  # the first run is the older one
        assert serving().endswith(second)  # step 1 alone changes nothing in the process
        r = c.post("/admin/reload", headers=auth)
        assert r.status_code == 409 and "allow_downgrade" in r.text, r.text  # replay guard
        assert serving().endswith(second)
        r = c.post("/admin/reload", headers=auth, json={"allow_downgrade": True})
        assert r.status_code == 200, r.text
        assert r.json()["model_version"].endswith(first)
        assert r.json()["previous_version"].endswith(second)
        assert serving().endswith(first)

        # A refused promote (corrupt stored artifact) leaves the served file as it was.
        stored = tmp_path / "models" / "runs" / second / "model.joblib"
        good = stored.read_bytes()
        stored.write_bytes(good[:-10] + b"0123456789")
        done = houseprice(tmp_path, "promote", second, *common)
        assert done.returncode == 2 and "checksum mismatch" in done.stderr, done.stderr
        assert c.post("/admin/reload", headers=auth).json()["model_version"].endswith(first)
        stored.write_bytes(good)

        done = houseprice(tmp_path, "rollback", *common)
        assert done.returncode == 0, done.stderr
        assert "allow_downgrade" not in done.stdout  # back to the newer run
        r = c.post("/admin/reload", headers=auth)
        assert r.status_code == 200 and r.json()["model_version"].endswith(second), r.text
