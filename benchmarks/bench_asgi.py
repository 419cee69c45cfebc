"""The service's request path in process, through ASGI (no socket), for two or more code trees
driven in turn: an A/B harness for the hot path.

Each ``--tree NAME=DIR`` (a checkout of this repository, e.g. ``git archive`` of a commit) runs
in its own Python process, which builds the app with ``create_app`` from that tree, runs its
lifespan (the model loads and warms), applies ``app/serve.py``'s heap policy when the tree has
one, and then answers "run K requests of this kind" with the CPU time its thread spent on them
(``time.thread_time``: on a shared, loaded machine wall time mostly measures the waits for a
core). The driver asks each process in turn, round after round, so what the rest of the machine
does to caches and clocks hits every tree alike, and reports per tree the median CPU time per
request and, against the first tree, the median and quartiles of the per-round ratios; with
``--off``, each tree's monitoring cost too, ``1 - off/on`` per round, as ``bench_service.py``
computes it from rates.

Kinds: ``one`` (``POST /predict``, one house), ``batch`` (``POST /predict``, 100 houses),
``live`` (``GET /health/live``: the middlewares and the framework), ``v2`` (``POST
/v2/models/houseprice/infer``, the same house as V2 tensors). Add ``--off`` to run every
tree a second time with ``MONITORING_ENABLED=false``. With ``one`` and ``v2`` both, each tree's
V2 throughput as a share of one house's (``one``'s CPU over ``v2``'s, per round) too.

Run: ``.venv/bin/python benchmarks/bench_asgi.py --model ARTIFACT --tree base=/tmp/base
--tree new=. [--kinds one,live] [--rounds 60] [--requests 150] [--off]``. Prints a table;
asserts nothing. Trees from before ``app/serve.py`` (one middleware, no heap policy) run too.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

WORKER = r"""
import asyncio, gc, json, os, sys, time

sys.path.insert(0, os.getcwd())
sys.path.insert(0, os.environ["BENCH_DIR"])  # the harness's benchmarks/, whatever the tree
from asgi import caller
from app.main import create_app
from app.settings import Settings

try:
    from app.serve import freeze_heap
except ImportError:  # a tree from before app/serve.py
    freeze_heap = None

app = create_app(Settings.from_env())
service = app.state.service


async def lifespan_start() -> None:
    queue: asyncio.Queue = asyncio.Queue()
    await queue.put({"type": "lifespan.startup"})
    started = asyncio.get_running_loop().create_future()

    async def receive():
        return await queue.get()

    async def send(message):
        if message["type"] == "lifespan.startup.complete":
            started.set_result(None)
        elif message["type"] == "lifespan.startup.failed":
            started.set_exception(RuntimeError(message.get("message")))

    lifespan = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
    asyncio.get_running_loop().create_task(app(lifespan, receive, send))
    await started


async def main() -> None:
    await lifespan_start()
    house = json.loads(os.environ["BENCH_HOUSE"])
    v2 = json.loads(os.environ["BENCH_V2"])
    kinds = {
        "one": ("POST", "/predict", json.dumps(house).encode()),
        "batch": ("POST", "/predict", json.dumps({"instances": [house] * 100}).encode()),
        "live": ("GET", "/health/live", b""),
        "v2": ("POST", "/v2/models/houseprice/infer", json.dumps(v2).encode()),
    }
    calls = {kind: caller(app, *request) for kind, request in kinds.items()}
    for kind, call in calls.items():
        for _ in range(200):  # warm-up
            status = await call()
        if status != 200:
            raise SystemExit(f"{kinds[kind][:2]}: {status}")
    if freeze_heap is not None:
        freeze_heap()
    print("ready", flush=True)
    for line in sys.stdin:
        kind, n = line.split()
        call = calls[kind]
        t0 = time.thread_time()
        for _ in range(int(n)):
            await call()
        print(time.thread_time() - t0, flush=True)


asyncio.run(main())
"""


def v2_request(house: dict[str, Any], features: list[dict[str, Any]]) -> dict[str, Any]:
    """The V2 inference request of one house: one ``[1]`` tensor per feature it has."""
    inputs = [
        {
            "name": f["name"],
            "shape": [1],
            "datatype": "BYTES" if f["kind"] == "categorical" else "FP64",
            "data": [house[f["name"]]],
        }
        for f in features
        if f["name"] in house
    ]
    return {"inputs": inputs}


def start(tree: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(WORKER)],
        cwd=tree,
        env={**os.environ, **env, "PYTHONPATH": str(tree), "BENCH_DIR": str(ROOT / "benchmarks")},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,  # the access lines, as a deployed server writes them
        text=True,
    )
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != "ready":
        raise SystemExit(f"{tree}: the worker did not start")
    return proc


def ask(proc: subprocess.Popen[str], kind: str, n: int) -> float:
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(f"{kind} {n}\n")
    proc.stdin.flush()
    return float(proc.stdout.readline())


def quartiles(values: list[float]) -> tuple[float, float, float]:
    q = statistics.quantiles(values, n=4) if len(values) > 1 else values * 3
    return statistics.median(values), q[0], q[2]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--model", required=True, help="the artifact every tree serves")
    ap.add_argument(
        "--tree", action="append", required=True, help="NAME=DIR, the first is the base"
    )
    ap.add_argument("--kinds", default="one,batch,live")
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--requests", type=int, default=2000, help="one-house requests per run")
    ap.add_argument("--off", action="store_true", help="also each tree with monitoring off")
    args = ap.parse_args()

    sys.path.insert(0, str(ROOT))
    from model.workflow.artifact import load_artifact

    metadata = load_artifact(args.model).metadata
    house = {f["name"]: f["example"] for f in metadata["features"] if f["example"] is not None}
    env = {
        "MODEL_PATH": str(Path(args.model).resolve()),
        "BENCH_HOUSE": json.dumps(house),
        "BENCH_V2": json.dumps(v2_request(house, metadata["features"])),
    }
    variants: list[tuple[str, Path, dict[str, str]]] = []
    for spec in args.tree:
        name, _, where = spec.partition("=")
        variants.append((name, Path(where).resolve(), env))
        if args.off:
            variants.append(
                (f"{name} off", Path(where).resolve(), {**env, "MONITORING_ENABLED": "false"})
            )
    procs = {name: start(tree, e) for name, tree, e in variants}
    per = {"one": args.requests, "live": args.requests, "v2": args.requests}
    per["batch"] = max(1, args.requests // 50)
    times: dict[tuple[str, str], list[float]] = {}
    try:
        for r in range(args.rounds):
            for kind in args.kinds.split(","):
                order = list(procs) if r % 2 == 0 else list(reversed(procs))
                for name in order:
                    t = ask(procs[name], kind, per[kind]) / per[kind] * 1e6
                    times.setdefault((kind, name), []).append(t)
    finally:
        for proc in procs.values():
            assert proc.stdin is not None
            proc.stdin.close()
            proc.wait(timeout=30)

    base = variants[0][0]
    print(f"{args.rounds} rounds; CPU us per request (median); per-round ratio to {base!r}")
    for kind in args.kinds.split(","):
        for name in procs:
            us = statistics.median(times[kind, name])
            ratios = [a / b for a, b in zip(times[kind, name], times[kind, base], strict=True)]
            m, q1, q3 = quartiles(ratios)
            print(f"{kind:<6} {name:<14} {us:>10.1f} us   {m:.3f} ({q1:.3f}-{q3:.3f})")
        if args.off:
            for name, _, _ in variants:
                if name.endswith(" off"):
                    on = name[: -len(" off")]
                    costs = [
                        1 - b / a for a, b in zip(times[kind, on], times[kind, name], strict=True)
                    ]
                    m, q1, q3 = quartiles(costs)
                    print(f"{kind:<6} {on:<14} monitoring cost {m:.1%} ({q1:.1%}-{q3:.1%})")
    if {"one", "v2"} <= set(args.kinds.split(",")):  # issue 15's V2 target, per tree
        for name in procs:
            shares = [a / b for a, b in zip(times["one", name], times["v2", name], strict=True)]
            m, q1, q3 = quartiles(shares)
            print(f"v2/one {name:<14} V2's throughput / one house's {m:.3f} ({q1:.3f}-{q3:.3f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
