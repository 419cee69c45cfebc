"""The model registry: serve any run's stored artifact, roll back, compare runs, clean up.

Every run keeps its verified artifact in ``runs/<id>/model.joblib`` (with ``.sha256``,
``.sig`` when signed, and ``model.json``). The *served* artifact is a copy of one of them at
``--out`` (default ``artifacts/model.joblib``), the path the service loads at start-up and on
``POST /admin/reload``. ``runs/promotions.jsonl`` records every change of the served copy:
``{time, run_id, sha256, user, action: train|promote|rollback, out}`` (``out`` relative to
the runs directory).

Installing a copy without ever serving a mix. The artifact and its sidecars are four files
and no rename swaps four files at once, so the swap is ordered so that, after every single
rename, the file at ``--out`` verifies against its checksum and signature as either the old
or the new model (a kill at any point leaves one of them served):

1. every new file is first written to a temporary file beside its target and fsynced
   (a failure here leaves the served files untouched);
2. ``.sig`` and ``.sha256`` are replaced by versions listing the old *and* the new digest
   (the loader accepts the bytes when they match any line: see
   :mod:`model.workflow.artifact`); the old artifact still verifies;
3. the artifact is replaced: the new bytes verify;
4. ``model.json`` is replaced;
5. ``.sig`` and ``.sha256`` are replaced by the new ones alone. As in Contract 1 the
   ``.sha256`` rename is the commit point: from here on only the new model verifies.

``model.json`` is a convenience copy nobody verifies; a kill between steps 3 and 4 leaves it
describing the old model beside the new artifact until the next promotion.
"""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import json
import math
import os
import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from model.workflow.artifact import (
    ArtifactError,
    load_artifact,
    read_checksums,
    sidecar_paths,
    verify_artifact,
)
from model.workflow.atomic import fsync_dir, write_temp
from model.workflow.runs import (
    RUN_ARTIFACT,
    append_jsonl,
    locked,
    read_jsonl,
    run_artifact,
    run_records,
)

#: The promotion history, inside the runs directory.
HISTORY = "promotions.jsonl"


class RegistryError(ArtifactError):
    """A promotion, rollback, gc or comparison that cannot be done; the message is one line.

    An :class:`ArtifactError`, so every command reports it as one ``error:`` line, exit 2.
    """


# --- finding runs ------------------------------------------------------------------------------


def find_run(records: list[dict[str, Any]], ref: str, runs_dir: str | Path) -> dict[str, Any]:
    """The record whose run id is ``ref``, or starts or ends with it when only one does."""
    exact = [r for r in records if r["run_id"] == ref]
    if exact:
        return exact[-1]
    hits = [
        r for r in records if ref and (r["run_id"].startswith(ref) or r["run_id"].endswith(ref))
    ]
    if len(hits) == 1:
        return hits[0]
    index = Path(runs_dir) / "index.jsonl"
    if not hits:
        return _fail(f"unknown run id {ref!r}: not in {index} (houseprice runs lists them)")
    some = ", ".join(r["run_id"] for r in hits[:4])
    return _fail(
        f"run id {ref!r} is ambiguous in {index}: {some}{', ...' if len(hits) > 4 else ''}"
    )


def _existing(runs_dir: str | Path) -> Path:
    runs = Path(runs_dir)
    if not (runs / "index.jsonl").is_file():
        raise RegistryError(f"{runs}: no runs recorded here (no index.jsonl)")
    return runs


def _fail(message: str) -> Any:
    raise RegistryError(message)


def served_sha256(out: str | Path) -> str | None:
    """The sha256 of the artifact at ``out`` if it verifies (no key needed), else ``None``."""
    try:
        return verify_artifact(out)
    except ArtifactError:
        return None


# --- the history -------------------------------------------------------------------------------


def _same_file(a: str | Path, b: str | Path) -> bool:
    return os.path.abspath(a) == os.path.abspath(b)


def read_history(runs_dir: str | Path, out: str | Path | None = None) -> list[dict[str, Any]]:
    """The promotion history, oldest first; only the entries for ``out`` when it is given.

    Entries name ``out`` relative to the runs directory, so a volume holding both can be
    mounted or copied elsewhere and keep its history.
    """
    entries = read_jsonl(Path(runs_dir) / HISTORY)
    if out is None:
        return entries
    return [e for e in entries if _same_file(os.path.join(runs_dir, e.get("out", "")), out)]


def served_stack(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Replay the history of one ``--out``: train and promote push, rollback pops.

    The top is what was served last; the entry below it is what ``rollback`` serves.
    """
    stack: list[dict[str, Any]] = []
    for entry in history:
        if entry.get("action") == "rollback":
            if stack:
                stack.pop()
            if not stack or stack[-1].get("run_id") != entry.get("run_id"):
                stack.append(entry)  # history edited by hand: trust what was served
        else:
            stack.append(entry)
    return stack


def _user() -> str:
    user = os.environ.get("USER")
    if user:
        return user
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def record_promotion(
    runs_dir: str | Path, run_id: str, sha256: str, out: str | Path, action: str
) -> dict[str, Any]:
    """Append one entry to ``runs_dir/promotions.jsonl`` and return it."""
    entry = {
        "time": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "run_id": run_id,
        "sha256": sha256,
        "user": _user(),
        "action": action,
        "out": os.path.relpath(os.path.abspath(out), os.path.abspath(runs_dir)),
    }
    append_jsonl(Path(runs_dir) / HISTORY, entry)
    return entry


# --- installing a run's artifact at --out ------------------------------------------------------


@dataclass(frozen=True)
class StoredArtifact:
    """A run's artifact files, read once and verified: what gets copied to ``--out``."""

    run_id: str
    data: bytes
    sha256: str
    signature: str | None
    meta_json: bytes


def read_run_artifact(
    runs_dir: str | Path, run_id: str, signing_key: bytes | None = None
) -> StoredArtifact:
    """Load and verify run ``run_id``'s stored artifact (checksum, signature with a key,
    format, and that it is that run's model), then read its bytes and sidecars."""
    path = run_artifact(runs_dir, run_id)
    if not path.exists():
        why = (
            "removed by houseprice gc"
            if (path.parent / "metrics.json").exists() and sidecar_paths(path)["json"].exists()
            else "it was trained before runs kept their artifacts, or removed by houseprice gc"
        )
        raise RegistryError(f"run {run_id} has no stored artifact ({path}): {why}")
    try:
        art = load_artifact(path, signing_key=signing_key)
    except ArtifactError as exc:
        raise RegistryError(f"run {run_id}: {exc}") from None
    if art.metadata.get("run_id") != run_id:
        raise RegistryError(
            f"run {run_id}: {path} holds the model of run {art.metadata.get('run_id')!r}"
        )
    side = sidecar_paths(path)
    try:
        data = path.read_bytes()
        signature = side["sig"].read_text(encoding="utf-8") if side["sig"].exists() else None
        meta_json = side["json"].read_bytes() if side["json"].exists() else b""
    except OSError as exc:
        raise RegistryError(f"run {run_id}: cannot read {exc.filename}: {exc.strerror}") from None
    if hashlib.sha256(data).hexdigest() != art.sha256:
        raise RegistryError(f"run {run_id}: {path} changed while it was being read; try again")
    if not meta_json:
        meta_json = (json.dumps(art.metadata, indent=2, allow_nan=False) + "\n").encode()
    sig = signature.split()[0] if signature and signature.split() else None
    return StoredArtifact(run_id, data, art.sha256, sig, meta_json)


def _listed(path: Path) -> list[str]:
    """The non-empty lines of a sidecar, or ``[]`` when it is missing or unreadable."""
    try:
        return [line.split()[0] for line in path.read_text(encoding="utf-8").splitlines() if line]
    except (OSError, IndexError, UnicodeDecodeError):
        return []


def install(stored: StoredArtifact, out: str | Path) -> None:
    """Make ``stored`` the artifact at ``out``, in the order the module docstring gives."""
    p = Path(out)
    if p.suffix == ".json":
        raise RegistryError(f"{p}: an artifact path must not end in .json (used for metadata)")
    side = sidecar_paths(p)
    name = p.name
    try:
        old_sha = read_checksums(p) if side["sha256"].exists() else []
    except ArtifactError:
        old_sha = []
    old_sig = _listed(side["sig"])

    def sums(digests: list[str]) -> bytes:
        return "".join(f"{d}  {name}\n" for d in dict.fromkeys(digests)).encode()

    new_sig = [stored.signature] if stored.signature else []
    # (content, target); None content means: remove the target.
    steps: list[tuple[bytes | None, Path]] = []
    if new_sig:
        steps.append(
            ("".join(f"{s}\n" for s in dict.fromkeys(old_sig + new_sig)).encode(), side["sig"])
        )
    steps.append((sums([*old_sha, stored.sha256]), side["sha256"]))
    steps.append((stored.data, p))
    steps.append((stored.meta_json, side["json"]))
    steps.append(((new_sig[0] + "\n").encode() if new_sig else None, side["sig"]))
    steps.append((sums([stored.sha256]), side["sha256"]))
    artifact_step = 2 if new_sig else 1
    temps: list[Path | None] = []
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        for content, target in steps:
            temps.append(None if content is None else write_temp(p.parent, target.name, content))
    except OSError as exc:
        _remove(temps)
        raise RegistryError(
            f"{p}: cannot write the artifact ({exc.strerror or exc}); "
            "the served artifact is unchanged"
        ) from exc
    done = 0
    try:
        for (_, target), tmp in zip(steps, temps, strict=True):
            if tmp is None:
                target.unlink(missing_ok=True)
            else:
                os.replace(tmp, target)
            done += 1
            if done in (artifact_step, artifact_step + 1, len(steps)):
                fsync_dir(p.parent)  # the order of the renames is what makes this safe
    except OSError as exc:
        _remove(temps[done:])
        which = "new" if done > artifact_step else "previous"
        raise RegistryError(
            f"{p}: cannot install the artifact ({exc.strerror or exc}); the {which} model "
            "is served and verifies"
        ) from exc


def _remove(temps: list[Path | None]) -> None:
    for tmp in temps:
        if tmp is not None:
            with contextlib.suppress(OSError):
                tmp.unlink()


# --- promote and roll back ----------------------------------------------------------------------


@dataclass(frozen=True)
class Promotion:
    """What a promote or rollback did: the run now served and the one it replaced."""

    run_id: str
    sha256: str
    out: Path
    previous_run_id: str | None
    changed: bool
    downgrade: bool = False  # created before the run it replaces: the reload must allow it


def _is_downgrade(records: list[dict[str, Any]], new: str, old: str | None) -> bool:
    """``new`` was created before ``old``: a running service refuses such a reload unless it
    is told ``allow_downgrade`` (an old artifact must not be replayable unnoticed)."""
    created = {r["run_id"]: str(r.get("created_at") or "") for r in records}
    return (
        old is not None and bool(created.get(new)) and created.get(new, "") < created.get(old, "")
    )


def _run_of_sha(records: list[dict[str, Any]], sha: str | None) -> str | None:
    if sha is None:
        return None
    for r in reversed(records):
        if r.get("artifact_sha256") == sha:
            return str(r["run_id"])
    return None


def promote(
    run_ref: str,
    runs_dir: str | Path = "runs",
    out: str | Path = "artifacts/model.joblib",
    signing_key: bytes | None = None,
    *,
    action: str = "promote",
) -> Promotion:
    """Verify run ``run_ref``'s stored artifact and make it the served one at ``out``."""
    runs = _existing(runs_dir)
    records = run_records(runs)
    record = find_run(records, run_ref, runs)
    run_id = record["run_id"]
    with locked(runs / "promote.lock"):
        stored = read_run_artifact(runs, run_id, signing_key)
        current = served_sha256(out)
        previous = _run_of_sha(records, current)
        if current == stored.sha256 and len(read_checksums(out)) == 1:
            return Promotion(run_id, stored.sha256, Path(out), previous, changed=False)
        install(stored, out)
        record_promotion(runs, run_id, stored.sha256, out, action)
    older = _is_downgrade(records, run_id, previous)
    return Promotion(run_id, stored.sha256, Path(out), previous, changed=True, downgrade=older)


def rollback_target(
    runs_dir: str | Path, out: str | Path, records: list[dict[str, Any]]
) -> tuple[str, str | None]:
    """``(run to serve, run served now)`` for a rollback of ``out``; RegistryError if none."""
    stack = served_stack(read_history(runs_dir, out))
    current = served_sha256(out)
    if current is not None and (not stack or stack[-1].get("sha256") != current):
        # The served copy changed without a record (a kill after the copy, a hand copy):
        # what it replaced is the last recorded promotion, so that is what rollback serves.
        stack.append({"run_id": _run_of_sha(records, current), "sha256": current})
    if len(stack) < 2:
        history = Path(runs_dir) / HISTORY
        raise RegistryError(
            f"nothing to roll back to: {history} records no earlier promotion to {out}"
        )
    target = stack[-2].get("run_id")
    if not target:
        raise RegistryError(
            f"cannot roll back: {Path(runs_dir) / HISTORY} has an entry with no run id"
        )
    return str(target), stack[-1].get("run_id")


def rollback(
    runs_dir: str | Path = "runs",
    out: str | Path = "artifacts/model.joblib",
    signing_key: bytes | None = None,
) -> Promotion:
    """Serve the run that was served before the current one (the history is a stack)."""
    runs = _existing(runs_dir)
    records = run_records(runs)
    with locked(runs / "promote.lock"):
        target, previous = rollback_target(runs, out, records)
        stored = read_run_artifact(runs, target, signing_key)
        install(stored, out)
        record_promotion(runs, target, stored.sha256, out, "rollback")
    older = _is_downgrade(records, target, previous)
    return Promotion(target, stored.sha256, Path(out), previous, changed=True, downgrade=older)


# --- gc ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Collected:
    """A run whose stored artifact ``gc`` removed (or would remove), and the bytes freed."""

    run_id: str
    nbytes: int


def gc(
    runs_dir: str | Path, keep: int, out: str | Path, *, dry_run: bool = False
) -> list[Collected]:
    """Remove the stored artifacts of old runs never promoted; keep every run's record.

    Kept: the ``keep`` newest runs, the run served at ``out``, the run ``rollback`` would
    serve, and every run ever promoted or rolled back to (``promotions.jsonl``, any ``--out``).
    A run that was only served by its own training and has since been replaced counts as
    unpromoted. Index lines, configs, metrics, plots and model cards stay.
    """
    if keep < 0:
        raise RegistryError(f"--keep must be >= 0, got {keep}")
    runs = _existing(runs_dir)
    records = run_records(runs)
    with locked(runs / "promote.lock"):
        protected = {r["run_id"] for r in records[len(records) - keep :]} if keep else set()
        protected.update(
            str(e.get("run_id"))
            for e in read_history(runs)
            if e.get("action") in ("promote", "rollback")
        )
        served = _run_of_sha(records, served_sha256(out))
        if served:
            protected.add(served)
        with contextlib.suppress(RegistryError):
            protected.add(rollback_target(runs, out, records)[0])
        removed = []
        for r in records:
            if r["run_id"] in protected or r["artifact"] is None:
                continue
            path = Path(r["artifact"])
            files = [path, *(v for k, v in sidecar_paths(path).items() if k != "json")]
            nbytes = sum(f.stat().st_size for f in files if f.exists())
            if not dry_run:
                # The checksum first: a half-removed artifact is then refused, never served.
                for f in [files[1], files[0], files[2]]:
                    f.unlink(missing_ok=True)
            removed.append(Collected(r["run_id"], nbytes))
    return removed


# --- diff ----------------------------------------------------------------------------------------


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """``{"model": {"grid": {"alpha": [1]}}}`` -> ``{"model.grid.alpha": [1]}``; the
    ``features`` list is keyed by feature name so reordering is no change."""
    out: dict[str, Any] = {}
    if isinstance(value, dict):
        for k, v in value.items():
            key = f"{prefix}.{k}" if prefix else str(k)
            if key == "features" and isinstance(v, list):
                for i, f in enumerate(v):
                    fname = f.get("name", i) if isinstance(f, dict) else i
                    out.update(_flatten(f, f"features.{fname}"))
            else:
                out.update(_flatten(v, key))
    else:
        out[prefix] = value
    return out


def _config_of(runs_dir: Path, run_id: str) -> dict[str, Any] | None:
    try:
        return tomllib.loads((runs_dir / run_id / "config.toml").read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return None


def _summary_of(runs_dir: Path, run_id: str) -> dict[str, Any]:
    try:
        doc = json.loads((runs_dir / run_id / "metrics.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def _show(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    return json.dumps(v) if not isinstance(v, str) else repr(v)


def _metric_rows(a: dict[str, Any], b: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    rows = []
    for m in sorted(set(a.get("cv", {})) | set(b.get("cv", {}))):
        rows.append(
            (
                f"cv {m}",
                a.get("cv", {}).get(m, {}).get("mean"),
                b.get("cv", {}).get(m, {}).get("mean"),
            )
        )
        rows.append(
            (
                f"cv {m} sd",
                a.get("cv", {}).get(m, {}).get("std"),
                b.get("cv", {}).get(m, {}).get("std"),
            )
        )
    for m in sorted(set(a.get("test", {})) | set(b.get("test", {}))):
        rows.append((f"test {m}", a.get("test", {}).get(m), b.get("test", {}).get(m)))
    return rows


def diff_runs(runs_dir: str | Path, ref_a: str, ref_b: str) -> list[str]:
    """What changed from run A to run B: config keys, features, data, model, metrics."""
    runs = _existing(runs_dir)
    records = run_records(runs)
    ra, rb = find_run(records, ref_a, runs), find_run(records, ref_b, runs)
    a_id, b_id = ra["run_id"], rb["run_id"]
    lines = [f"--- {a_id}", f"+++ {b_id}"]

    ca, cb = _config_of(runs, a_id), _config_of(runs, b_id)
    lines.append("config:")
    if ca is None or cb is None:
        missing = a_id if ca is None else b_id
        lines.append(f"  (run {missing} has no config.toml)")
    else:
        fa, fb = _flatten(ca), _flatten(cb)
        changed = [k for k in sorted(set(fa) | set(fb)) if fa.get(k, ...) != fb.get(k, ...)]
        for k in changed:
            if k not in fb:
                lines.append(f"  - {k} = {_show(fa[k])}")
            elif k not in fa:
                lines.append(f"  + {k} = {_show(fb[k])}")
            else:
                lines.append(f"  ~ {k}: {_show(fa[k])} -> {_show(fb[k])}")
        if not changed:
            lines.append("  (no change)")

    sa, sb = _summary_of(runs, a_id), _summary_of(runs, b_id)
    feats_a = {f["name"]: f for f in sa.get("features", []) if isinstance(f, dict)}
    feats_b = {f["name"]: f for f in sb.get("features", []) if isinstance(f, dict)}
    lines.append(f"features: {len(feats_a)} -> {len(feats_b)}")
    for n in sorted(set(feats_a) - set(feats_b)):
        lines.append(f"  - {n} ({feats_a[n].get('kind')})")
    for n in sorted(set(feats_b) - set(feats_a)):
        lines.append(f"  + {n} ({feats_b[n].get('kind')})")
    for n in sorted(set(feats_a) & set(feats_b)):
        if feats_a[n].get("kind") != feats_b[n].get("kind"):
            lines.append(f"  ~ {n}: {feats_a[n].get('kind')} -> {feats_b[n].get('kind')}")

    lines.append("data and model:")
    facts = [
        ("data", ra["data"], rb["data"]),
        ("data sha256", ra["data_sha256"], rb["data_sha256"]),
        ("rows", ra["rows"], rb["rows"]),
        ("estimator", ra["estimator"], rb["estimator"]),
        ("params", ra["params"], rb["params"]),
    ]
    same = True
    for label, va, vb in facts:
        if va != vb:
            same = False
            lines.append(f"  ~ {label}: {_show(va)} -> {_show(vb)}")
    if same:
        lines.append("  (no change)")

    lines.append("metrics:")
    rows = _metric_rows(ra, rb)
    width = max((len(r[0]) for r in rows), default=0)
    for label, va, vb in rows:
        if isinstance(va, int | float) and isinstance(vb, int | float):
            delta = vb - va
            pct = f" ({delta / va:+.1%})" if va and math.isfinite(va) else ""
            lines.append(f"  {label.ljust(width)}  {va:.6g} -> {vb:.6g}  {delta:+.4g}{pct}")
        else:
            lines.append(f"  {label.ljust(width)}  {_show(va)} -> {_show(vb)}")
    return lines


__all__ = [
    "HISTORY",
    "RUN_ARTIFACT",
    "Collected",
    "Promotion",
    "RegistryError",
    "StoredArtifact",
    "diff_runs",
    "find_run",
    "gc",
    "install",
    "promote",
    "read_history",
    "read_run_artifact",
    "record_promotion",
    "rollback",
    "served_sha256",
]
