"""The shared end-to-end harness: a real ``uvicorn`` process on a free 127.0.0.1 port.

Usage (in any test under ``tests/e2e/``)::

    def test_something(serve, artifact_path):
        server = serve({"MODEL_PATH": artifact_path})     # waits for /health/ready
        httpx.post(server.url + "/predict", json=...)
        server.stop()                                      # optional; returns the exit code

``serve(env, *, ready=True, timeout=60.0, args=())`` starts
``python -m app --host 127.0.0.1 --port <free>`` (the service as deployed) with the environment
plus ``env``, its stdout and stderr going to a log file under ``tmp_path``, and polls until
``/health/ready`` answers 200 (or only ``/health/live`` with ``ready=False``, for a server that
must start without a model). It returns a :class:`Server` with ``url``, ``proc`` (the
``Popen``), ``log_path`` and ``logs()``. Every server still running at the end of the test is
stopped by its PID: SIGTERM, then SIGKILL if it does not exit within 10 s.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A port that was free a moment ago (the OS picks it; the caller retries on a clash)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    url: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM, wait up to ``timeout`` s, then SIGKILL; return the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=timeout)
        return int(self.proc.returncode)


def _wait_until_up(server: Server, path: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if server.proc.poll() is not None:
                raise RuntimeError(
                    f"server exited with {server.proc.returncode} before {path} answered:\n"
                    + server.logs()[-4000:]
                )
            try:
                if client.get(server.url + path).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)  # poll interval, not a wait for readiness
    raise TimeoutError(f"{path} not 200 within {timeout} s:\n" + server.logs()[-4000:])


def start_server(
    env: Mapping[str, str],
    log_path: Path,
    *,
    ready: bool = True,
    timeout: float = 60.0,
    args: Sequence[str] = (),
) -> Server:
    """Start the service with ``env`` added to the environment; retry on a port clash."""
    for attempt in range(3):
        port = free_port()
        cmd = [
            sys.executable, "-m", "app",
            "--host", "127.0.0.1", "--port", str(port), *args,
        ]  # fmt: skip
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **env}
        with log_path.open("ab") as fh:
            proc = subprocess.Popen(
                cmd, cwd=ROOT, env=full_env, stdout=fh, stderr=subprocess.STDOUT
            )
        server = Server(f"http://127.0.0.1:{port}", proc, log_path)
        try:
            _wait_until_up(server, "/health/ready" if ready else "/health/live", timeout)
            return server
        except RuntimeError:
            if "address already in use" in server.logs().lower() and attempt < 2:
                continue
            raise
        except BaseException:
            server.stop()
            raise
    raise AssertionError("unreachable")


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Factory fixture: ``serve(env, *, ready=True, timeout=60.0, args=())`` -> Server."""
    servers: list[Server] = []

    def start(
        env: Mapping[str, str],
        *,
        ready: bool = True,
        timeout: float = 60.0,
        args: Sequence[str] = (),
    ) -> Server:
        log_path = tmp_path / f"server-{len(servers)}.log"
        server = start_server(env, log_path, ready=ready, timeout=timeout, args=args)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
