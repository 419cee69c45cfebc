"""Load: the sustained request rate at which p99 stays under 25 ms for one-house requests.

``wrk`` (one thread) drives ``POST /predict`` with one house against one uvicorn worker,
the service as it is deployed (monitoring on, JSON access log at info). wrk is closed-loop:
``c`` connections each send the next request as soon as the previous answer arrives, so the
rate rises with ``c`` until the server saturates and then only the queueing delay (the
latency) grows. The sweep over ``c`` therefore traces the latency-throughput curve, and the
answer is the highest rate of a step whose p99 is under the budget — the rate the service
sustains while keeping its tail promise. Every step must also have zero errors (socket
errors, timeouts and non-2xx answers all count).

Prints a table and the machine; asserts nothing. Run:
``.venv/bin/python benchmarks/load.py [--seconds 10] [--connections 1,2,4,8,16,32,64]``.
``benchmarks/soak.py`` then holds half the rate found here for minutes.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from machine import describe  # noqa: E402 (benchmarks/, the script's folder)
from wrk import WrkResult, run_wrk  # noqa: E402 (benchmarks/wrk.py, beside this file)

from tests.e2e.conftest import Server, start_server  # noqa: E402 (the shared harness)

P99_BUDGET_MS = 25.0


@contextmanager
def served_model(
    model: str | None, workdir: Path, env: dict[str, str] | None = None
) -> Iterator[tuple[Server, dict[str, Any]]]:
    """A uvicorn server (the tests' harness) on ``model``, or on a freshly trained default
    model; yields the server and one example house from its schema."""
    if model is None:
        from model.workflow.cli import main as houseprice

        model = str(workdir / "model.joblib")
        argv = ["train", "--config", str(ROOT / "configs" / "ames.toml"), "--out", model]
        argv += ["--runs-dir", str(workdir / "runs"), "--quiet", "--no-plots"]
        code = houseprice(argv)
        if code != 0:
            raise SystemExit(f"training the benchmark model failed ({code})")
    server = start_server({"MODEL_PATH": model, **(env or {})}, workdir / "server.log")
    try:
        features = httpx.get(server.url + "/model", timeout=10).json()["features"]
        house = {f["name"]: f["example"] for f in features if f.get("example") is not None}
        check = httpx.post(server.url + "/predict", json=house, timeout=10)
        if check.status_code != 200:
            raise SystemExit(f"the example house is refused: {check.status_code} {check.text}")
        yield server, house
    finally:
        code = server.stop()
        if code != 0:
            print(f"warning: the server exited with {code}", file=sys.stderr)


def write_body(workdir: Path, house: dict[str, Any]) -> Path:
    body = workdir / "house.json"
    body.write_text(json.dumps(house))
    return body


def table(rows: Sequence[WrkResult]) -> str:
    head = f"{'conns':>5} {'req/s':>8} {'p50 ms':>7} {'p90 ms':>7} {'p99 ms':>7} "
    head += f"{'max ms':>7} {'errors':>6}  p99 < {P99_BUDGET_MS:g} ms"
    lines = [head]
    for r in rows:
        ok = "yes" if r.p99_ms < P99_BUDGET_MS and r.errors == 0 else "no"
        lines.append(
            f"{r.connections:>5} {r.rate:>8.0f} {r.p50_ms:>7.2f} {r.p90_ms:>7.2f} "
            f"{r.p99_ms:>7.2f} {r.max_ms:>7.1f} {r.errors:>6}  {ok}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="artifact to serve (default: train the default model)")
    ap.add_argument("--seconds", type=float, default=10.0, help="seconds per step (10)")
    ap.add_argument("--connections", default="1,2,4,8,16,32,64", help="the sweep (1..64)")
    args = ap.parse_args(argv)
    steps = [int(c) for c in args.connections.split(",")]

    with tempfile.TemporaryDirectory(prefix="houseprice-load-") as tmp:
        work = Path(tmp)
        with served_model(args.model, work) as (server, house):
            body = write_body(work, house)
            run_wrk(server.url + "/predict", body, 4, 2)  # warm-up, not reported
            results = [run_wrk(server.url + "/predict", body, c, args.seconds) for c in steps]
    print(f"POST /predict, one house, one uvicorn worker, wrk -t1, {args.seconds:g} s per step")
    print(f"machine: {describe('fastapi', 'uvicorn')}")
    print(table(results))
    good = [r for r in results if r.p99_ms < P99_BUDGET_MS and r.errors == 0]
    total_errors = sum(r.errors for r in results)
    total_requests = sum(r.requests for r in results)
    if good:
        best = max(good, key=lambda r: r.rate)
        print(
            f"\nsustained: {best.rate:.0f} req/s with p99 {best.p99_ms:.2f} ms "
            f"< {P99_BUDGET_MS:g} ms ({best.connections} connection(s)); "
            f"half of it for the soak: {best.rate / 2:.0f} req/s"
        )
    else:
        print(f"\nno step kept p99 under {P99_BUDGET_MS:g} ms with zero errors")
    print(f"errors: {total_errors} in {total_requests} requests over the whole sweep")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
