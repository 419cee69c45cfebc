"""The record of training runs: ``runs/<id>/`` directories and the ``runs/index.jsonl`` log.

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


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    with open(lock_path, "a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def append_index(runs_dir: str | Path, record: dict[str, Any]) -> Path:
    """Add one JSON line to ``runs_dir/index.jsonl`` by rewriting the file and renaming it.

    Why not ``O_APPEND``: an append that is cut short (crash, full disk) leaves a torn last
    line that every later reader must detect and skip, and a later append lands after it.
    Rewriting the whole file to a temporary name and ``os.replace``-ing it means a reader
    sees either the old index or the new one, never half a line. The cost is O(runs) per
    run, nothing at the scale of a training run. Two concurrent runs are serialised by an
    ``flock`` on ``index.lock`` so neither rewrite loses the other's line.
    """
    d = Path(runs_dir)
    d.mkdir(parents=True, exist_ok=True)
    index = d / "index.jsonl"
    line = json.dumps(record, sort_keys=True, allow_nan=False)
    with _locked(d / "index.lock"):
        old = index.read_text(encoding="utf-8") if index.exists() else ""
        if old and not old.endswith("\n"):
            old += "\n"
        atomic_write_text(index, old + line + "\n")
    return index


def read_index(runs_dir: str | Path) -> list[dict[str, Any]]:
    """The run records of ``runs_dir/index.jsonl``, oldest first (an unreadable line is skipped)."""
    index = Path(runs_dir) / "index.jsonl"
    if not index.exists():
        return []
    records = []
    for raw in index.read_text(encoding="utf-8").splitlines():
        with contextlib.suppress(json.JSONDecodeError):
            rec = json.loads(raw)
            if isinstance(rec, dict):
                records.append(rec)
    return records


def new_run_id(now: datetime) -> str:
    """``20261127T010203Z-a1b2c3``: sortable by time, unique by a random suffix."""
    return now.strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)
