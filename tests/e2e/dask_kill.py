"""A ``houseprice`` command run on a real LocalCluster whose busy worker is killed mid-task."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Killed:
    """How the command ended: its exit code, its stderr, and the worker PID killed."""

    returncode: int
    stderr: str
    pid: int | None

    def assert_one_dask_error(self) -> str:
        """The command failed with exit code 1 and one ``error: dask:`` line; that line."""
        assert self.pid is not None, "no task was seen running"
        lines = self.stderr.strip().splitlines()
        assert self.returncode == 1, self.stderr
        assert len(lines) == 1 and lines[0].startswith("error: dask: "), self.stderr
        return lines[0]


def run_killing_a_worker(argv: Sequence[str], task: str) -> Killed:
    """Run ``houseprice ARGV --scheduler ADDRESS`` against a 2-worker LocalCluster that retries
    nothing, and SIGKILL the first worker seen running a task whose key holds ``task``."""
    import dask
    from distributed import Client, LocalCluster

    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        cluster = LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        )
    client = Client(cluster)
    proc = None
    try:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "model.workflow.cli",
                *argv,
                "--scheduler",
                cluster.scheduler_address,
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        killed = None
        deadline = time.monotonic() + 120
        while killed is None and time.monotonic() < deadline and proc.poll() is None:
            running = client.processing()
            busy = [w for w, keys in running.items() if any(task in str(k) for k in keys)]
            if busy:
                pids = client.run(os.getpid, workers=busy[:1])
                killed = next(iter(pids.values()))
                os.kill(killed, signal.SIGKILL)
            time.sleep(0.05)
        _, err = proc.communicate(timeout=300)
    finally:
        if proc is not None and proc.poll() is None:  # the test failed before it ended
            proc.kill()
            proc.wait()
        client.close()
        cluster.close()
    return Killed(proc.returncode, err, killed)
