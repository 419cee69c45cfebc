"""podman for the container tests: one private store per session, the project's settings.

Every call goes through a small wrapper script (``Podman.path``) that sets the project's
``CONTAINERS_CONF``/``CONTAINERS_STORAGE_CONF`` (.ci/containers/) and points ``--root``,
``--runroot`` and ``--network-config-dir`` at a temporary directory, so the tests neither see
nor touch the machine's own containers, and podman-compose (``--podman-path``) and podman's
own cleanup processes use the same store. ``Podman.destroy`` removes everything in it.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from .helpers import ROOT

CONTAINERS = ROOT / ".ci" / "containers"
# The Debian-built base (.ci/base-image) that .ci/containers/env names by default.
_base = re.search(r"BASE_IMAGE:-([^}]+)", (CONTAINERS / "env").read_text())
assert _base is not None, ".ci/containers/env names no default BASE_IMAGE"
BASE_IMAGE = _base.group(1)
T = TypeVar("T")


def free_port() -> int:
    """A loopback port that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def poll(check: Callable[[], T | None], timeout: float, what: str, interval: float = 0.25) -> T:
    """Call ``check`` until it returns something other than None; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def http(
    method: str, url: str, body: Any = None, timeout: float = 5.0
) -> tuple[int, dict[str, Any] | str]:
    """(status, parsed JSON or text) of one request; connection errors raise OSError."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, raw, kind = response.status, response.read(), response.headers
    except urllib.error.HTTPError as error:
        status, raw, kind = error.code, error.read(), error.headers
    text = raw.decode()
    if "json" in (kind.get("Content-Type") or ""):
        return status, json.loads(text)
    return status, text


def status_or_none(url: str) -> int | None:
    """The status of a GET, or None while nothing answers."""
    try:
        return http("GET", url, timeout=2)[0]
    except OSError:
        return None


class Podman:
    """A podman whose containers, images, volumes and networks live under one directory."""

    PREFIX = "hp-podman-"

    def __init__(self, executable: str, directory: Path | None = None) -> None:
        """A new store (``directory=None``), or the existing one in ``directory``."""
        # Short path: conmon's attach sockets live under the run root (108-byte socket paths).
        self.dir = directory or Path(tempfile.mkdtemp(prefix=self.PREFIX, dir="/tmp"))
        self.flags = [
            f"--root={self.dir / 'root'}",
            f"--runroot={self.dir / 'run'}",
            f"--network-config-dir={self.dir / 'net'}",
        ]
        (self.dir / "net").mkdir(exist_ok=True)
        self.env = {
            **os.environ,
            "CONTAINERS_CONF": str(CONTAINERS / "containers.conf"),
            "CONTAINERS_STORAGE_CONF": str(CONTAINERS / "storage.conf"),
        }
        self.path = self.dir / "podman"
        self.path.write_text(
            "#!/bin/sh\n"
            f"export CONTAINERS_CONF={shlex.quote(self.env['CONTAINERS_CONF'])}\n"
            f"export CONTAINERS_STORAGE_CONF={shlex.quote(self.env['CONTAINERS_STORAGE_CONF'])}\n"
            f'exec {shlex.quote(executable)} {shlex.join(self.flags)} "$@"\n'
        )
        self.path.chmod(0o755)
        if directory is None:
            (self.dir / "owner").write_text(str(os.getpid()))

    @classmethod
    def sweep(cls, executable: str) -> list[str]:
        """Destroy the stores of earlier sessions whose process is gone (killed before their
        own clean-up could run); returns what could not be removed."""
        problems = []
        for directory in Path("/tmp").glob(cls.PREFIX + "*"):
            try:
                owner = int((directory / "owner").read_text())
                os.kill(owner, 0)
                continue  # a live session's store
            except ProcessLookupError:
                pass
            except (OSError, ValueError):
                continue  # not one of ours, or someone else's
            problems += cls(executable, directory).destroy()
        return problems

    def run(
        self, *args: str, timeout: float = 120, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [str(self.path), *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=self.env,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"podman {shlex.join(args)} -> {proc.returncode}\n{proc.stderr}")
        return proc

    def inspect(self, name: str, template: str) -> str:
        return self.run("inspect", "--format", template, name).stdout.strip()

    def logs(self, name: str) -> str:
        proc = self.run("logs", name, check=False)
        return proc.stdout + proc.stderr

    def exec_python(self, name: str, code: str, timeout: float = 30) -> str:
        """Run Python inside a running container (the images have no curl); its stdout."""
        return self.run("exec", name, "python", "-c", code, timeout=timeout).stdout

    def http_inside(self, name: str, method: str, url: str, body: Any = None) -> tuple[int, Any]:
        """(status, JSON body) of a request made from inside the container's network namespace."""
        code = (
            "import json, sys, urllib.request as u, urllib.error as e\n"
            "body = sys.argv[3].encode() if sys.argv[3] else None\n"
            "r = u.Request(sys.argv[2], data=body, method=sys.argv[1],"
            " headers={'Content-Type': 'application/json'})\n"
            "try:\n"
            "    with u.urlopen(r, timeout=5) as resp: s, raw = resp.status, resp.read()\n"
            "except e.HTTPError as err: s, raw = err.code, err.read()\n"
            "except OSError as err: s, raw = 0, json.dumps(str(err)).encode()\n"
            "print(json.dumps([s, json.loads(raw or b'null')]))\n"
        )
        payload = "" if body is None else json.dumps(body)
        out = self.run("exec", name, "python", "-c", code, method, url, payload).stdout
        status, parsed = json.loads(out)
        return int(status), parsed

    def image_size_mb(self, image: str) -> float:
        return int(self.inspect(image, "{{.Size}}")) / 1e6

    def destroy(self) -> list[str]:
        """Remove every pod, container, volume, network and image, then the store itself.

        Returns what could not be removed (the caller reports it); never raises.
        """
        problems = []
        for args in (
            ("pod", "rm", "--all", "--force", "--time", "0"),
            ("rm", "--all", "--force", "--time", "0"),
            ("system", "reset", "--force"),
        ):
            try:
                proc = self.run(*args, timeout=120, check=False)
                if proc.returncode != 0:
                    problems.append(f"podman {' '.join(args)}: {proc.stderr.strip()[-300:]}")
            except subprocess.TimeoutExpired:
                problems.append(f"podman {' '.join(args)}: timed out")
        shutil.rmtree(self.dir, ignore_errors=True)
        if self.dir.exists():
            problems.append(f"{self.dir} could not be removed")
        return problems


def wait_ready(url: str, timeout: float = 60) -> float:
    """Seconds until GET ``url``/health/ready answers 200."""
    started = time.monotonic()
    poll(lambda: True if status_or_none(url + "/health/ready") == 200 else None, timeout, url)
    return time.monotonic() - started
