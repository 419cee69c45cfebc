"""Soak: hold half the sustainable rate for minutes and watch for slow leaks.

One uvicorn worker serves ``POST /predict`` (one house) at a paced rate: ``wrk`` with a
per-request delay, its connection count corrected after every segment so the achieved rate
tracks the target (wrk itself is closed-loop). After each segment the script samples the
server process from outside: resident memory (``VmRSS``), open file descriptors, threads,
and the drift window's sample count from ``/metrics``. A leak shows as growth *after the
warm-up* (allocator arenas, caches and the drift window fill up first), so growth is measured
from the first sample after the warm-up to the end, and as the max over that stretch.

The drift monitor's own memory is then measured directly, in this process, with
``tracemalloc``: a ``DriftMonitor`` built from the same artifact is fed as many single-row
updates as the soak served (capped), with a read every 1,000 rows as a scrape would do;
its traced memory must be flat once the window is full (the window is bounded).

Targets (issue 7): zero errors, RSS growth < 5 % after warm-up, no fd growth, flat drift
memory. Prints the figures; asserts nothing. Run:
``.venv/bin/python benchmarks/soak.py [--seconds 600] [--rate R]`` (without ``--rate``, a
short load sweep finds the sustainable rate first and the soak runs at half of it).
"""

from __future__ import annotations

import argparse
import math
import re
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from load import (  # benchmarks/ is not a package: load.py is found beside this file
    P99_BUDGET_MS,
    Server,
    served_model,
    write_body,
)
from machine import describe
from wrk import run_wrk

DELAY_MS = 50  # per request and connection: the pacing; connections set the rate
MAX_CONNECTIONS = 256
_WINDOW_SAMPLES = re.compile(r"^houseprice_drift_window_samples\{[^}]*\} (\S+)$", re.M)


@dataclass
class Sample:
    t: float
    requests: int
    errors: int
    rate: float
    p99_ms: float
    connections: int
    rss_kb: int
    fds: int
    threads: int
    window: float


def proc_status(pid: int) -> tuple[int, int]:
    rss = threads = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1])
        elif line.startswith("Threads:"):
            threads = int(line.split()[1])
    return rss, threads


def fd_count(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/fd").iterdir()))


def idle_fds(pid: int, timeout: float = 3.0) -> int:
    """Open fds once wrk's connections are gone: polled until the count stops falling."""
    deadline = time.monotonic() + timeout
    last, steady = fd_count(pid), 0
    while steady < 5 and time.monotonic() < deadline:
        time.sleep(0.05)  # poll interval
        now = fd_count(pid)
        steady = steady + 1 if now >= last else 0
        last = min(last, now)
    return last


def window_samples(server: Server) -> float:
    text = httpx.get(server.url + "/metrics", timeout=10).text
    values = [float(v) for v in _WINDOW_SAMPLES.findall(text)]
    return max(values) if values else math.nan


def find_rate(url: str, body: Path) -> float:
    """The load sweep, short: the highest rate whose p99 is under budget with no error."""
    best = 0.0
    for c in (1, 2, 4, 8, 16):
        r = run_wrk(url, body, c, 4)
        print(f"  sweep: {c:>2} connections {r.rate:>7.0f} req/s p99 {r.p99_ms:.2f} ms")
        if r.p99_ms < P99_BUDGET_MS and r.errors == 0:
            best = max(best, r.rate)
    return best


def soak(server: Server, body: Path, rate: float, seconds: float, segment: float) -> list[Sample]:
    url = server.url + "/predict"
    pid = server.proc.pid
    per_connection = 1000.0 / (DELAY_MS + 1.5)  # first guess: 1.5 ms per answer
    conns = max(1, round(rate / per_connection))
    samples: list[Sample] = []
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        left = seconds - (time.monotonic() - start)
        r = run_wrk(url, body, conns, min(segment, max(1.0, left)), delay_ms=DELAY_MS)
        rss, threads = proc_status(pid)
        s = Sample(
            t=time.monotonic() - start,
            requests=r.requests,
            errors=r.errors,
            rate=r.rate,
            p99_ms=r.p99_ms,
            connections=conns,
            rss_kb=rss,
            fds=idle_fds(pid),
            threads=threads,
            window=window_samples(server),
        )
        samples.append(s)
        print(
            f"  {s.t:>6.0f} s  {s.rate:>6.0f} req/s  p99 {s.p99_ms:>6.2f} ms  "
            f"errors {s.errors}  rss {s.rss_kb / 1024:.1f} MB  fds {s.fds}  "
            f"threads {s.threads}  drift window {s.window:.0f}  ({conns} conns)",
            flush=True,
        )
        if r.rate > 0:  # proportional correction toward the target rate
            conns = min(MAX_CONNECTIONS, max(1, round(conns * rate / r.rate)))
    return samples


def monitor_memory(
    model_path: str, house: dict[str, Any], updates: int
) -> list[tuple[int, int, int]]:
    """Traced bytes held by a DriftMonitor after ``k`` single-row updates, and the peak
    since the previous checkpoint (the queue of unread rows fills between scrapes)."""
    from app.monitor import DriftMonitor
    from app.settings import Settings
    from model.workflow.artifact import load_artifact

    art = load_artifact(model_path)
    st = Settings()
    kinds = {f["name"]: f["kind"] for f in art.metadata["features"]}
    y = np.asarray(art.pipeline.predict(_row(house, kinds)), dtype=np.float64)
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    monitor = DriftMonitor(
        art.metadata["reference"],
        str(art.metadata["model_version"]),
        window=st.drift_window,
        min_samples=st.drift_min_samples,
        threshold=st.drift_psi_threshold,
    )
    # Checkpoints on multiples of 1,000 rows, so every interval holds a scrape (the peak
    # includes a read's bucketing) and the first one is the first full window.
    marks = sorted({1_000, *(max(1, int(updates * f) // 1000) * 1000 for f in (0.1, 0.5, 1.0))})
    out: list[tuple[int, int, int]] = []
    tracemalloc.reset_peak()
    for k in range(1, marks[-1] + 1):
        # a fresh table of one row, as each one-house request makes (Service.price)
        monitor.update({name: (house.get(name),) for name in kinds}, [float(y[0])])
        if k % 1000 == 0:
            monitor.gauges()  # a scrape
        if k in marks:
            current, peak = tracemalloc.get_traced_memory()
            out.append((k, current - base, peak - base))
            tracemalloc.reset_peak()
    tracemalloc.stop()
    return out


def _row(house: dict[str, Any], kinds: dict[str, str]) -> dict[str, np.ndarray]:
    cols: dict[str, np.ndarray] = {}
    for name, kind in kinds.items():
        v = house.get(name)
        if kind == "numeric":
            cols[name] = np.array([math.nan if v is None else float(v)])
        else:
            col = np.empty(1, dtype=object)
            col[0] = v
            cols[name] = col
    return cols


def report(samples: list[Sample], warmup: float, rate: float) -> None:
    after = [s for s in samples if s.t >= warmup] or samples[-1:]
    first = after[0]
    total = sum(s.requests for s in samples)
    errors = sum(s.errors for s in samples)
    seconds = samples[-1].t
    growth_end = (after[-1].rss_kb - first.rss_kb) / first.rss_kb * 100
    growth_max = (max(s.rss_kb for s in after) - first.rss_kb) / first.rss_kb * 100
    print(f"\nsoak: {seconds:.0f} s at a target of {rate:.0f} req/s (warm-up {warmup:.0f} s)")
    print(f"{'figure':<42} {'value':>14}  target")

    def span(values: list[float] | list[int]) -> str:
        return f"{min(values):.0f}..{max(values):.0f}"

    rows = [
        ("requests served", f"{total:,}", ""),
        ("achieved rate (mean) [req/s]", f"{total / max(seconds, 1e-9):.0f}", f"{rate:.0f}"),
        ("errors (socket, timeout, non-2xx)", f"{errors}", "0"),
        ("p99 of the worst segment [ms]", f"{max(s.p99_ms for s in samples):.2f}", ""),
        ("RSS after warm-up [MB]", f"{first.rss_kb / 1024:.1f}", ""),
        ("RSS at the end [MB]", f"{after[-1].rss_kb / 1024:.1f}", ""),
        ("RSS growth after warm-up, end [%]", f"{growth_end:+.2f}", "< 5"),
        ("RSS growth after warm-up, max [%]", f"{growth_max:+.2f}", "< 5"),
        ("open fds when idle, after warm-up", span([s.fds for s in after]), "flat"),
        ("threads after warm-up", span([s.threads for s in after]), "flat"),
        ("drift window samples", span([s.window for s in after]), "= DRIFT_WINDOW"),
    ]
    for name, value, target in rows:
        print(f"{name:<42} {value:>14}  {target}")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="artifact to serve (default: train the default model)")
    ap.add_argument("--seconds", type=float, default=600.0, help="soak length (600)")
    ap.add_argument("--rate", type=float, help="target req/s (default: half the sweep's)")
    ap.add_argument("--segment", type=float, default=15.0, help="seconds between samples (15)")
    ap.add_argument("--warmup", type=float, help="seconds ignored for growth (10%%, >= 30)")
    ap.add_argument("--monitor-updates", type=int, default=100_000, help="cap (100,000)")
    args = ap.parse_args(argv)
    warmup = args.warmup if args.warmup is not None else max(30.0, args.seconds / 10)

    print(f"machine: {describe('fastapi', 'uvicorn')}")
    with tempfile.TemporaryDirectory(prefix="houseprice-soak-") as tmp:
        work = Path(tmp)
        with served_model(args.model, work) as (server, house):
            body = write_body(work, house)
            rate = args.rate
            if rate is None:
                print("finding the sustainable rate (short sweep):")
                rate = find_rate(server.url + "/predict", body) / 2
                if rate <= 0:
                    raise SystemExit("no step of the sweep kept p99 under budget")
            print(f"soaking at {rate:.0f} req/s for {args.seconds:.0f} s:")
            samples = soak(server, body, rate, args.seconds, args.segment)
        served = sum(s.requests for s in samples)
        path = args.model or str(work / "model.joblib")  # what served_model loaded
        report(samples, warmup, rate)
        updates = max(2_000, min(served, args.monitor_updates))
        marks = monitor_memory(path, house, updates)
    print("\ndrift monitor memory (tracemalloc, in process, single-row updates):")
    print(f"{'updates':>10} {'now KB':>8} {'peak KB':>8}  (peak: since the previous line)")
    for k, now, peak in marks:
        print(f"{k:>10,} {now / 1024:>8.1f} {peak / 1024:>8.1f}")
    if len(marks) >= 2:
        grow = (marks[-1][2] - marks[0][2]) / 1024
        print(f"peak growth from the first full window to the end: {grow:+.1f} KB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
