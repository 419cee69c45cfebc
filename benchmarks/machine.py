"""The header every benchmark prints: what machine, how busy, which library versions.

Figures from a shared 2-core machine mean little without its load average, and a ratio against
scikit-learn means little without both versions, so every table starts with this.
"""

from __future__ import annotations

import contextlib
import os
import platform
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import numpy as np


def _cpu() -> str:
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def _blas() -> str:
    config: Any = getattr(np, "__config__", None)
    with contextlib.suppress(AttributeError, KeyError, TypeError):
        return str(config.CONFIG["Build Dependencies"]["blas"]["name"])
    return "?"


def describe(*packages: str) -> str:
    """CPU, cores, OS, load average, Python, NumPy (and its BLAS), then ``packages``' versions."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    versions = [f"Python {platform.python_version()}", f"NumPy {np.__version__} ({_blas()})"]
    for name in packages:
        try:
            versions.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            versions.append(f"{name} (not installed)")
    blas_env = " ".join(f"{k}={v}" for k, v in sorted(os.environ.items()) if "BLAS" in k)
    return (
        f"{_cpu()}, {os.cpu_count()} cores ({usable} usable, {platform.machine()}), "
        f"{platform.system()} {platform.release()}, load avg {load}\n"
        + ", ".join(versions)
        + (f"\nenv: {blas_env}" if blas_env else "")
    )
