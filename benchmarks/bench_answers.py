"""CPU per request of the answer's extras and of the V2 route, in process, interleaved.

The app (``create_app``, monitoring on, the whole middleware stack) is called as an ASGI
application directly, with a prepared scope and body, as a server would after parsing HTTP:
what is measured is the app's own work per request, without sockets or HTTP parsing (which
cost every route alike). Cases, one house each, the default model:

(a) ``POST /predict`` (answer with its interval);
(b) ``POST /predict?explain=true``;
(c) ``POST /v2/models/houseprice/infer`` (the V2 request for the same house);
(d) the explanation alone: ``app.answers.explanations`` of the house's table.

Each case runs ``--calls`` requests per round, in turn, for ``--rounds`` rounds, timed in CPU
time of the calling thread (``time.thread_time``: on a shared machine, the time other
processes take between calls is not counted); the figures are the medians of the per-round
means and of the per-round ratios.

Then over HTTP (``--wrk-rounds``, 0 to skip): the service as deployed (``python -m app``, one
uvicorn worker) driven by ``wrk -t2 -c16 -d1s`` on (a), (b) and (c) in turn, round after round,
the ratios being the medians of the per-round req/s ratios (as ``bench_service.py``).

Targets (issue 15): explain costs < 20 us a house for a linear model ((b) - (a) in process,
and (d)); V2 reaches >= 0.75x the throughput of /predict for one house. Prints tables; asserts
nothing. Run: ``.venv/bin/python benchmarks/bench_answers.py [--model ARTIFACT] [--rounds 15]
[--wrk-rounds 15]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from asgi import caller  # noqa: E402 (benchmarks/, the script's folder)
from bench_asgi import v2_request  # noqa: E402
from bench_service import uvicorn_server  # noqa: E402
from machine import describe  # noqa: E402
from wrk import WrkResult, round_ratios, run_wrk, spread  # noqa: E402

from app.answers import explanations  # noqa: E402
from app.main import create_app  # noqa: E402
from app.serve import freeze_heap  # noqa: E402
from app.settings import Settings  # noqa: E402

CONFIG = ROOT / "configs" / "ames.toml"


def checked(app: Any, path: str, body: bytes) -> Callable[[], Any]:
    """A coroutine function making one ``POST`` to ``app``; it checks the status."""
    call = caller(app, "POST", path, body)

    async def checked_call() -> None:
        status = await call()
        if status != 200:
            raise SystemExit(f"{path}: status {status}")

    return checked_call


async def timed(call: Callable[[], Any], n: int) -> float:
    """CPU time of this thread per call (us): what other processes on a shared machine take
    from it between calls is not counted, unlike wall time."""
    t0 = time.thread_time()
    for _ in range(n):
        await call()
    return (time.thread_time() - t0) / n * 1e6


async def run(model: str, rounds: int, calls: int) -> dict[str, list[float]]:
    app = create_app(Settings(model_path=model, log_level="warning"))
    async with app.router.lifespan_context(app):
        freeze_heap()  # the collector policy of the deployed server (app/serve.py)
        service = app.state.service
        loaded = service.ready_model()
        meta = loaded.metadata
        house = {f["name"]: f["example"] for f in meta["features"] if f["example"] is not None}
        body = json.dumps(house).encode()
        v2 = json.dumps(v2_request(house, meta["features"])).encode()
        cases = {
            "predict": checked(app, "/predict", body),
            "predict?explain=true": checked(app, "/predict?explain=true", body),
            "v2 infer": checked(app, "/v2/models/houseprice/infer", v2),
        }
        table = loaded.table([loaded.schema.house.model_validate_json(body)])

        async def explain_only() -> None:
            explanations(loaded, table)

        cases["explanation alone"] = explain_only
        for call in cases.values():
            await timed(call, 200)  # warm-up
        out: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(rounds):
            for name, call in cases.items():
                out[name].append(await timed(call, calls))
        out["_path"] = [0.0] if loaded.folded is None else [1.0]
    return out


HTTP_CASES = {
    "predict": "/predict",
    "predict?explain=true": "/predict?explain=true",
    "v2 infer": "/v2/models/houseprice/infer",
}


def over_http(model: str, work: Path, rounds: int) -> dict[str, list[WrkResult]]:
    """wrk on each case in turn, ``rounds`` times, against one ``python -m app``."""
    meta = json.loads(Path(model).with_suffix(".json").read_text())
    house = {f["name"]: f["example"] for f in meta["features"] if f["example"] is not None}
    bodies = {
        "predict": json.dumps(house),
        "predict?explain=true": json.dumps(house),
        "v2 infer": json.dumps(v2_request(house, meta["features"])),
    }
    paths = {}
    for name, text in bodies.items():
        paths[name] = work / f"{name.replace('?', '-').replace(' ', '-')}.json"
        paths[name].write_text(text)
    runs: dict[str, list[WrkResult]] = {name: [] for name in HTTP_CASES}
    with uvicorn_server(
        "app", {"MODEL_PATH": model}, work / "app.log", ROOT, "/health/ready"
    ) as url:
        for name, path in HTTP_CASES.items():
            run_wrk(url + path, paths[name], 16, 1, threads=2)  # warm-up
        for _ in range(rounds):
            for name, path in HTTP_CASES.items():
                runs[name].append(run_wrk(url + path, paths[name], 16, 1, threads=2))
    return runs


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--model", help="artifact (default: train the default model)")
    ap.add_argument("--rounds", type=int, default=15, help="rounds (15)")
    ap.add_argument("--calls", type=int, default=2000, help="requests per case per round (2000)")
    ap.add_argument("--wrk-rounds", type=int, default=15, help="wrk rounds, 0: none (15)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="houseprice-bench-") as tmp:
        model = args.model
        if model is None:
            from model.workflow.cli import main as houseprice

            model = str(Path(tmp) / "model.joblib")
            argv_train = ["train", "--config", str(CONFIG), "--out", model]
            argv_train += ["--runs-dir", str(Path(tmp) / "runs"), "--quiet", "--no-plots"]
            if houseprice(argv_train) != 0:
                raise SystemExit("training the benchmark model failed")
        res = asyncio.run(run(model, args.rounds, args.calls))
        http = over_http(model, Path(tmp), args.wrk_rounds) if args.wrk_rounds else None
    folded = res.pop("_path")[0] == 1.0

    def med(values: Sequence[float]) -> float:
        return float(statistics.median(values))

    def ratios(a: str, b: str) -> list[float]:
        return [x / y for x, y in zip(res[a], res[b], strict=True)]

    print(
        f"in-process ASGI calls, one house, {args.rounds} rounds of {args.calls} calls per case "
        "(thread CPU time, median of per-round means; "
        f"{'folded linear terms' if folded else 'general path'})"
    )
    print(f"machine: {describe('fastapi', 'pydantic')}")
    for name, values in res.items():
        print(f"{name:<24}{med(values):>9.1f} us  [{'/'.join(f'{v:.0f}' for v in values)}]")
    explain_cost = med(
        [e - p for e, p in zip(res["predict?explain=true"], res["predict"], strict=True)]
    )
    v2_ratio = med(ratios("predict", "v2 infer"))
    print()
    print(f"{'measure':<48}{'value':>10}  target")
    print(f"{'explain=true minus /predict (us a house)':<48}{explain_cost:>10.1f}  < 20")
    print(f"{'the explanation alone (us a house)':<48}{med(res['explanation alone']):>10.1f}  < 20")
    print(f"{'V2 throughput / /predict (CPU a request)':<48}{v2_ratio:>10.2f}  >= 0.75")
    if http is None:
        return 0
    print()
    print(f"over HTTP: wrk -t2 -c16 -d1s, one uvicorn worker, {args.wrk_rounds} rounds (medians)")
    print(f"{'case':<24}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}")
    for name, rs in http.items():
        rate = med([r.rate for r in rs])
        p50, p99 = med([r.p50_ms for r in rs]), med([r.p99_ms for r in rs])
        errors = sum(r.errors for r in rs)
        print(f"{name:<24}{rate:>9.0f}{p50:>9.2f}{p99:>9.2f}{errors:>8}")
    v2, q1, q3 = spread(round_ratios(http["v2 infer"], http["predict"]))
    ex, e1, e3 = spread(round_ratios(http["predict?explain=true"], http["predict"]))
    print(f"V2 / /predict (req/s): {v2:.2f} (quartiles {q1:.2f}-{q3:.2f}), target >= 0.75")
    print(f"explain=true / /predict (req/s): {ex:.2f} (quartiles {e1:.2f}-{e3:.2f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
