"""The record of training runs: ``runs/<id>/`` directories and the ``runs/index.jsonl`` log.

A run directory holds the run's config, ``metrics.json``, plots, ``MODEL_CARD.md`` and its
verified artifact (``model.joblib`` with its sidecars), so any run can be served again
(:mod:`model.workflow.registry`). Index lines written before a field existed still list:
:func:`run_records` fills what it can from the run directory and leaves the rest ``None``.

Everything here is written atomically (a temporary file in the same directory, ``fsync``,
``os.replace``), so a crash or an interrupt leaves either the old file or the new one,
never a truncated one that a later reader has to guess about.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import secrets
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from model.workflow.atomic import atomic_write_text

#: The artifact of a run, inside its directory.
RUN_ARTIFACT = "model.joblib"


@contextlib.contextmanager
def locked(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``lock_path`` (created if needed) for the block."""
    with open(lock_path, "a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def append_index(runs_dir: str | Path, record: dict[str, Any]) -> Path:
    """Add one JSON line to ``runs_dir/index.jsonl`` (see :func:`append_jsonl`)."""
    return append_jsonl(Path(runs_dir) / "index.jsonl", record)


def append_jsonl(path: str | Path, record: dict[str, Any]) -> Path:
    """Add one JSON line to ``path`` by rewriting the file and renaming it.

    Why not ``O_APPEND``: an append that is cut short (crash, full disk) leaves a torn last
    line that every later reader must detect and skip, and a later append lands after it.
    Rewriting the whole file to a temporary name and ``os.replace``-ing it means a reader
    sees either the old file or the new one, never half a line. The cost is O(lines) per
    record, nothing at the scale of a training run. Two concurrent writers are serialised by
    an ``flock`` on ``index.lock`` beside the file so neither rewrite loses the other's line.
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(record, sort_keys=True, allow_nan=False)
    with locked(p.parent / "index.lock"):
        old = p.read_text(encoding="utf-8") if p.exists() else ""
        if old and not old.endswith("\n"):
            old += "\n"
        atomic_write_text(p, old + line + "\n")
    return p


def read_index(runs_dir: str | Path) -> list[dict[str, Any]]:
    """The run records of ``runs_dir/index.jsonl``, oldest first (an unreadable line is skipped)."""
    return read_jsonl(Path(runs_dir) / "index.jsonl")


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """The JSON objects of a file written by :func:`append_jsonl`; unreadable lines skipped."""
    p = Path(path)
    if not p.exists():
        return []
    records = []
    for raw in p.read_text(encoding="utf-8").splitlines():
        with contextlib.suppress(json.JSONDecodeError):
            rec = json.loads(raw)
            if isinstance(rec, dict):
                records.append(rec)
    return records


def run_artifact(runs_dir: str | Path, run_id: str) -> Path:
    """Where run ``run_id`` keeps its artifact (present unless trained before runs kept one,
    or removed by ``houseprice gc``)."""
    return Path(runs_dir) / run_id / RUN_ARTIFACT


def _run_summary(runs_dir: Path, run_id: str) -> dict[str, Any]:
    """``runs/<id>/metrics.json`` (the metadata without the drift reference), or ``{}``."""
    try:
        doc = json.loads((runs_dir / run_id / "metrics.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def run_records(runs_dir: str | Path) -> list[dict[str, Any]]:
    """Every indexed run in one shape, oldest first, whatever version of train wrote its line.

    Keys: ``run_id, created_at, config, data, data_sha256, rows, n_features, estimator,
    params, cv, test, artifact, artifact_sha256, out, seconds``. ``artifact`` is the path of
    the run's own stored artifact, or ``None`` when it has none; ``out`` is where training
    installed it (old lines called that ``artifact``). A field an old line lacks is read from
    ``metrics.json`` when the run directory has it, else ``None``.
    """
    d = Path(runs_dir)
    out = []
    for r in read_index(d):
        run_id = str(r.get("run_id", ""))
        if not run_id:
            continue
        need_summary = any(r.get(k) is None for k in ("data", "n_features", "config"))
        summary = _run_summary(d, run_id) if need_summary else {}
        data = summary.get("data") or {}
        features = summary.get("features")
        n_features = r.get("n_features")
        if n_features is None and isinstance(features, list):
            n_features = len(features)
        stored = run_artifact(d, run_id)
        legacy = "out" not in r  # old lines: "artifact" was the served path
        out.append(
            {
                "run_id": run_id,
                "created_at": r.get("created_at"),
                "config": r.get("config"),
                "data": r.get("data") or data.get("path"),
                "data_sha256": r.get("data_sha256") or data.get("sha256"),
                "rows": r.get("rows"),
                "n_features": n_features,
                "estimator": r.get("estimator"),
                "params": r.get("params") or {},
                "cv": r.get("cv") or {},
                "test": r.get("test") or {},
                "artifact": str(stored) if stored.exists() else None,
                "artifact_sha256": r.get("artifact_sha256"),
                "out": r.get("artifact") if legacy else r.get("out"),
                "seconds": r.get("seconds"),
            }
        )
    return out


def new_run_id(now: datetime) -> str:
    """``20261127T010203Z-a1b2c3``: sortable by time, unique by a random suffix."""
    return now.strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)
