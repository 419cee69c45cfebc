"""What the prediction log and the shadow model cost the served answer, measured in one run.

Four ``python -m app`` servers (one uvicorn worker each, 127.0.0.1) serve the same artifact:

(a) plain:  ``PREDICTION_LOG=off``, no shadow (the defaults);
(b) shadow: ``SHADOW_MODEL_PATH`` = a second artifact (the same config trained again, so the
            shadow costs what the champion costs);
(c) log:    ``PREDICTION_LOG`` = a file in a temporary folder;
(d) both.

``wrk -t1 -c<C> -d1s --latency`` POSTs one house to each in turn, round after round (a
burst of load from elsewhere hits the servers of a round alike), at two loads: ``-c1`` (one
request at a time: the latency a request sees, the shadow working between requests) and
``-c16`` (saturation: the CPU the shadow and the log take away). After each run the bench
waits until that server's shadow has priced or dropped every house (``/metrics``) and its
backlog is served, so no server's leftover work lands on the next one's run. Figures are
medians over the rounds of p50, p99 and req/s, and of the per-round ratios against (a).

With ``--toggled PAIRS`` it measures the shadow alone, inside one process instead: two
servers (``toggled_serve.py`` with ``TOGGLE=shadow``: a signal switches whether the served
answers are handed to the shadow, whose worker stays) each serve ``PAIRS`` pairs of 2-s runs
of ``wrk -t2 -c64`` paced at half their capacity with Poisson pauses (``bench_service.py
--shadow``'s paced load), one with the shadow and one without, in a random order, servers in
turn; after each run with the shadow the bench waits for its backlog. Per process: the median
p50 and p99 each way, the median of the pairs' p99 ratios (quartiles, 95 % interval from
resampling the pairs) and the p99 of all requests pooled (90 % interval). Two processes of the
same code differ over a run as much as the shadow's effect, so each is its own reference here.

With ``--switched SECONDS`` (issue 15's figure, which ``bench_service.py --shadow`` runs too)
the switch is finer still: each of two such servers, twice in turn, serves one continuous
``wrk -t16 -c16`` load of ``SECONDS`` paced at half its capacity (Poisson pauses), and the
shadow is switched every second, in pairs of stretches in a random order. wrk's Lua times
every request on ``time.monotonic``'s clock (a thread a connection, so its requests and
answers alternate: :func:`wrk.read_times`), and each request counts under the state of the
stretch it was sent in, unless sent within ``GUARD_S`` of the switch (the shadow still prices
what it was handed, the switch lands a moment after the signal). Per server and for all: the
p50 and p99 of all the requests sent with the shadow on over those sent with it off, with a
95 % interval from resampling the pairs of stretches. The machine's slow phases last seconds
and fall on both sides of a pair, where they moved ``--toggled``'s 2-s runs apart by more than
the shadow's effect (docs/PERFORMANCE.md, "Stop 32"). Each run's whole p99 by wrk and by the
Lua timings is printed as a check.

Prints a table and the machine; asserts nothing. Run: ``.venv/bin/python
benchmarks/bench_traffic.py [--rounds 15] [--seconds 1] [--toggled 40] [--switched 60]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import numpy as np
import numpy.typing as npt

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench_service import uvicorn_server  # noqa: E402 (benchmarks/, beside this file)
from machine import describe  # noqa: E402
from wrk import (  # noqa: E402
    WrkResult,
    finished,
    median_interval,
    read_times,
    round_ratios,
    run_wrk,
    spread,
    wrk_process,
)

CONFIG = ROOT / "configs" / "ames.toml"
#: seconds after a switch of the shadow whose requests ``--switched`` leaves out
GUARD_S = 0.3


def sample(text: str, name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels``."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name):
            continue
        head, _, value = line.rpartition(" ")
        if all(f'{k}="{v}"' in head for k, v in labels.items()):
            total += float(value)
    return total


def priced(url: str) -> tuple[float, float] | None:
    """The houses the server's champion priced, and those its shadow priced or dropped; None
    without a shadow."""
    text = httpx.get(url + "/metrics", timeout=30).text
    if "houseprice_shadow_model_info{" not in text:
        return None
    shadow = sample(text, "houseprice_predictions_total", role="shadow")
    dropped = sample(text, "houseprice_shadow_dropped_total")
    return sample(text, "houseprice_predictions_total", role="champion"), shadow + dropped


def settle(url: str, timeout: float = 60.0, since: tuple[float, float] = (0.0, 0.0)) -> None:
    """Wait until the server's shadow has priced or dropped every house the champion priced
    (since :func:`priced` gave ``since``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = priced(url)
        if now is None or now[1] - since[1] >= now[0] - since[0]:
            return
        time.sleep(0.02)  # poll interval
    raise SystemExit(f"{url}: the shadow did not catch up within {timeout} s")


def quiet(url: str, timeout: float = 60.0) -> None:
    """Wait until the server's shadow has priced or dropped nothing more for twice its hand-off
    period: what was handed to a shadow since switched off is done (:func:`settle` cannot
    tell, as the champion has priced houses the shadow was never handed)."""
    from app.shadow import Shadow

    deadline = time.monotonic() + timeout
    last = priced(url)
    while time.monotonic() < deadline:
        time.sleep(2 * Shadow.PERIOD)  # its hand-off period, not a wait for readiness
        now = priced(url)
        if now == last:
            return
        last = now
    raise SystemExit(f"{url}: the shadow did not go quiet within {timeout} s")


@contextmanager
def switchable(
    champion: str, shadow: str, body: Path, logs: Path, connections: int, threads: int
) -> Iterator[tuple[list[tuple[int, str]], float, float]]:
    """Two ``toggled_serve.py`` servers whose shadow a signal switches (``TOGGLE=shadow``),
    warmed up, their logs ``logs-K.log``; with them the first one's capacity (wrk -t2 -c16)
    and the pause that paces ``connections`` on ``threads`` wrk threads at half of it."""
    from bench_http import server
    from bench_service import pace_delay

    cmd = [sys.executable, str(ROOT / "benchmarks" / "toggled_serve.py")]
    env = {"MODEL_PATH": champion, "SHADOW_MODEL_PATH": shadow, "TOGGLE": "shadow"}
    with ExitStack() as stack:
        servers = [
            stack.enter_context(server(cmd, ROOT, env, Path(f"{logs}-{k}.log"), body.read_bytes()))
            for k in range(2)
        ]
        for _, url in servers:
            run_wrk(url + "/predict", body, 16, 2, threads=2)  # warm-up
            settle(url)
        capacity = run_wrk(servers[0][1] + "/predict", body, 16, 3, threads=2).rate
        yield servers, capacity, pace_delay(servers[0][1], body, connections, capacity / 2, threads)


def toggled(champion: str, shadow: str, body: Path, work: Path, pairs: int) -> None:
    """The shadow switched on and off in one process, paced (the module docstring)."""
    import os
    import random
    import signal

    from bench_service import p99_ratios, pooled_p99_ratio

    rng = random.Random(0)
    runs: dict[tuple[int, bool], list[WrkResult]] = {}
    with switchable(champion, shadow, body, work / "toggled", 64, 2) as (servers, capacity, pause):
        print(
            f"\nthe shadow switched in one process: 2 servers, {pairs} pairs of 2-s runs each, "
            f"wrk -t2 -c64 paced at half of {capacity:.0f} req/s (Poisson pauses of {pause:.2f} ms)"
        )
        for _ in range(pairs):
            for k in rng.sample(range(2), 2):
                pid, url = servers[k]
                for on in rng.sample([True, False], 2):
                    os.kill(pid, signal.SIGUSR2 if on else signal.SIGUSR1)
                    before = priced(url)  # (on a request: the switch has landed)
                    result = run_wrk(url + "/predict", body, 64, 2, threads=2, delay_ms=pause,
                                     poisson=True, histogram=True)  # fmt: skip
                    if result.errors:
                        raise SystemExit(f"wrk saw {result.errors} failed requests")
                    if on and before is not None:
                        settle(url, since=before)  # what was handed to the shadow is done
                    runs.setdefault((k, on), []).append(result)
    print(f"{'server':<8}{'p50 ms':>14}{'p99 ms':>14}{'p99 ratio':>11}{'(IQR)':>12}"
          f"{'(95 % CI)':>14}{'pooled':>8}{'(90 % CI)':>14}")  # fmt: skip
    for k in range(2):
        shadowed, plain = runs[k, True], runs[k, False]
        ratio, q1, q3 = spread(p99_ratios(shadowed, plain))
        lo, hi = median_interval(p99_ratios(shadowed, plain))
        pooled, p_lo, p_hi = pooled_p99_ratio(shadowed, plain)
        sides = (shadowed, plain)
        p50, p99 = (
            "/".join(f"{statistics.median(getattr(r, q) for r in side):.2f}" for side in sides)
            for q in ("p50_ms", "p99_ms")
        )
        print(
            f"{k + 1:<8}{p50:>14}{p99:>14}{ratio:>11.3f}{f'{q1:.2f}-{q3:.2f}':>12}"
            f"{f'{lo:.3f}-{hi:.3f}':>14}{pooled:>8.3f}{f'{p_lo:.3f}-{p_hi:.3f}':>14}"
        )
    print("p50, p99: with the shadow / without; ratios: with over without")


class Stretches:
    """Requests timed one by one (:func:`wrk.read_times`) while the shadow was switched on and
    off, a stretch at a time, in pairs: each request is counted under the state of the stretch
    it started in, unless it started within ``guard`` µs of the switch (what the shadow had
    queued is still being priced then, and the switch lands a moment after the signal)."""

    def __init__(self, guard_us: float) -> None:
        self.guard_us = guard_us
        self.pairs: list[tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]] = []  # (on, off)

    def add(
        self,
        switches: list[tuple[float, bool]],
        end_us: float,
        sent: npt.NDArray[np.int64],
        latency: npt.NDArray[np.int64],
    ) -> None:
        """One wrk run's requests (:func:`wrk.read_times`); ``switches`` are (µs, on), in
        pairs, the last stretch ending at ``end_us``."""
        starts = np.array([t for t, _ in switches] + [end_us])
        stretch = np.searchsorted(starts, sent, side="right") - 1
        inside = (stretch >= 0) & (stretch < len(switches))
        settled = sent - starts[np.clip(stretch, 0, len(switches))] >= self.guard_us
        kept = [latency[inside & settled & (stretch == j)] for j in range(len(switches))]
        for j in range(0, len(switches) - 1, 2):
            first, second = kept[j], kept[j + 1]
            self.pairs.append((first, second) if switches[j][1] else (second, first))

    def sides(
        self, rows: Sequence[int] | None = None
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """The latencies of all the "on" requests and of all the "off" ones (of the pairs
        ``rows``, all by default)."""
        rows = range(len(self.pairs)) if rows is None else rows
        on = np.concatenate([self.pairs[r][0] for r in rows])
        return on, np.concatenate([self.pairs[r][1] for r in rows])

    def ratio(self, q: float, rows: Sequence[int] | None = None) -> float:
        """The ``q``-th percentile of all the "on" requests over that of all the "off" ones
        (of the pairs ``rows``, all by default)."""
        on, off = self.sides(rows)
        return float(np.percentile(on, q) / np.percentile(off, q))

    def interval(self, q: float, resamples: int = 1000) -> tuple[float, float]:
        """A 95 % interval for :meth:`ratio`: the pairs resampled with replacement."""
        rng = np.random.default_rng(1)
        n = len(self.pairs)
        again = sorted(self.ratio(q, rng.integers(0, n, n).tolist()) for _ in range(resamples))
        return again[resamples // 40], again[resamples - 1 - resamples // 40]

    def row(self, label: str) -> str:
        """One line of the table: pairs, requests each way, and for the p50 and the p99 the
        two sides (ms), their ratio and its interval."""
        on, off = self.sides()
        cells = [f"{label:<8}{len(self.pairs):>6}{len(on):>9}{len(off):>9}"]
        for q in (50, 99):
            high, low = np.percentile(on, q), np.percentile(off, q)
            lo, hi = self.interval(q)
            cells.append(
                f"{high / 1e3:>7.2f}/{low / 1e3:<5.2f}{high / low:>7.3f} {f'{lo:.3f}-{hi:.3f}':>12}"
            )
        return "".join(cells)


def switched(
    champion: str, shadow: str, body: Path, work: Path, seconds: float, stretch: float = 1.0
) -> Stretches:
    """The shadow switched every ``stretch`` seconds under one continuous paced load, every
    request timed (the module docstring)."""
    import os
    import random
    import signal

    connections = 16  # a wrk thread each: requests are timed one by one
    rng = random.Random(0)
    blocks = 2
    results = {k: Stretches(GUARD_S * 1e6) for k in range(2)}
    checks: list[str] = []  # each run as wrk counted it and as timed request by request
    started = switchable(champion, shadow, body, work / "switched", connections, connections)
    with started as (servers, capacity, pause):
        print(
            f"\nthe shadow switched every {stretch:g} s in one process under one paced load: "
            f"2 servers, {blocks} runs of {seconds:g} s each, wrk -t{connections} "
            f"-c{connections} at half of {capacity:.0f} req/s (Poisson pauses of {pause:.2f} ms), "
            f"the first {GUARD_S:g} s after each switch left out"
        )
        for _ in range(blocks):
            for k in rng.sample(range(2), 2):
                pid, url = servers[k]
                times = work / f"times-{k}"
                times.mkdir(exist_ok=True)
                for old in times.glob("*.txt"):
                    old.unlink()
                switches: list[tuple[float, bool]] = []
                with wrk_process(url + "/predict", body, connections, seconds,
                                 threads=connections, delay_ms=pause, poisson=True,
                                 times_dir=times) as proc:  # fmt: skip
                    end = time.monotonic() + seconds - 2 * stretch
                    while time.monotonic() < end:
                        for on in rng.sample([True, False], 2):
                            os.kill(pid, signal.SIGUSR2 if on else signal.SIGUSR1)
                            switches.append((time.monotonic() * 1e6, on))
                            time.sleep(stretch)  # the stretch itself, not a wait for readiness
                    ended = time.monotonic() * 1e6
                    whole = finished(proc, connections)
                quiet(url)
                sent, latency = read_times(times)
                results[k].add(switches, ended, sent, latency)
                checks.append(
                    f"server {k + 1}: wrk {whole.requests} requests, p99 {whole.p99_ms:.2f} ms; "
                    f"timed {len(sent)}, p99 {np.percentile(latency, 99) / 1e3:.2f} ms"
                )
    print(f"{'server':<8}{'pairs':>6}{'on':>9}{'off':>9}{'p50 ms on/off, ratio, 95 % CI':>32}"
          f"{'p99 ms on/off, ratio, 95 % CI':>32}")  # fmt: skip
    for k, r in results.items():
        print(r.row(str(k + 1)))
    both = Stretches(GUARD_S * 1e6)
    both.pairs = results[0].pairs + results[1].pairs
    print(both.row("all"))
    print("on: the served answers handed to the shadow; off: not; ratios: on over off")
    print("each run whole, by wrk and timed one by one:", "; ".join(checks))
    return both


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--rounds", type=int, default=15, help="wrk runs per server and load (15)")
    ap.add_argument("--seconds", type=float, default=1.0, help="seconds per wrk run (1)")
    ap.add_argument(
        "--toggled",
        type=int,
        metavar="PAIRS",
        help="instead: the shadow switched in one process, PAIRS pairs of paced runs a server",
    )
    ap.add_argument(
        "--switched",
        type=float,
        metavar="SECONDS",
        help="instead: the shadow switched every second in one process under one paced load "
        "of SECONDS a run, every request timed",
    )
    args = ap.parse_args(argv)
    started = time.perf_counter()

    with tempfile.TemporaryDirectory(prefix="houseprice-bench-traffic-") as tmp:
        work = Path(tmp)
        from model.workflow.artifact import load_artifact
        from model.workflow.cli import main as houseprice

        models = []
        for name in ("champion", "shadow"):
            path = work / name / "model.joblib"
            runs_dir = str(work / name / "runs")
            argv_train = ["train", "--config", str(CONFIG), "--out", str(path)]
            code = houseprice([*argv_train, "--runs-dir", runs_dir, "--quiet", "--no-plots"])
            if code != 0:
                raise SystemExit(f"training the {name} model failed")
            models.append(str(path))
        champion, shadow = models
        meta = load_artifact(champion).metadata
        house = {f["name"]: f["example"] for f in meta["features"] if f["example"] is not None}
        body = work / "house.json"
        body.write_text(json.dumps(house))
        if args.switched:
            print(f"machine: {describe('fastapi', 'uvicorn')}")
            switched(champion, shadow, body, work, args.switched)
            print(f"(benchmark took {time.perf_counter() - started:.0f} s)")
            return 0
        if args.toggled:
            print(f"machine: {describe('fastapi', 'uvicorn')}")
            toggled(champion, shadow, body, work, args.toggled)
            print(f"(benchmark took {time.perf_counter() - started:.0f} s)")
            return 0
        logs = work / "logs"
        logs.mkdir()
        servers = {
            "plain": {"MODEL_PATH": champion},
            "shadow": {"MODEL_PATH": champion, "SHADOW_MODEL_PATH": shadow},
            "log": {"MODEL_PATH": champion, "PREDICTION_LOG": str(logs / "log.jsonl")},
            "both": {
                "MODEL_PATH": champion,
                "SHADOW_MODEL_PATH": shadow,
                "PREDICTION_LOG": str(logs / "both.jsonl"),
            },
        }
        loads = (1, 16)
        runs: dict[tuple[int, str], list[WrkResult]] = {}
        with ExitStack() as stack:
            urls = {}
            for name, env in servers.items():
                url = stack.enter_context(
                    uvicorn_server("app", env, work / f"{name}.log", ROOT, "/health/ready")
                )
                run_wrk(url + "/predict", body, 4, 1)  # warm-up
                settle(url)
                urls[name] = url
            for _ in range(args.rounds):
                for c in loads:
                    for name, url in urls.items():
                        runs.setdefault((c, name), []).append(
                            run_wrk(url + "/predict", body, c, args.seconds)
                        )
                        settle(url)
            shadow_state = {
                name: httpx.get(url + "/metrics", timeout=30).text for name, url in urls.items()
            }
        log_lines = sum(1 for _ in (logs / "log.jsonl").open())

    def med(values: Sequence[float]) -> float:
        return float(statistics.median(values))

    print(f"POST /predict, one house: wrk -t1 -c1 and -c16, {args.seconds:g} s runs, "
          f"{args.rounds} rounds, servers in turn (medians over rounds)")  # fmt: skip
    print(f"machine: {describe('fastapi', 'uvicorn')}")
    print(f"{'load':<6}{'server':<9}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}"
          f"{'req/s vs plain':>16}{'p99 vs plain':>14}")  # fmt: skip
    for c in loads:
        base = runs[c, "plain"]
        for name in servers:
            rs = runs[c, name]
            rate = spread(round_ratios(rs, base))[0] if name != "plain" else 1.0
            p99_ratio = med([r.p99_ms / b.p99_ms for r, b in zip(rs, base, strict=True)])
            print(
                f"-c{c:<4}{name:<9}{med([r.rate for r in rs]):>9.0f}"
                f"{med([r.p50_ms for r in rs]):>9.2f}{med([r.p99_ms for r in rs]):>9.2f}"
                f"{sum(r.errors for r in rs):>8}{rate:>16.2f}{p99_ratio:>14.2f}"
            )
    for name in ("shadow", "both"):
        text = shadow_state[name]
        priced = sample(text, "houseprice_predictions_total", role="champion")
        shadowed = sample(text, "houseprice_predictions_total", role="shadow")
        dropped = sample(text, "houseprice_shadow_dropped_total")
        print(
            f"{name}: champion priced {priced:,.0f}, shadow {shadowed:,.0f}, dropped {dropped:,.0f}"
        )
    log_text = shadow_state["log"]
    print(
        f"log: {log_lines:,} lines written, "
        f"{sample(log_text, 'houseprice_prediction_log_dropped_total'):,.0f} dropped "
        f"(benchmark took {time.perf_counter() - started:.0f} s)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
