"""``houseprice report``: an offline drift and accuracy report over logged traffic.

Input: the service's prediction log (``PREDICTION_LOG``; its line format is Contract 3 of
docs/ARCHITECTURE.md, read here without the service's code), optionally observed prices
(a JSON-lines file of ``{"request_id", "index", "actual_price"}``, the body of
``POST /feedback``), and the artifact whose training reference the traffic is compared with.
Output, in ``--out``: ``report.md``, ``report.json`` and PNG figures:

- drift: the PSI of every feature and of the prediction per time window, against the
  artifact's reference profiles (:mod:`model.drift`, the maths the service uses live), for the
  lines the artifact's model version priced; a window with fewer than ``min_samples`` rows
  gets no score (sampling noise dominates a PSI of a handful of rows);
- input quality: missing values, values outside the training range, unseen categories;
- accuracy: for every logged house with an observed price, MAE, RMSE and mean error
  (observed - predicted) by model version and role (champion or shadow), and predicted
  against observed.

The log is read once, line by line, and kept as bucket counts per window (a chunk of lines at
a time goes through ``model.drift.bin_counts``): memory grows with windows x buckets and with
the houses that have feedback, not with the log. Every input error stops the report before
anything is written, with one message naming the file and line; every output file is written
atomically, ``report.md`` last.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from model import drift
from model.workflow.atomic import atomic_write_bytes, atomic_write_text

#: The ``event`` of a prediction line; other JSON lines in the stream are skipped.
EVENT = "prediction"
ROLES = ("champion", "shadow")
PREDICTION = "prediction"  # the row of the prediction's drift, after the features
_UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


class ReportError(ValueError):
    """An input the report cannot use; the message names the file and line."""


@dataclass(frozen=True)
class Line:
    """One logged house."""

    where: str  # "file:line"
    time: float  # Unix seconds
    request_id: str
    index: int
    model_version: str
    role: str
    inputs: dict[str, Any]
    price: float


def parse_window(text: str) -> int:
    """``"30m"``, ``"6h"``, ``"1d"``, ``"1w"`` -> seconds."""
    m = re.fullmatch(r"\s*(\d+)\s*([mhdw])\s*", text)
    if not m or int(m.group(1)) == 0:
        raise ReportError(f"--window: expected a duration such as 30m, 6h, 1d or 1w, got {text!r}")
    return int(m.group(1)) * _UNITS[m.group(2)]


def _fail(where: str, problem: str) -> ReportError:
    return ReportError(f"{where}: {problem}")


def _json_lines(path: Path) -> Iterable[tuple[str, Any]]:
    """``("file:line", value)`` of every non-blank line; a line that is not JSON raises."""
    try:
        with path.open("rb") as f:
            for n, raw in enumerate(f, 1):
                where = f"{path}:{n}"
                if not raw.strip():
                    continue
                try:
                    yield where, json.loads(raw)
                except (json.JSONDecodeError, UnicodeDecodeError) as e:
                    raise _fail(where, f"not a JSON line ({e})") from None
    except FileNotFoundError:
        raise ReportError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ReportError(f"{path}: is a directory, not a file") from None


def _number(where: str, key: str, value: Any, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _fail(where, f"{key!r} must be a finite number, got {value!r}")
    if positive and not value > 0:
        raise _fail(where, f"{key!r} must be > 0, got {value!r}")
    return float(value)


def _text(where: str, key: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise _fail(where, f"{key!r} must be a non-empty string, got {value!r}")
    return value


def _index(where: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _fail(where, f"'index' must be an integer >= 0, got {value!r}")
    return value


class LogReader:
    """The prediction lines of ``paths`` (rotated files in any order), one at a time; other
    JSON lines (service logs sharing the stream) are counted in ``skipped``."""

    def __init__(self, paths: Sequence[Path]) -> None:
        self.paths = paths
        self.skipped = 0

    def __iter__(self) -> Iterator[Line]:
        for path in self.paths:
            for where, obj in _json_lines(path):
                if not isinstance(obj, dict):
                    raise _fail(where, f"expected a JSON object, got {type(obj).__name__}")
                if obj.get("event") != EVENT:
                    self.skipped += 1
                    continue
                yield _line(where, obj)


def _line(where: str, obj: dict[str, Any]) -> Line:
    """One prediction line, checked."""
    missing = [
        k
        for k in ("time", "request_id", "model_version", "role", "inputs", "price")
        if k not in obj
    ]
    if missing:
        raise _fail(where, f"prediction line without {', '.join(map(repr, missing))}")
    stamp = _text(where, "time", obj["time"])
    try:
        when = datetime.fromisoformat(stamp)
    except ValueError:
        raise _fail(where, f"'time' is not an ISO 8601 time: {stamp!r}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    role = obj["role"]
    if role not in ROLES:
        raise _fail(where, f"'role' must be one of {list(ROLES)}, got {role!r}")
    if not isinstance(obj["inputs"], dict):
        raise _fail(where, f"'inputs' must be an object, got {obj['inputs']!r}")
    return Line(
        where=where,
        time=when.timestamp(),
        request_id=_text(where, "request_id", obj["request_id"]),
        index=_index(where, obj.get("index", 0)),
        model_version=_text(where, "model_version", obj["model_version"]),
        role=role,
        inputs=obj["inputs"],
        price=_number(where, "price", obj["price"]),
    )


def read_feedback(path: Path) -> dict[tuple[str, int], float]:
    """``(request_id, index) -> observed price``; a later line for the same house wins."""
    out: dict[tuple[str, int], float] = {}
    for where, obj in _json_lines(path):
        if not isinstance(obj, dict):
            raise _fail(where, f"expected a JSON object, got {type(obj).__name__}")
        if "request_id" not in obj:
            raise _fail(where, "feedback without 'request_id' (it joins the logged prediction)")
        if "actual_price" not in obj:
            raise _fail(where, "feedback without 'actual_price'")
        rid = _text(where, "request_id", obj["request_id"])
        key = (rid, _index(where, obj.get("index", 0)))
        out[key] = _number(where, "actual_price", obj["actual_price"], positive=True)
    return out


@dataclass
class Quality:
    """Input quality of one feature over the model's lines."""

    rows: int = 0
    missing: int = 0
    out_of_range: int = 0
    unknown: int = 0
    unknown_values: dict[str, int] = field(default_factory=dict)


@dataclass
class Accuracy:
    model_version: str
    role: str
    n: int
    mae: float
    rmse: float
    bias: float  # mean(observed - predicted)


@dataclass
class Report:
    model_version: str
    log_files: list[str]
    lines: int
    skipped: int
    model_lines: int
    versions: dict[str, int]  # "version (role)" -> lines
    window_seconds: int
    min_samples: int
    windows: list[tuple[float, int]]  # (start, rows) of every window with rows
    psi: dict[str, list[float | None]]  # feature (and "prediction") -> PSI per window
    psi_all: dict[str, float | None]  # over every model line
    quality: dict[str, Quality]
    accuracy: list[Accuracy]
    feedback_lines: int
    feedback_joined: int
    pairs: dict[str, tuple[list[float], list[float]]]  # "version (role)" -> (observed, pred)


def _check_inputs(line: Line, kinds: Mapping[str, str], version: str) -> None:
    names = list(kinds)
    lacking = [n for n in names if n not in line.inputs]
    if lacking:
        raise _fail(
            line.where,
            f"inputs lack feature(s) {lacking} of model version {version}: the log is not "
            "from this model's schema",
        )
    extra = sorted(set(line.inputs) - set(names))
    if extra:
        raise _fail(
            line.where,
            f"inputs have feature(s) {extra} that model version {version} "
            "does not take: the log is not from this model's schema",
        )
    for name, kind in kinds.items():
        v = line.inputs[name]
        if v is None:
            continue
        if kind == "categorical":
            ok = isinstance(v, str)
        else:
            ok = isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
        if not ok:
            raise _fail(line.where, f"input {name!r} of kind {kind} cannot be {v!r}")


class _Drift:
    """Bucket counts per time window and feature (and the prediction), accumulated over the
    lines in chunks: memory is windows x buckets, not the log."""

    CHUNK = 10_000

    def __init__(self, reference: Mapping[str, Any], names: Sequence[str], seconds: int) -> None:
        profiles = reference["features"]
        self.columns = [(n, profiles[n]) for n in names if n in profiles]
        self.columns.append((PREDICTION, reference["prediction"]))
        self.seconds = seconds
        self.counts: dict[float, dict[str, NDArray[np.int64]]] = {}
        self.rows: dict[float, int] = {}
        self._pending: list[Line] = []

    def add(self, line: Line) -> None:
        self._pending.append(line)
        if len(self._pending) >= self.CHUNK:
            self.flush()

    def flush(self) -> None:
        by_window: dict[float, list[Line]] = {}
        for line in self._pending:
            start = float(math.floor(line.time / self.seconds) * self.seconds)
            by_window.setdefault(start, []).append(line)
        self._pending = []
        for start, members in by_window.items():
            counts = self.counts.setdefault(start, {})
            self.rows[start] = self.rows.get(start, 0) + len(members)
            for name, profile in self.columns:
                values = (
                    [line.price for line in members]
                    if name == PREDICTION
                    else [line.inputs[name] for line in members]
                )
                kind = object if profile.get("kind") == "categorical" else np.float64
                got = drift.bin_counts(profile, np.array(values, dtype=kind)).astype(np.int64)
                counts[name] = counts[name] + got if name in counts else got

    def psi(
        self, min_samples: int
    ) -> tuple[list[float], dict[str, list[float | None]], dict[str, float | None]]:
        """Window starts, PSI per feature per window (None below ``min_samples`` rows), and
        PSI per feature over every window."""
        self.flush()
        starts = sorted(self.counts)
        per: dict[str, list[float | None]] = {}
        overall: dict[str, float | None] = {}
        for name, profile in self.columns:
            shares = profile["shares"]
            per[name] = [
                drift.psi(shares, self.counts[s][name]) if self.rows[s] >= min_samples else None
                for s in starts
            ]
            overall[name] = drift.psi(shares, sum(self.counts[s][name] for s in starts))
        return starts, per, overall


def _count_quality(
    quality: dict[str, Quality], specs: Sequence[Mapping[str, Any]], line: Line
) -> None:
    """Add one line's missing, out-of-range and unseen values to ``quality``."""
    for s in specs:
        name = str(s["name"])
        q = quality[name]
        q.rows += 1
        v = line.inputs[name]
        if v is None:
            q.missing += 1
        elif s.get("kind") == "categorical":
            if s["_categories"] and str(v) not in s["_categories"]:
                q.unknown += 1
                q.unknown_values[str(v)] = q.unknown_values.get(str(v), 0) + 1
        elif not s["_lo"] <= v <= s["_hi"]:
            q.out_of_range += 1


def build(
    lines: Iterable[Line],
    metadata: Mapping[str, Any],
    feedback: Mapping[tuple[str, int], float] | None,
    log_files: Sequence[str],
    window_seconds: int,
    min_samples: int,
) -> Report:
    """Every figure of the report, from the lines (read once, kept as counts) and the
    artifact's metadata."""
    version = str(metadata.get("model_version"))
    reference = metadata.get("reference")
    if not reference:
        raise ReportError(f"model version {version}: the artifact has no training reference")
    specs = [
        {
            **s,
            "_lo": float(s["min"]) if s.get("min") is not None else -math.inf,
            "_hi": float(s["max"]) if s.get("max") is not None else math.inf,
            "_categories": {str(c) for c in (s.get("categories") or ())},
        }
        for s in metadata.get("features") or []
    ]
    kinds = {str(s["name"]): str(s.get("kind")) for s in specs}
    counts = _Drift(reference, list(kinds), window_seconds)
    quality = {name: Quality() for name in kinds}
    versions: dict[str, int] = {}
    pairs: dict[str, tuple[list[float], list[float]]] = {}
    joined: set[tuple[str, int]] = set()
    total = mine = 0
    for line in lines:
        total += 1
        label = f"{line.model_version} ({line.role})"
        versions[label] = versions.get(label, 0) + 1
        if line.model_version == version:
            _check_inputs(line, kinds, version)
            mine += 1
            counts.add(line)
            _count_quality(quality, specs, line)
        key = (line.request_id, line.index)
        if feedback and key in feedback:
            joined.add(key)
            observed, predicted = pairs.setdefault(label, ([], []))
            observed.append(feedback[key])
            predicted.append(line.price)
    if not total:
        raise ReportError(f"{', '.join(log_files)}: no prediction line")
    if not mine:
        found = sorted({label.rsplit(" (", 1)[0] for label in versions})
        raise ReportError(
            f"{', '.join(log_files)}: no prediction by model version {version} (the log holds "
            f"{found}); give the artifact that served this traffic"
        )
    starts, psi, psi_all = counts.psi(min_samples)
    accuracy = []
    for label, (observed, predicted) in sorted(pairs.items()):
        e = np.array(observed) - np.array(predicted)
        v, _, role = label.rpartition(" (")
        accuracy.append(
            Accuracy(
                model_version=v,
                role=role.rstrip(")"),
                n=int(e.size),
                mae=float(np.mean(np.abs(e))),
                rmse=float(np.sqrt(np.mean(e * e))),
                bias=float(np.mean(e)),
            )
        )
    return Report(
        model_version=version,
        log_files=list(log_files),
        lines=total,
        skipped=0,
        model_lines=mine,
        versions=versions,
        window_seconds=window_seconds,
        min_samples=min_samples,
        windows=[(s, counts.rows[s]) for s in starts],
        psi=psi,
        psi_all=psi_all,
        quality=quality,
        accuracy=accuracy,
        feedback_lines=len(feedback or {}),
        feedback_joined=len(joined),
        pairs=pairs,
    )


def _duration(seconds: int) -> str:
    for unit, size in sorted(_UNITS.items(), key=lambda kv: -kv[1]):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _when(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M")


def _cell(v: float | None) -> str:
    if v is None:
        return "—"
    mark = " ⚠" if v > drift.PSI_SIGNIFICANT else ""
    return f"{v:.3f}{mark}"


def markdown(r: Report, figures: Sequence[str]) -> str:
    """The report as Markdown."""
    out = [
        f"# Traffic report: model version {r.model_version}",
        "",
        f"Log: {', '.join(f'`{f}`' for f in r.log_files)}: {r.lines:,} prediction lines"
        + (f" ({r.skipped:,} other lines skipped)" if r.skipped else "")
        + f"; {r.model_lines:,} priced by model version {r.model_version}.",
        "",
        "| model version (role) | lines |",
        "| --- | ---: |",
        *(f"| {k} | {n:,} |" for k, n in sorted(r.versions.items())),
        "",
        "## Drift (PSI against the training reference)",
        "",
        f"Windows of {_duration(r.window_seconds)} (UTC); a window with fewer than "
        f"{r.min_samples} rows gets no score (—). PSI < {drift.PSI_STABLE} stable, "
        f"up to {drift.PSI_SIGNIFICANT} moderate, above significant (⚠).",
        "",
    ]
    head = ["feature", "all", *(f"{_when(s)} ({n:,})" for s, n in r.windows)]
    out += ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for name, scores in r.psi.items():
        out.append("| " + " | ".join([name, _cell(r.psi_all[name]), *map(_cell, scores)]) + " |")
    if "drift.png" in figures:
        out += ["", "![PSI per feature and window](drift.png)"]
    out += [
        "",
        "## Input quality",
        "",
        "| feature | missing | out of training range | unseen category |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name, q in r.quality.items():
        unseen = f"{q.unknown:,}"
        if q.unknown_values:
            top = sorted(q.unknown_values.items(), key=lambda kv: -kv[1])[:3]
            unseen += " (" + ", ".join(f"`{v}` {n}" for v, n in top) + ")"
        out.append(
            f"| {name} | {_share(q.missing, q.rows)} | {_share(q.out_of_range, q.rows)} | "
            f"{unseen} |"
        )
    out += ["", "## Accuracy (observed prices)", ""]
    if not r.feedback_lines:
        out.append("No feedback file given (`--feedback`).")
    elif not r.accuracy:
        out.append(f"{r.feedback_lines:,} observed prices, none of them for a logged house.")
    else:
        out += [
            f"{r.feedback_joined:,} of {r.feedback_lines:,} observed prices match a logged house "
            "(by request id and index). Error = observed - predicted.",
            "",
            "| model version | role | houses | MAE | RMSE | mean error |",
            "| --- | --- | ---: | ---: | ---: | ---: |",
            *(
                f"| {a.model_version} | {a.role} | {a.n:,} | {a.mae:,.0f} | {a.rmse:,.0f} | "
                f"{a.bias:+,.0f} |"
                for a in r.accuracy
            ),
        ]
        if "predicted_vs_observed.png" in figures:
            out += ["", "![Predicted against observed](predicted_vs_observed.png)"]
    return "\n".join(out) + "\n"


def _share(n: int, rows: int) -> str:
    return f"{n:,} ({100 * n / rows:.1f} %)" if n else "0"


def as_json(r: Report) -> dict[str, Any]:
    """The report's figures as JSON."""
    return {
        "model_version": r.model_version,
        "log_files": r.log_files,
        "lines": r.lines,
        "skipped": r.skipped,
        "model_lines": r.model_lines,
        "versions": r.versions,
        "window_seconds": r.window_seconds,
        "min_samples": r.min_samples,
        "windows": [
            {"start": datetime.fromtimestamp(s, UTC).isoformat(), "rows": n} for s, n in r.windows
        ],
        "psi": r.psi,
        "psi_all": r.psi_all,
        "quality": {
            k: {
                "rows": q.rows,
                "missing": q.missing,
                "out_of_range": q.out_of_range,
                "unknown": q.unknown,
                "unknown_values": q.unknown_values,
            }
            for k, q in r.quality.items()
        },
        "accuracy": [vars(a) for a in r.accuracy],
        "feedback_lines": r.feedback_lines,
        "feedback_joined": r.feedback_joined,
    }


def write_report(
    log_paths: Sequence[Path],
    metadata: Mapping[str, Any],
    out: Path,
    feedback_path: Path | None = None,
    window: str = "1d",
    min_samples: int = 200,
) -> list[Path]:
    """Read, compute, render, then write ``report.md``, ``report.json`` and the figures into
    ``out``; nothing is written when an input is refused. Returns the paths written."""
    from model.workflow import plots

    seconds = parse_window(window)
    feedback = read_feedback(feedback_path) if feedback_path is not None else None
    reader = LogReader(log_paths)
    r = build(reader, metadata, feedback, [str(p) for p in log_paths], seconds, min_samples)
    r.skipped = reader.skipped
    files: dict[str, bytes] = {}
    if plots.available():
        labels = [_when(s) for s, _ in r.windows]
        files["drift.png"] = plots.psi_heatmap(r.psi, labels, drift.PSI_SIGNIFICANT)
        if r.pairs:
            files["predicted_vs_observed.png"] = plots.predicted_vs_observed(r.pairs)
    files["report.md"] = markdown(r, list(files)).encode()
    files["report.json"] = (json.dumps(as_json(r), indent=2, allow_nan=False) + "\n").encode()
    written = []
    for name in sorted(files, key=lambda n: n.endswith(".md")):  # the Markdown last
        p = out / name
        if name.endswith(".md"):
            atomic_write_text(p, files[name].decode())
        else:
            atomic_write_bytes(p, files[name])
        written.append(p)
    return written
