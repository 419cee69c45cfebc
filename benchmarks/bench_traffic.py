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

Prints a table and the machine; asserts nothing. Run:
``.venv/bin/python benchmarks/bench_traffic.py [--rounds 15] [--seconds 1]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench_service import uvicorn_server  # noqa: E402 (benchmarks/, beside this file)
from machine import describe  # noqa: E402
from wrk import WrkResult, round_ratios, run_wrk, spread  # noqa: E402

CONFIG = ROOT / "configs" / "ames.toml"


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


def settle(url: str, timeout: float = 60.0) -> None:
    """Wait until the server's shadow has priced or dropped every house the champion priced."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = httpx.get(url + "/metrics", timeout=30).text
        shadow = sample(text, "houseprice_predictions_total", role="shadow")
        if "houseprice_shadow_model_info{" not in text:
            return
        champion = sample(text, "houseprice_predictions_total", role="champion")
        dropped = sample(text, "houseprice_shadow_dropped_total")
        if shadow + dropped >= champion:
            return
        time.sleep(0.02)  # poll interval
    raise SystemExit(f"{url}: the shadow did not catch up within {timeout} s")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--rounds", type=int, default=15, help="wrk runs per server and load (15)")
    ap.add_argument("--seconds", type=float, default=1.0, help="seconds per wrk run (1)")
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
