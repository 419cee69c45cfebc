"""The cost of monitoring (metrics + the drift window) on ``/predict``, measured in one run.

1. The request path in process, per request of 1 and of 100 houses drawn from the training
   data: (a) the whole app called as an ASGI application (middleware, routing, validation,
   prediction, JSON; no network), monitoring on against off, runs alternated and the best
   kept; (b) its parts: validation, pricing (the request's table, the folded terms or the
   pipeline, the input checks), and what monitoring adds (the prediction and input-quality
   metrics and the drift update that ``Service.price`` makes, plus the HTTP metrics of the
   middleware).
   Target: monitoring < 10 %.
2. The drift monitor alone: ``update`` against ``pipeline.predict`` on the same rows, and
   the reads that bucket the queued rows (``gauges`` at each scrape, ``report``).
3. Service throughput with ``wrk`` (one thread, 4 connections): uvicorn with
   ``MONITORING_ENABLED=true`` against two servers with ``false``, driven in turn for 20
   rounds of 1 s (``wrk.interleaved``, as ``bench_service.py``), medians of the per-round
   ratios with their quartiles. The two identical "off" servers give the noise floor of the
   machine: a monitoring cost smaller than that floor cannot be seen here.
4. The same cost in one process: each of two servers (``toggled_serve.py``: monitoring
   switched by a signal, the requests answered counted in a shared file) serves ``wrk -t2
   -c16`` for 30 s, three times, in turn; meanwhile monitoring is switched on and off every
   0.25 s, each pair in a random order, and the server process's CPU per request of each
   stretch is read (``/proc/PID/task/*/schedstat`` over the requests counted). Off over on,
   pair by pair: the median, its quartiles and a 95 % interval from resampling the pairs.
   Short stretches under one continuous load pair each "on" with an "off" a quarter of a
   second away, so the machine's drifting speed, which moves a 1-s round by ±10 %, cancels;
   two processes of the same code still differ (docs/PERFORMANCE.md, "Stop 31").

Prints tables; asserts nothing. Run: ``.venv/bin/python benchmarks/bench_monitoring.py
[--only N]`` (parts 3 and 4 need ``wrk``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from asgi import caller  # noqa: E402 (benchmarks/, the script's folder)
from machine import describe  # noqa: E402
from wrk import (  # noqa: E402 (benchmarks/wrk.py, beside this file)
    finished,
    interleaved,
    median_interval,
    round_ratios,
    spread,
    wrk_process,
)

from app.monitor import DriftMonitor  # noqa: E402
from model.workflow.artifact import load_artifact  # noqa: E402
from model.workflow.cli import main as houseprice  # noqa: E402
from model.workflow.config import load_config  # noqa: E402
from model.workflow.train import prepare_data  # noqa: E402
from tests.e2e.conftest import Server, start_server  # noqa: E402 (the shared harness)

ROUNDS, SECONDS, CONNECTIONS = 20, 1, 4


def houses(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """Training rows as API houses (missing values left out)."""
    data = prepare_data(load_config(ROOT / "configs/ames.toml"))
    rng = np.random.default_rng(seed)
    out = []
    for i in rng.integers(0, data.y.size, n):
        house: dict[str, Any] = {}
        for name, col in data.table.items():
            v = col[i]
            if v is None or (isinstance(v, float) and np.isnan(v)):
                continue
            house[name] = v if isinstance(v, str) else float(v)
        out.append(house)
    return out


def service(artifact: str, tmp: Path) -> None:
    print(
        f"\n3. /predict throughput with wrk -c{CONNECTIONS}, {ROUNDS} rounds of {SECONDS} s per "
        "server in turn; req/s and ratios are medians over the rounds"
    )
    if shutil.which("wrk") is None:
        print("   skipped: wrk is not installed")
        return
    servers: dict[str, Server] = {}
    for name, monitoring, log in (
        ("on", "true", "on.log"),
        ("off", "false", "off.log"),
        ("off (A/A)", "false", "off2.log"),
    ):
        env = {"MODEL_PATH": artifact, "MONITORING_ENABLED": monitoring, "LOG_LEVEL": "warning"}
        servers[name] = start_server(env, tmp / log)
    try:
        pool = houses(1000)
        bodies = {
            "1 house": json.dumps(pool[0]),
            "100 houses": json.dumps({"instances": pool[:100]}),
        }
        head = f"{'request':<12}{'on':>8}{'off':>8}{'off A/A':>9}{'on/off':>8}{'(IQR)':>12}"
        print(f"{head}{'A/A':>7}{'(IQR)':>12}")
        print("-" * (len(head) + 19))
        urls = {name: server.url for name, server in servers.items()}
        for label, text in bodies.items():
            body = tmp / "body.json"
            body.write_text(text)
            runs = interleaved(urls, body, ROUNDS, SECONDS, CONNECTIONS)
            failed = {name: sum(r.errors for r in rs) for name, rs in runs.items()}
            if any(failed.values()):
                raise SystemExit(f"wrk saw failed requests: {failed}")
            rate = {name: statistics.median(r.rate for r in rs) for name, rs in runs.items()}
            on_off, q1, q3 = spread(round_ratios(runs["on"], runs["off"]))
            aa, a1, a3 = spread(round_ratios(runs["off (A/A)"], runs["off"]))
            print(
                f"{label:<12}{rate['on']:>8.0f}{rate['off']:>8.0f}{rate['off (A/A)']:>9.0f}"
                f"{on_off:>8.3f}{f'{q1:.2f}-{q3:.2f}':>12}{aa:>7.3f}{f'{a1:.2f}-{a3:.2f}':>12}"
            )
        print(
            "on/off: 1 - it is the cost of monitoring; A/A: the two identical 'off' servers, "
            "the noise floor"
        )
    finally:
        for server in servers.values():
            server.stop()


def toggled(
    artifact: str,
    tmp: Path,
    blocks: int = 3,
    seconds: float = 30,
    processes: int = 2,
    segment: float = 0.25,
    label: str = "4. ",
) -> float | None:
    """Part 4; the median off/on over every pair of every server (None without wrk)."""
    print(
        f"\n{label}One process, monitoring switched: {processes} servers, each in turn under "
        f"wrk -t2 -c16 for {seconds:g} s ({blocks} times), monitoring switched on and off every "
        f"{segment:g} s in a random order; CPU µs per one-house request"
    )
    if shutil.which("wrk") is None:
        print("   skipped: wrk is not installed")
        return None
    from bench_http import process_cpu_ns, server
    from toggled_serve import RequestCount

    body = tmp / "house.json"
    body.write_text(json.dumps(houses(1)[0]))
    cmd = [sys.executable, str(ROOT / "benchmarks" / "toggled_serve.py")]
    rng = random.Random(0)
    pairs: dict[int, list[tuple[float, float]]] = {k: [] for k in range(processes)}
    with ExitStack() as stack:
        servers = []
        for k in range(processes):
            path = tmp / f"requests-{k}"
            # the access line at info, as deployed and as bench_service's servers
            env = {"MODEL_PATH": artifact, "REQUEST_COUNT_FILE": str(path)}
            pid, url = stack.enter_context(
                server(cmd, ROOT, env, tmp / f"toggled-{k}.log", body.read_bytes())
            )
            servers.append((pid, url, RequestCount(path)))

        def per_request(pid: int, count: RequestCount, monitoring: bool) -> float:
            """Switch, let the switch land, then the CPU µs a request over one segment."""
            os.kill(pid, signal.SIGUSR2 if monitoring else signal.SIGUSR1)
            time.sleep(0.01)  # the handler runs at the loop's next turn, well within this
            cpu0, n0 = process_cpu_ns(pid)[0], count.read()
            time.sleep(segment)
            cpu1, n1 = process_cpu_ns(pid)[0], count.read()
            return (cpu1 - cpu0) / 1e3 / max(1, n1 - n0)

        for _ in range(blocks):
            for k in rng.sample(range(processes), processes):
                pid, url, count = servers[k]
                with wrk_process(url + "/predict", body, 16, seconds + 1, threads=2) as load:
                    start, deadline = count.read(), time.monotonic() + 10
                    while count.read() < start + 100:  # wrk connected and running
                        if time.monotonic() > deadline or load.poll() is not None:
                            raise SystemExit(f"wrk did not load {url}: {finished(load, 16)}")
                        time.sleep(0.01)  # poll interval
                    end = time.monotonic() + seconds - 2 * segment
                    while time.monotonic() < end:
                        way = {m: per_request(pid, count, m) for m in rng.sample([True, False], 2)}
                        pairs[k].append((way[True], way[False]))
                    result = finished(load, 16)
                if result.errors:
                    raise SystemExit(f"wrk saw {result.errors} failed requests")
    head = f"{'server':<8}{'pairs':>6}{'on':>8}{'off':>8}{'off/on':>8}{'(IQR)':>12}"
    print(f"{head}{'(95 % CI)':>14}{'cost':>8}")
    everyone: list[float] = []
    for k in range(processes):
        ratios = [off / on for on, off in pairs[k]]
        everyone += ratios
        on = statistics.median(p[0] for p in pairs[k])
        off = statistics.median(p[1] for p in pairs[k])
        print(f"{k + 1:<8}{len(ratios):>6}{on:>8.1f}{off:>8.1f}" + _ratio_columns(ratios))
    print(f"{'all':<8}{len(everyone):>6}{'':>16}" + _ratio_columns(everyone))
    print(
        "cost: 1 - off/on, the share of a request's CPU monitoring takes (issue 5's 10 %); "
        "CI: resampling the pairs, within a process"
    )
    return statistics.median(everyone)


def _ratio_columns(ratios: list[float]) -> str:
    """Median off/on, its quartiles, a 95 % bootstrap interval of the median, the cost."""
    ratio, q1, q3 = spread(ratios)
    lo, hi = median_interval(ratios)
    return f"{ratio:>8.3f}{f'{q1:.2f}-{q3:.2f}':>12}{f'{lo:.3f}-{hi:.3f}':>14}{1 - ratio:>8.1%}"


async def _asgi_post(app: Any, body: bytes) -> None:
    """One ``POST /predict`` through the ASGI interface, as uvicorn would make it."""
    status = await caller(app, "POST", "/predict", body)()
    if status != 200:
        raise RuntimeError(f"/predict answered {status}")


def whole_app(artifact: str) -> None:
    from app.main import create_app
    from app.settings import Settings

    pool = houses(100)
    print("\n1a. The whole app in process (ASGI calls, best of 7 x 200 requests), µs/request")
    print(f"{'houses':>7}{'on':>9}{'off':>9}{'off A/A':>9}{'on/off':>9}{'A/A':>8}")
    print("-" * 51)

    async def run() -> None:
        apps = {}
        for name, enabled in (("on", True), ("off", False), ("off (A/A)", False)):
            settings = Settings(
                model_path=artifact, monitoring_enabled=enabled, log_level="warning"
            )
            app = create_app(settings)
            await app.router.lifespan_context(app).__aenter__()
            apps[name] = app
        for n in (1, 100):
            body = json.dumps(pool[0] if n == 1 else {"instances": pool[:n]}).encode()
            best = dict.fromkeys(apps, math.inf)
            for _ in range(7):  # alternate, so background load hits all alike
                for name, app in apps.items():
                    t0 = time.perf_counter()
                    for _ in range(200):
                        await _asgi_post(app, body)
                    best[name] = min(best[name], (time.perf_counter() - t0) / 200 * 1e6)
            on, off, aa = best["on"], best["off"], best["off (A/A)"]
            print(
                f"{n:>7}{on:>9.0f}{off:>9.0f}{aa:>9.0f}"
                f"{on / min(off, aa):>9.3f}{max(off, aa) / min(off, aa):>8.3f}"
            )
        print("on/off against the faster 'off'; A/A = slower/faster of the identical apps")

    asyncio.run(run())


def request_path(artifact: str) -> None:
    from app.settings import Settings
    from app.state import Service

    svc = Service(Settings(model_path=artifact, log_level="warning"))
    svc.load_initial()
    model = svc.holder.current
    assert model is not None, svc.holder.not_ready_reason()
    pool = houses(100)
    print("\n1b. Its parts (best of 5), µs per request")
    head = f"{'houses':>7}{'validate':>10}{'price':>8}{'monitoring':>12}{'share':>8}"
    print(head)
    print("-" * len(head))
    for n in (1, 100):
        body = json.dumps(pool[0] if n == 1 else {"instances": pool[:n]}).encode()
        rows, _ = model.schema.validate(body)

        def price(r: Any = rows) -> tuple[Any, Any, Any]:
            """What ``Service.price`` does before monitoring."""
            table = model.table(r)
            return table, model.predict(table), model.quality(table)

        table, y, quality = price()
        repeats = 2000 // n
        t_val = best_us(lambda b=body: model.schema.validate(b), repeats)  # type: ignore[misc]
        t_price = best_us(price, repeats)
        unknown = Counter(name for _, name, _ in quality.unknown)

        def monitoring(
            t: Any = table, p: Any = y, q: Any = quality, u: Any = unknown, size: int = len(body)
        ) -> None:
            requests = svc.metrics.requests
            requests.observe_request("POST", "/predict", 200, 0.001, size, 200)
            requests.observe_prediction(model.version, p, q.missing, q.out_of_range, u)
            if model.monitor is not None:
                model.monitor.update(t, p)

        t_mon = best_us(monitoring, repeats)
        total = t_val + t_price + t_mon
        print(f"{n:>7}{t_val:>10.1f}{t_price:>8.1f}{t_mon:>12.1f}{t_mon / total * 100:>7.1f}%")
    print(
        "share: of validation + pricing + monitoring only (no ASGI, no JSON out), so an upper"
        "\nbound on monitoring's share of a request; issue 5's 10 % is on throughput (part 3)"
    )


def best_us(fn: Callable[[], object], repeats: int) -> float:
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(repeats):
            fn()
        best = min(best, (time.perf_counter() - t0) / repeats)
    return best * 1e6


def in_process(artifact: str) -> None:
    art = load_artifact(artifact)
    data = prepare_data(load_config(ROOT / "configs/ames.toml"))
    reference, version = art.metadata["reference"], art.metadata["model_version"]
    print("\n2. The drift monitor alone vs the prediction (best of 5), µs")
    print(f"{'rows':>6}{'predict':>11}{'update':>10}{'update/predict':>16}")
    print("-" * 43)
    for n in (1, 10, 100, 1000):
        monitor = DriftMonitor(reference, version)
        cols = {k: v[:n] for k, v in data.table.items()}
        y = art.pipeline.predict(cols)
        repeats = max(20, 2000 // n)
        t_pred = best_us(lambda c=cols: art.pipeline.predict(c), repeats)  # type: ignore[misc]
        t_upd = best_us(lambda c=cols, p=y, m=monitor: m.update(c, p), repeats)  # type: ignore[misc]
        print(f"{n:>6}{t_pred:>11.1f}{t_upd:>10.1f}{t_upd / t_pred:>16.3f}")
    print("reads, which bucket the queued rows (at most the window's 1,000):")
    for n in (1, 100):
        monitor = DriftMonitor(reference, version)
        cols = {k: v[:n] for k, v in data.table.items()}
        y = art.pipeline.predict(cols)

        def scrape(m: DriftMonitor = monitor, c: Any = cols, p: Any = y, k: int = n) -> None:
            for _ in range(max(1, 1000 // k)):  # a full window of new rows since the last read
                m.update(c, p)
            m.gauges()

        t_s = best_us(scrape, 5)
        print(f"  gauges() after 1,000 new rows in {n}-row requests: {t_s:,.0f} µs per scrape")
    t_r = best_us(monitor.report, 20)
    print(f"  report() (GET /drift) with nothing queued: {t_r:,.0f} µs")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--only", type=int, choices=(1, 2, 3, 4), help="run this part alone")
    only = ap.parse_args().only
    print("bench_monitoring: what metrics and drift checks cost the /predict path")
    print(describe("fastapi", "uvicorn", "prometheus-client"))
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        artifact = str(tmp / "model.joblib")
        code = houseprice(
            ["train", "--config", str(ROOT / "configs/ames.toml"), "--out", artifact,
             "--runs-dir", str(tmp / "runs"), "--quiet"]
        )  # fmt: skip
        if code != 0:
            raise SystemExit(f"training failed with exit code {code}")
        if only in (None, 1):
            whole_app(artifact)
            request_path(artifact)
        if only in (None, 2):
            in_process(artifact)
        if only in (None, 3):
            service(artifact, tmp)
        if only in (None, 4):
            toggled(artifact, tmp)


if __name__ == "__main__":
    main()
