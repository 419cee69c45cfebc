"""CPU a ``POST /predict`` request costs the server process over HTTP, code trees A/B.

In process (``bench_asgi.py``) the request path is timed without uvicorn, the socket and the
kernel; this one puts them back. Each ``--tree NAME=DIR`` (a checkout of this repository, e.g.
``git archive`` of a commit) is served by its own ``python -m app`` (one uvicorn worker, the
deployed defaults), beside the bare FastAPI route of ``bench_service.py``; ``wrk -t2 -c16``
POSTs one house to each in turn, round after round, in alternating order. For each run the
CPU of the whole server process (every thread: ``/proc/PID/task/*/schedstat``, exact where
``stat`` counts ticks), from just before wrk starts to after one more request has waited
for the backlog, is divided by the requests served. CPU time, not req/s, because wrk shares
the two cores: a server's rate moves with what wrk and the rest of the machine take, its CPU
per request much less. Reports per server the median CPU per request and req/s, and against
the first tree (and each tree against bare) the median and quartiles of the per-round ratios
of both.

With ``--shadow ARTIFACT`` each tree is also served with ``SHADOW_MODEL_PATH`` set to it (a
server named ``NAME+shadow``); after each of its runs the harness waits until the shadow has
priced what was served (twice the shadow's period, then one ``/metrics`` scrape, usually; every
server is scraped alike), so the replies' CPU is in the run.
``--rate R`` paces the runs at about ``R`` requests a second (each connection pauses between
requests, Poisson-drawn: wrk's Lua ``delay()``) instead of saturating the server: the loop then
wakes for every request or few, as in ``bench_service.py --shadow``'s paced comparison. Beside
the whole process's CPU a request, the event loop's (the main thread's) is reported; each
``NAME+shadow`` is compared with ``NAME``, and with the first tree's ``+shadow``.
``--shadow-only`` serves the trees after the first with the shadow alone; ``--pin`` runs the
servers (and their shadows' workers) on the first core and wrk on the others.
``--processes N`` serves each tree (and its ``+shadow``) by N processes, each driven in turn:
a round's figure of a server is the mean of its processes', and each process's median is
printed against theirs. Two processes of the same code differ by up to 9 % in CPU a request
(docs/PERFORMANCE.md, "s29-mon"), as much as some of the differences measured here.

Run: ``.venv/bin/python benchmarks/bench_http.py [--model ARTIFACT] [--tree main=/tmp/main
--tree new=.] [--rounds 20] [--seconds 1] [--shadow ARTIFACT] [--rate 1500] [--processes 3]``
(default: this tree against bare). Prints a table; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench_service import BARE_APP, CONFIG, free_port, stop  # noqa: E402 (benchmarks/)
from bench_traffic import settle  # noqa: E402
from machine import describe  # noqa: E402
from wrk import run_wrk  # noqa: E402

from app.shadow import Shadow  # noqa: E402

BARE = "bare"
SHADOWED = "+shadow"


def process_cpu_ns(pid: int) -> tuple[int, int]:
    """CPU nanoseconds so far of every live thread of ``pid``, and of its main thread (the
    event loop)."""
    total = loop = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with suppress(OSError, ValueError, IndexError):  # a thread that ended meanwhile
            ns = int((task / "schedstat").read_text().split()[0])
            total += ns
            if task.name == str(pid):
                loop = ns
    return total, loop


@contextmanager
def server(
    cmd: list[str], cwd: Path, env: dict[str, str], log: Path, body: bytes, cpu: int | None = None
) -> Iterator[tuple[int, str]]:
    """Start ``cmd`` (it takes ``--host``/``--port``), on core ``cpu`` alone when given, poll
    until ``POST /predict`` answers 200; yield its PID and URL; stop it by PID."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with log.open("ab") as fh:
        proc = subprocess.Popen(
            [*cmd, "--host", "127.0.0.1", "--port", str(port)],
            cwd=cwd,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **env},
            stdout=fh,
            stderr=subprocess.STDOUT,
            preexec_fn=None if cpu is None else lambda: os.sched_setaffinity(0, {cpu}),
        )
    try:
        deadline = time.monotonic() + 90
        headers = {"Content-Type": "application/json"}
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{cmd} did not start:\n{log.read_text()[-3000:]}")
            try:
                if httpx.post(url + "/predict", content=body, headers=headers).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)  # poll interval, not a wait for readiness
        yield proc.pid, url
    finally:
        stop(proc)


def quartiles(xs: list[float]) -> str:
    q1, median, q3 = statistics.quantiles(xs, n=4)
    return f"{median:.3f} ({q1:.3f}-{q3:.3f})"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--model", help="artifact every tree serves (default: train the default)")
    ap.add_argument("--tree", action="append", help="NAME=DIR, the first is the base (ours=.)")
    ap.add_argument("--rounds", type=int, default=20, help="wrk runs per server (20)")
    ap.add_argument("--seconds", type=float, default=1.0, help="seconds per wrk run (1)")
    ap.add_argument("--connections", type=int, default=16, help="wrk connections (16)")
    ap.add_argument("--no-bare", action="store_true", help="leave the bare route out")
    ap.add_argument("--shadow", metavar="ARTIFACT", help="also serve each tree with this shadow")
    ap.add_argument(
        "--shadow-only",
        action="store_true",
        help="with --shadow: serve the trees after the first only with the shadow",
    )
    ap.add_argument(
        "--pin",
        action="store_true",
        help="the servers (and their shadows' workers) on the first core, wrk on the others",
    )
    ap.add_argument(
        "--rate", type=float, default=0.0, help="pace each run at about this many req/s (0: no)"
    )
    ap.add_argument(
        "--processes",
        type=int,
        default=1,
        help="server processes of each tree (1): a round's figure of a tree is the mean of its "
        "processes', whose own medians are printed too (two processes of the same code differ "
        "by up to 9 %%)",
    )
    args = ap.parse_args()
    if args.processes < 1:
        ap.error(f"--processes: expected at least 1, got {args.processes}")
    trees = [t.split("=", 1) for t in args.tree or [f"ours={ROOT}"]]

    with tempfile.TemporaryDirectory(prefix="houseprice-bench-http-") as tmp, ExitStack() as stack:
        work = Path(tmp)
        model = args.model
        if model is None:
            from model.workflow.cli import main as houseprice

            model = str(work / "model.joblib")
            argv = ["train", "--config", str(CONFIG), "--out", model, "--runs-dir"]
            if houseprice([*argv, str(work / "runs"), "--quiet", "--no-plots"]) != 0:
                raise SystemExit("training the benchmark model failed")
        from model.workflow.artifact import load_artifact

        features = load_artifact(model).metadata["features"]
        house = {f["name"]: f["example"] for f in features if f["example"] is not None}
        body = work / "house.json"
        body.write_text(json.dumps(house))
        (work / "bare_app.py").write_text(textwrap.dedent(BARE_APP))

        servers: dict[str, tuple[int, str]] = {}  # by process name: NAME, or NAME#k
        groups: dict[str, list[str]] = {}  # each server's process names
        py = sys.executable

        def start(name: str, cmd: list[str], where: Path, env: dict[str, str]) -> None:
            count = 1 if name == BARE else args.processes
            for k in range(1, count + 1):
                each = name if count == 1 else f"{name}#{k}"
                log = work / f"{each}.log"
                servers[each] = stack.enter_context(
                    server(cmd, where, env, log, body.read_bytes(), pin)
                )
                groups.setdefault(name, []).append(each)

        pin = None
        if args.pin:
            pin, *others = sorted(os.sched_getaffinity(0))
            os.sched_setaffinity(0, others)  # this process and wrk, which it starts
        for name, tree in trees:
            where = Path(tree).resolve()
            env = {"PYTHONPATH": str(where), "MODEL_PATH": str(Path(model).resolve())}
            cmd = [py, "-m", "app"]
            if not (args.shadow_only and servers):
                start(name, cmd, where, env)
            if args.shadow:
                env = {**env, "SHADOW_MODEL_PATH": str(Path(args.shadow).resolve())}
                start(name + SHADOWED, cmd, where, env)
        if not args.no_bare:
            cmd = [py, "-m", "uvicorn", "bare_app:app", "--workers", "1", "--no-access-log"]
            start(BARE, cmd, work, {})
        threads = min(2, args.connections)
        for _, url in servers.values():  # warm-up
            run_wrk(url + "/predict", body, args.connections, 2, threads=threads)

        pacing = {}
        if args.rate > 0:
            pacing = {"delay_ms": args.connections * 1000 / args.rate, "poisson": True}
        cpu: dict[str, list[float]] = {name: [] for name in servers}
        loop: dict[str, list[float]] = {name: [] for name in servers}
        rate: dict[str, list[float]] = {name: [] for name in servers}
        loads = [os.getloadavg()[0]]
        for r in range(args.rounds):
            names = list(servers) if r % 2 == 0 else list(reversed(servers))
            for name in names:
                pid, url = servers[name]
                before, loop_before = process_cpu_ns(pid)
                res = run_wrk(
                    url + "/predict",
                    body,
                    args.connections,
                    args.seconds,
                    threads=threads,
                    **pacing,
                )
                drain = httpx.post(url + "/predict", content=body.read_bytes(), timeout=60,
                                   headers={"Content-Type": "application/json"})  # fmt: skip
                drain.raise_for_status()  # it waited for the backlog of the run
                if args.shadow:  # every server scraped alike, once the shadow has sent all
                    time.sleep(Shadow.PERIOD * 2)
                    if name.partition("#")[0].endswith(SHADOWED):
                        settle(url)
                    else:
                        httpx.get(url + "/metrics", timeout=30).raise_for_status()
                after, loop_after = process_cpu_ns(pid)
                cpu[name].append((after - before) / 1e3 / (res.requests + 1))
                loop[name].append((loop_after - loop_before) / 1e3 / (res.requests + 1))
                rate[name].append(res.rate)
            loads.append(os.getloadavg()[0])

    per_process = {name: statistics.median(values) for name, values in cpu.items()}
    cpu, loop, rate = (
        {group: [statistics.fmean(r) for r in zip(*(d[n] for n in names), strict=True)]
         for group, names in groups.items()}
        for d in (cpu, loop, rate)
    )  # fmt: skip
    base = trees[0][0]
    paced = f", paced at {args.rate:g} req/s" if args.rate > 0 else ""
    print(
        f"{args.rounds} rounds of wrk -t{threads} -c{args.connections} -d{args.seconds:g}s per "
        f"server{paced}; load average {min(loads):.1f}-{max(loads):.1f}"
    )
    print(f"machine: {describe('fastapi', 'uvicorn')}")
    if args.processes > 1:  # how far apart the processes of one server are
        for group, names in groups.items():
            if len(names) > 1:
                mid = statistics.median(per_process[n] for n in names)
                each = ", ".join(
                    f"{per_process[n]:.1f} ({per_process[n] / mid:.3f})" for n in names
                )
                print(f"{group}: CPU us/request of its processes (/ their median): {each}")
    print(
        f"{'server':14s} {'CPU us/request':>15s} {'loop us':>8s} {'req/s':>8s}   "
        f"per round / {base} (/ NAME with a shadow): CPU, loop CPU, req/s"
    )
    for name in cpu:
        ratios = ""
        # a tree with a shadow against the same tree without, the others against the base
        ref = name.removesuffix(SHADOWED) if name.endswith(SHADOWED) else base
        if name != ref and ref in cpu:
            c = [a / b for a, b in zip(cpu[name], cpu[ref], strict=True)]
            lo = [a / b for a, b in zip(loop[name], loop[ref], strict=True)]
            q = [a / b for a, b in zip(rate[name], rate[ref], strict=True) if b > 0]
            ratios = f"   {quartiles(c)}, {quartiles(lo)}, {quartiles(q)}"
        print(
            f"{name:14s} {statistics.median(cpu[name]):15.1f} "
            f"{statistics.median(loop[name]):8.1f} {statistics.median(rate[name]):8.0f}{ratios}"
        )
    shadowed = [name + SHADOWED for name, _ in trees if name + SHADOWED in cpu]
    for name in shadowed[1:]:  # each tree with a shadow against the base tree with one
        c = [a / b for a, b in zip(cpu[name], cpu[shadowed[0]], strict=True)]
        lo = [a / b for a, b in zip(loop[name], loop[shadowed[0]], strict=True)]
        print(f"{name} / {shadowed[0]}, per round: CPU {quartiles(c)}, loop CPU {quartiles(lo)}")
    if BARE in cpu:
        for name in (n for n, _ in trees if n in cpu):
            c = [a / b for a, b in zip(cpu[name], cpu[BARE], strict=True)]
            q = [a / b for a, b in zip(rate[name], rate[BARE], strict=True) if b > 0]
            print(f"{name} / bare, per round: CPU {quartiles(c)}, req/s {quartiles(q)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
