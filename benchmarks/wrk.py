"""One ``wrk`` run against a URL, its figures parsed into a :class:`WrkResult`.

wrk's own summary is text meant for people; the Lua script below makes it print, at the end,
one ``WRK_JSON {...}`` line with the counts and the latency percentiles (microseconds), which
is parsed instead. It POSTs the file named by ``WRK_BODY`` as JSON and, when ``WRK_DELAY_MS``
is positive, waits that long (a mean, in milliseconds) before each request on a connection,
the first one included: wrk is closed-loop, so a delay and a connection count together pace
the rate (``benchmarks/soak.py``). With ``poisson`` each pause is drawn from an exponential
distribution of that mean, so the connections' requests do not go out together but as the
arrivals of independent clients would (``bench_service.py --shadow``'s paced comparison: a
fixed pause starts every connection at the same instant and keeps them bunched). wrk times a
request from its write, so the pause is not in the latencies.

Errors are everything that is not a 2xx answer: socket errors (connect, read, write),
timeouts, and answers with status >= 400 (``non_2xx``, counted apart too).

Used by ``load.py``, ``soak.py``, ``bench_service.py``, ``bench_monitoring.py`` and
``bench_traffic.py``:
``run_wrk(url, body_path, connections=4, seconds=10)``; ``wrk_process`` runs the same wrk in
the background while the caller measures the server, and with ``times_dir`` (a thread a
connection) also writes every request's start and latency, read by ``read_times``
(``bench_traffic.py --switched``); ``interleaved`` drives several servers
in turn, round after round, for ratios (``round_ratios``) that a shared machine's drifting
speed cannot fake.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import statistics
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict, Unpack

import httpx
import numpy as np
import numpy.typing as npt

LUA = r"""
local f = assert(io.open(os.getenv("WRK_BODY"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
local pause = tonumber(os.getenv("WRK_DELAY_MS") or "0")
local poisson = os.getenv("WRK_POISSON") == "1"
local threads = 0
setup = function(thread)
  threads = threads + 1
  thread:set("id", threads)
end
init = function(args)
  math.randomseed(os.time() * 1000 + id)  -- each thread its own draws
end
if pause > 0 then
  delay = function()
    local d = pause
    if poisson then d = -pause * math.log(1 - math.random()) end
    -- wrk's timers are whole milliseconds: the floor or the ceiling at random, in the
    -- proportion that keeps the mean
    local whole = math.floor(d)
    if math.random() < d - whole then return whole + 1 end
    return whole
  end
end
local times = os.getenv("WRK_TIMES_DIR") or ""
if times ~= "" then
  -- every request's start and latency (CLOCK_MONOTONIC, µs), a file per thread: wrk's own
  -- hooks name no connection, so each thread must hold one connection (threads = connections)
  -- and then its requests and answers alternate
  local ffi = require("ffi")
  ffi.cdef[[
    typedef struct { long tv_sec; long tv_nsec; } houseprice_timespec;
    int clock_gettime(int clock, houseprice_timespec *now);
  ]]
  local clock = ffi.new("houseprice_timespec")
  local function now_us()
    ffi.C.clock_gettime(1, clock)  -- CLOCK_MONOTONIC, Python's time.monotonic
    return tonumber(clock.tv_sec) * 1000000 + math.floor(tonumber(clock.tv_nsec) / 1000)
  end
  local out, raw, sent
  local start = init
  init = function(args)
    start(args)
    -- never closed: wrk's threads have no end hook, and its exit flushes the buffer
    out = assert(io.open(times .. "/" .. id .. ".txt", "w"))
    out:setvbuf("full", 1048576)
    raw = wrk.format()
  end
  request = function()
    sent = now_us()
    return raw
  end
  response = function(status, headers, body)
    out:write(string.format("%d %d %d\n", sent, now_us() - sent, status))
  end
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\nWRK_JSON {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%f}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    latency.mean))
  if os.getenv("WRK_HISTOGRAM") == "1" then
    -- every distinct latency (microseconds) and how many requests took it
    local pairs = {}
    for i = 1, #latency do
      local value, count = latency(i)
      pairs[#pairs + 1] = string.format("%d:%d", value, count)
    end
    io.write("WRK_HISTOGRAM " .. table.concat(pairs, " ") .. "\n")
  end
end
"""


@dataclass
class WrkResult:
    connections: int
    requests: int
    seconds: float
    errors: int
    non_2xx: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float
    #: with ``histogram=True``: every distinct latency (µs) and its count, in order
    latencies_us: tuple[tuple[int, int], ...] = ()

    @property
    def rate(self) -> float:
        """Requests per second, as wrk's ``Requests/sec`` (completed / elapsed)."""
        return self.requests / self.seconds


def parse(out: str, connections: int) -> WrkResult:
    """The figures of the ``WRK_JSON`` line in wrk's stdout."""
    line = next((x for x in out.splitlines() if x.startswith("WRK_JSON ")), None)
    if line is None:
        raise RuntimeError(f"no WRK_JSON line in wrk's output:\n{out}")
    d: dict[str, Any] = json.loads(line.removeprefix("WRK_JSON "))
    hist = next((x for x in out.splitlines() if x.startswith("WRK_HISTOGRAM")), "")
    pairs = (p.split(":") for p in hist.split()[1:])
    return WrkResult(
        connections=connections,
        requests=d["requests"],
        seconds=d["duration_us"] / 1e6,
        errors=d["connect"] + d["read"] + d["write"] + d["status"] + d["timeout"],
        non_2xx=d["status"],
        p50_ms=d["p50_us"] / 1e3,
        p90_ms=d["p90_us"] / 1e3,
        p99_ms=d["p99_us"] / 1e3,
        max_ms=d["max_us"] / 1e3,
        mean_ms=d["mean_us"] / 1e3,
        latencies_us=tuple((int(v), int(c)) for v, c in pairs),
    )


def pooled_percentile(results: list[WrkResult], p: float) -> float:
    """The ``p``-th latency percentile (ms) of all the requests of ``results`` together (run
    with ``histogram=True``), by wrk's own rule (:func:`percentile_of`). A p99 pooled over
    many short runs rests on all their slowest requests, where each run's own p99 rests on a
    few dozen."""
    arrays = [latency_arrays(r) for r in results]
    values = np.concatenate([v for v, _ in arrays])
    counts = np.concatenate([c for _, c in arrays])
    return percentile_of(values, counts, p) / 1e3


def latency_arrays(r: WrkResult) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """A run's distinct latencies (µs) and their counts, as arrays."""
    if not r.latencies_us:
        raise ValueError("a run without its latency histogram (run_wrk(histogram=True))")
    both = np.array(r.latencies_us, dtype=np.int64)
    return both[:, 0], both[:, 1]


def percentile_of(values: npt.NDArray[np.int64], counts: npt.NDArray[np.int64], p: float) -> int:
    """wrk's percentile of latencies ``values`` seen ``counts`` times (in any order, repeats
    allowed): the smallest value whose running count reaches rank ``round(p / 100 * total +
    0.5)``, by C's ``round`` (halves away from zero, not Python's to even)."""
    order = np.argsort(values, kind="stable")
    running = np.cumsum(counts[order])
    rank = math.floor(p / 100 * int(running[-1]) + 0.5 + 0.5)
    at = min(int(np.searchsorted(running, rank)), len(running) - 1)
    return int(values[order][at])


class WrkOptions(TypedDict, total=False):
    """:func:`wrk_process`'s keyword arguments, which :func:`run_wrk` passes on."""

    threads: int
    delay_ms: float
    poisson: bool
    timeout_s: int
    histogram: bool
    times_dir: Path | None


def run_wrk(
    url: str, body_path: Path, connections: int, seconds: float, **options: Unpack[WrkOptions]
) -> WrkResult:
    """POST ``body_path`` to ``url`` with ``wrk -t<threads> -c<connections> -d<seconds>s``;
    with ``histogram``, the result holds every request's latency too (``latencies_us``)."""
    with wrk_process(url, body_path, connections, seconds, **options) as proc:
        return finished(proc, connections)


@contextmanager
def wrk_process(
    url: str,
    body_path: Path,
    connections: int,
    seconds: float,
    *,
    threads: int = 1,
    delay_ms: float = 0,
    poisson: bool = False,
    timeout_s: int = 5,
    histogram: bool = False,
    times_dir: Path | None = None,
) -> Iterator[subprocess.Popen[str]]:
    """:func:`run_wrk`'s wrk started in the background, for a caller that measures the server
    while the load runs; :func:`finished` waits for it and parses its figures. Killed if the
    caller's block raises. With ``times_dir`` (one connection a thread) every request's start
    and latency are written there too (:func:`read_times`)."""
    if times_dir is not None and threads != connections:
        raise ValueError("timing every request needs one connection a thread")
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk is not installed (make tools)")
    env = {**os.environ, "WRK_BODY": str(body_path), "WRK_DELAY_MS": str(delay_ms)}
    env["WRK_POISSON"] = "1" if poisson else "0"
    env["WRK_HISTOGRAM"] = "1" if histogram else "0"
    env["WRK_TIMES_DIR"] = "" if times_dir is None else str(times_dir)
    with tempfile.TemporaryDirectory(prefix="houseprice-wrk-") as tmp:
        script = Path(tmp) / "post.lua"
        script.write_text(LUA)
        cmd = [
            wrk, f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s",
            f"--timeout={timeout_s}s", "-s", str(script), url,
        ]  # fmt: skip
        pipe = subprocess.PIPE
        with subprocess.Popen(cmd, stdout=pipe, stderr=pipe, text=True, env=env) as proc:
            try:
                yield proc
            except BaseException:
                proc.kill()
                raise


def finished(proc: subprocess.Popen[str], connections: int) -> WrkResult:
    """Wait for a :func:`wrk_process` and parse its figures; a failed wrk raises."""
    out, err = proc.communicate()
    if proc.returncode != 0:
        raise subprocess.CalledProcessError(proc.returncode, proc.args, out, err)
    return parse(out, connections)


def read_times(times_dir: Path) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """The requests a :func:`wrk_process` with ``times_dir`` wrote: when each started
    (``time.monotonic()`` in µs) and its latency (µs), in order of start; answers that are not
    2xx raise, as the timing of an error says nothing of the service's."""
    files = [f for f in sorted(times_dir.glob("*.txt")) if f.stat().st_size]  # a silent thread's
    rows = [np.loadtxt(f, dtype=np.int64, ndmin=2) for f in files]
    both = np.concatenate(rows or [np.empty((0, 3), np.int64)])
    bad = both[(both[:, 2] < 200) | (both[:, 2] >= 300)]
    if len(bad):
        raise RuntimeError(f"{len(bad)} answers were not 2xx (the first: {bad[0, 2]})")
    both = both[np.argsort(both[:, 0], kind="stable")]
    return both[:, 0], both[:, 1]


def interleaved(
    urls: Mapping[str, str | Sequence[str]],
    body_path: Path,
    rounds: int,
    seconds: float,
    connections: int,
    *,
    threads: int = 1,
    delay_ms: float = 0,
    poisson: bool = False,
    routes: Mapping[str, tuple[str, Path]] | None = None,
    before: Callable[[str, str], None] | None = None,
    after: Callable[[str, str], None] | None = None,
    histogram: bool = False,
) -> dict[str, list[WrkResult]]:
    """``rounds`` rounds of one wrk run per server, in the order of ``urls``: the runs of a
    round are seconds apart, so a burst of load from elsewhere hits the servers of a round
    alike. After each run one more POST of the body waits for that server's backlog: wrk hangs
    up with requests still being served, and their CPU would land on the next server's run
    (0.15-0.24 s of it for a scikit-learn route); then ``after(name, url)``, when given, waits
    for whatever else the server still does (a shadow model's backlog). wrk's errors are in the
    results; a failed draining request raises. Each run POSTs ``body_path`` to ``/predict``, or,
    for a name in ``routes``, its own ``(path, body_path)`` (another route of a server, as one
    more "server"). ``delay_ms`` (and ``poisson``) pace every connection (see the module
    docstring); ``histogram`` keeps every run's latencies (:func:`pooled_percentile`);
    ``before(name, url)`` runs just before each run. A server given several URLs (processes of
    the same code, which differ in speed over a whole run) is driven at one of them a
    round, in turn: round ``r`` drives the ``r % n``-th of its ``n``.
    """
    routes = routes or {}
    pools = {name: [u] if isinstance(u, str) else list(u) for name, u in urls.items()}
    runs: dict[str, list[WrkResult]] = {name: [] for name in urls}
    options = WrkOptions(threads=threads, delay_ms=delay_ms, poisson=poisson, histogram=histogram)
    for r in range(rounds):
        for name, pool in pools.items():
            url = pool[r % len(pool)]
            path, body = routes.get(name, ("/predict", body_path))
            if before is not None:
                before(name, url)
            runs[name].append(run_wrk(url + path, body, connections, seconds, **options))
            drain = httpx.post(url + path, content=body.read_bytes(), timeout=60,
                               headers={"Content-Type": "application/json"})  # fmt: skip
            drain.raise_for_status()
            if after is not None:
                after(name, url)
    return runs


def round_ratios(a: list[WrkResult], b: list[WrkResult]) -> list[float]:
    """req/s of ``a`` over ``b``, round by round; a round where ``b`` served nothing (a
    starved machine) has no ratio and is left out."""
    return [x.rate / y.rate for x, y in zip(a, b, strict=True) if y.rate > 0]


def spread(ratios: list[float]) -> tuple[float, float, float]:
    """Median and quartiles of per-round ratios."""
    q1, median, q3 = statistics.quantiles(ratios, n=4)  # the middle cut is the median
    return median, q1, q3


def median_interval(
    ratios: list[float], level: float = 0.95, resamples: int = 1000
) -> tuple[float, float]:
    """An interval for the median of ``ratios`` at ``level``: the percentiles of the medians of
    ``resamples`` resamplings, with replacement (seeded: a run prints the same interval)."""
    rng = np.random.default_rng(1)
    medians = np.median(rng.choice(np.asarray(ratios), (resamples, len(ratios))), axis=1)
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(medians, [tail, 100 - tail])
    return float(lo), float(hi)
