"""Training that is interrupted, fed bad data, or cannot write leaves the previous model alone.

Each test starts from a copy of a good, previously trained artifact (its sidecars and a
``runs/`` directory with its ``index.jsonl``), runs ``houseprice train`` over it in a way that
must fail, and then checks, byte for byte, that the previous artifact, its sidecars and the
index are exactly what they were, that ``load_artifact`` still verifies and loads it, that every
index line still parses, and that no partial file was left behind.

The faults are real ones at the OS boundary, in a child process: SIGINT and SIGKILL sent to
``houseprice train`` mid-run; ``RLIMIT_FSIZE`` set in the child (its writes past the limit fail
with ``EFBIG``, the kernel's "disk full" for one process); a read-only bind mount of the
artifacts directory in a private mount namespace (``EROFS``; chmod would not stop root).
"""

from __future__ import annotations

import csv
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from model.workflow.artifact import load_artifact
from model.workflow.config import load_config

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "ames.toml"
DATA = ROOT / "data" / "ames.csv"

pytestmark = pytest.mark.slow


# --- the previous model and what "intact" means -------------------------------------------------


@pytest.fixture
def previous(artifact_path: str, tmp_path: Path) -> Path:
    """A copy of the session's trained artifact, sidecars and runs/ in a fresh directory."""
    src = Path(artifact_path).parent
    art = tmp_path / "artifacts"
    art.mkdir()
    for f in src.iterdir():
        if f.is_file():
            shutil.copy2(f, art / f.name)
    shutil.copytree(src / "runs", tmp_path / "runs")
    assert (art / "model.joblib.sha256").exists()
    assert (tmp_path / "runs" / "index.jsonl").exists()
    return tmp_path


def snapshot(base: Path) -> dict[str, bytes]:
    """Every regular file under ``base`` (relative path -> bytes), run directories included."""
    return {
        str(p.relative_to(base)): p.read_bytes()
        for p in sorted(base.rglob("*"))
        if p.is_file() and p.name != "index.lock"
    }


def assert_intact(base: Path, before: dict[str, bytes], *, leftovers_allowed: bool = False) -> None:
    after = snapshot(base)
    changed = sorted(k for k in before if after.get(k) != before[k])
    assert not changed, f"files changed or removed by the failed run: {changed}"
    new = sorted(set(after) - set(before))
    if not leftovers_allowed:
        assert not new, f"the failed run left files behind: {new}"
        hidden = [p.name for p in base.rglob(".*")]
        assert not hidden, f"temporary files or staging directories left behind: {hidden}"
    art = load_artifact(base / "artifacts" / "model.joblib")
    assert art.metadata["model_version"]
    lines = (base / "runs" / "index.jsonl").read_text(encoding="utf-8").splitlines()
    assert lines, "the runs index is empty"
    for n, line in enumerate(lines, 1):
        record = json.loads(line)  # raises on a torn line
        assert isinstance(record, dict) and "run_id" in record, f"index line {n}: {line[:80]}"


# --- running `houseprice train` as a child process ----------------------------------------------


def train_cmd(base: Path, *extra: str, data: Path = DATA) -> list[str]:
    return [
        sys.executable,
        "-m",
        "model.workflow.cli",
        "train",
        "--config",
        str(CONFIG),
        "--data",
        str(data),
        "--out",
        str(base / "artifacts" / "model.joblib"),
        "--runs-dir",
        str(base / "runs"),
        "--no-plots",
        *extra,
    ]


def child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "MODEL_SIGNING_KEY"}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run(
    cmd: list[str], preexec: Callable[[], None] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cmd,
        cwd=ROOT,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=180,
        preexec_fn=preexec,
        check=False,
    )


def interrupt_after(cmd: list[str], line_prefix: str, sig: int) -> tuple[int, str]:
    """Start ``cmd``, wait for a stderr line starting with ``line_prefix``, send ``sig``."""
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=child_env(), stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True
    )
    assert proc.stderr is not None
    seen: list[str] = []
    deadline = time.monotonic() + 120
    try:
        for line in proc.stderr:
            seen.append(line)
            if line.startswith(line_prefix):
                proc.send_signal(sig)
                break
            assert time.monotonic() < deadline, "training never reached the interrupt point"
        else:
            pytest.fail(f"training ended before {line_prefix!r}: {''.join(seen)[-2000:]}")
        rest = proc.stderr.read()
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return code, "".join(seen) + rest


# --- interrupts ----------------------------------------------------------------------------------


def test_sigint_mid_training_leaves_previous_model_and_index(previous: Path) -> None:
    before = snapshot(previous)
    code, err = interrupt_after(
        train_cmd(previous, "--folds", "2", "--print-every", "1"), "cv 1/", signal.SIGINT
    )
    assert code == 130, err
    assert "interrupted: nothing was replaced" in err
    assert "Traceback" not in err
    assert_intact(previous, before)


@pytest.mark.parametrize(
    "point",
    [
        pytest.param("cv 1/", id="during-cross-validation"),
        pytest.param("last", id="after-the-last-cv-fit"),  # refit, curve, run dir, save
    ],
)
def test_sigkill_mid_training_leaves_previous_model_and_index(previous: Path, point: str) -> None:
    if point == "last":  # two folds of every grid value
        fits = 2 * len(load_config(CONFIG).grid["alpha"])
        point = f"cv {fits}/{fits}"
    before = snapshot(previous)
    code, err = interrupt_after(
        train_cmd(previous, "--folds", "2", "--print-every", "1"), point, signal.SIGKILL
    )
    assert code == -signal.SIGKILL, err
    # SIGKILL runs no clean-up: a temporary file or staging directory may remain, named with
    # a leading dot and never read by anyone; what must hold is that nothing real changed.
    assert_intact(previous, before, leftovers_allowed=True)
    strays = [p for p in snapshot(previous) if p not in before]
    assert all(Path(p).name.startswith(".") or "/." in p for p in strays), strays


# --- bad data ------------------------------------------------------------------------------------


def _write_csv(path: Path, edit: Callable[[list[list[str]]], list[list[str]]]) -> Path:
    with DATA.open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    with path.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(edit(rows))
    return path


def _set(
    column: str, value: str, rows_from: int = 1
) -> Callable[[list[list[str]]], list[list[str]]]:
    def edit(rows: list[list[str]]) -> list[list[str]]:
        j = rows[0].index(column)
        for r in rows[rows_from:]:
            r[j] = value
        return rows

    return edit


BAD_DATA: dict[str, tuple[Callable[[list[list[str]]], list[list[str]]], str]] = {
    "header-only": (lambda rows: rows[:1], "no data rows"),
    "ragged-row": (lambda rows: [*rows[:10], rows[10][:5], *rows[11:]], "line 11"),
    "missing-column": (
        lambda rows: [r[:15] + r[16:] for r in rows],  # column 15 is Neighborhood
        "'Neighborhood'",
    ),
    "text-in-numeric": (_set("Overall.Qual", "good"), "'Overall.Qual'"),
    "negative-prices": (_set("price", "-5"), "'price'"),
}


@pytest.mark.parametrize("case", sorted(BAD_DATA))
def test_bad_data_is_a_clear_error_and_changes_nothing(
    previous: Path, tmp_path: Path, case: str
) -> None:
    edit, named = BAD_DATA[case]
    data = _write_csv(tmp_path / f"{case}.csv", edit)
    before = snapshot(previous)
    done = run(train_cmd(previous, "--folds", "2", data=data))
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert named in lines[0], lines[0]
    assert_intact(previous, before)


# --- no room, no permission ---------------------------------------------------------------------


def _fsize_limit(limit: int) -> Callable[[], None]:
    """In the child: writes past ``limit`` bytes fail with EFBIG instead of killing it."""

    def pre() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # else the kernel's SIGXFSZ kills it
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return pre


def test_full_disk_while_writing_the_run_directory(previous: Path) -> None:
    """4 KiB: the first run file (config.toml, ~4.5 KB) cannot be written."""
    before = snapshot(previous)
    done = run(train_cmd(previous, "--folds", "2"), preexec=_fsize_limit(4096))
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    assert "File too large" in done.stderr, done.stderr
    assert_intact(previous, before)


def test_full_disk_while_writing_the_artifact(previous: Path) -> None:
    """A limit above every run file but below the largest file of the artifact (the pickle or
    its model.json, the metadata with the drift reference as JSON): the artifact write fails
    before anything is renamed."""
    written = ("config.toml", "metrics.json", "MODEL_CARD.md")  # what a --no-plots run writes
    run_files = [p for p in (previous / "runs").rglob("*") if p.name in written]
    art = previous / "artifacts"
    artifact_size = max((art / n).stat().st_size for n in ("model.joblib", "model.json"))
    largest_run_file = max(p.stat().st_size for p in run_files)
    limit = artifact_size - 1024
    assert largest_run_file < limit, (largest_run_file, artifact_size)  # else pick another limit
    before = snapshot(previous)
    done = run(train_cmd(previous, "--folds", "2"), preexec=_fsize_limit(limit))
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    assert "cannot write the artifact (File too large)" in done.stderr, done.stderr
    assert "the previous artifact is unchanged" in done.stderr
    assert_intact(previous, before)  # the run directory of the failed run was removed too


def _can_mount_privately() -> bool:
    unshare = shutil.which("unshare")
    if unshare is None:
        return False
    probe = subprocess.run(
        [unshare, "--mount", "--propagation", "private", "sh", "-c", "mount --bind / /mnt"],
        capture_output=True,
        check=False,
    )
    return probe.returncode == 0


def test_read_only_artifacts_directory(previous: Path) -> None:
    """A genuinely read-only file system: the artifacts directory bind-mounted ``ro``.

    The mount lives in a private mount namespace that dies with the child, so nothing outside
    the test sees it. It needs CAP_SYS_ADMIN (root in CI, or a user namespace); without it
    the test skips rather than fake the error.
    """
    if not _can_mount_privately():
        pytest.skip("cannot create a private mount namespace (unshare/mount not permitted)")
    art = previous / "artifacts"
    ro = 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && shift && exec "$@"'
    cmd = ["unshare", "--mount", "--propagation", "private", "sh", "-c", ro, "sh", str(art)]
    before = snapshot(previous)
    done = run([*cmd, *train_cmd(previous, "--folds", "2")])
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    assert "cannot write the artifact (Read-only file system)" in done.stderr, done.stderr
    assert_intact(previous, before)
    (art / "probe").write_text("the mount was private to the child")  # writable again here
