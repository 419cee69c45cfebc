"""Measure the service's memory and CPU footprint, to size Kubernetes requests and limits.

Not a test (nothing is asserted): a script that starts the installed app as its own process,
the way the image runs it (one uvicorn worker), drives it over HTTP and reads the process' RSS
(VmRSS) and peak RSS (VmHWM) from /proc. Run it against a venv that holds what the image
holds, the wheel without extras plus the pinned lock:

    python3 -m venv /tmp/rt && .venv/bin/python -m pip wheel --no-deps -w /tmp/whl .
    /tmp/rt/bin/pip install --no-deps -r requirements/runtime.txt /tmp/whl/houseprice-*.whl
    .venv/bin/houseprice train --config configs/ames.toml --out /tmp/m/model.joblib
    .venv/bin/python tests/deploy/measure_footprint.py --venv /tmp/rt --model /tmp/m/model.joblib
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any


def memory_mib(pid: int) -> str:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return f"RSS {fields['VmRSS']:.0f} MiB, peak {fields['VmHWM']:.0f} MiB"


def cpu_seconds(pid: int) -> float:
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def post(base: str, body: bytes) -> None:
    request = urllib.request.Request(
        base + "/predict", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=120) as response:
        response.read()
        assert response.status == 200, response.status


def main() -> int:
    parser = argparse.ArgumentParser(description="Measure the service's RSS and CPU.")
    parser.add_argument("--venv", required=True, help="venv with the wheel + runtime lock")
    parser.add_argument("--model", required=True, help="trained model.joblib (model.json beside)")
    args = parser.parse_args()

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    venv_bin = Path(args.venv) / "bin"
    env = {
        "PATH": f"{venv_bin}:/usr/bin:/bin",
        "MODEL_PATH": str(Path(args.model).resolve()),
        "PYTHONDONTWRITEBYTECODE": "1",
        "HOME": "/tmp",
        "LOG_LEVEL": "warning",
    }
    argv = [str(venv_bin / "uvicorn"), "app.main:app", "--host", "127.0.0.1"]
    argv += ["--port", str(port), "--workers", "1", "--no-access-log"]
    # cwd=/tmp: import the installed wheel, not the source tree.
    server = subprocess.Popen(argv, cwd="/tmp", env=env, stdout=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        started = time.monotonic()
        while True:
            try:
                with urllib.request.urlopen(base + "/health/ready", timeout=1) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError):
                pass
            if server.poll() is not None or time.monotonic() - started > 60:
                print("the server did not become ready", file=sys.stderr)
                return 1
            time.sleep(0.05)
        print(f"ready after {time.monotonic() - started:.1f} s: {memory_mib(server.pid)}")

        metadata = json.loads(Path(args.model).with_name("model.json").read_text())
        house: dict[str, Any] = {f["name"]: f["example"] for f in metadata["features"]}

        n = 1000
        cpu0, wall0 = cpu_seconds(server.pid), time.monotonic()
        for i in range(n):
            post(base, json.dumps({**house, "living_area": 800 + i}).encode())
        cpu = cpu_seconds(server.pid) - cpu0
        print(
            f"{n} sequential single predictions in {time.monotonic() - wall0:.1f} s, "
            f"server CPU {1000 * cpu / n:.2f} ms each: {memory_mib(server.pid)}"
        )

        wrk = shutil.which("wrk")
        if wrk:
            with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
                script.write(
                    'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                )
                script.write(f"wrk.body = {json.dumps(json.dumps(house))}\n")
            out = subprocess.run(
                [wrk, "-t2", "-c16", "-d10s", "-s", script.name, base + "/predict"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            os.unlink(script.name)
            rate = next(line for line in out.splitlines() if "Requests/sec" in line)
            print(f"wrk 16 connections 10 s, {rate.split()[-1]} req/s: {memory_mib(server.pid)}")

        rows = [{**house, "living_area": 900 + j} for j in range(10_000)]
        big = json.dumps({"instances": rows}).encode()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda _: post(base, big), range(16)))
        print(
            f"16 batches of 10000 rows ({len(big) / 1e6:.1f} MB), 8 concurrent: "
            f"{memory_mib(server.pid)}"
        )
    finally:
        server.terminate()
        print(f"SIGTERM: exit code {server.wait(timeout=30)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
