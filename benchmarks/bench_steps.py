"""Where one ``POST /predict`` request's CPU goes, step by step, beside the bare FastAPI route.

In process, without a socket: the app built by ``create_app`` (monitoring, intervals and the
feedback index on, as by default; ``app/serve.py``'s heap policy), and the bare FastAPI
``async def`` route of ``bench_service.py`` receiving the same body. Each case is timed in
thread CPU time (``time.thread_time``) over ``--calls`` calls, in turn, for ``--rounds``
rounds; the figures are medians of the per-round means.

Cases, from the outside in: the whole app; each layer of the middleware stack called
directly (so the difference between two consecutive layers is what the outer one costs);
the route's endpoint; then the steps inside it, each called alone on the same prepared input
(validation, the table, pricing, input quality, the metrics, the drift update, the answer,
its encoding, the after-answer hook, the access line). V2 infer is timed the same way when
``--v2``.

Run: ``.venv/bin/python benchmarks/bench_steps.py --model ARTIFACT [--rounds 15]
[--calls 2000] 2>/dev/null`` (the access lines go to stderr, as a deployed server writes
them). Prints a table; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from asgi import caller, http_scope  # noqa: E402 (benchmarks/, the script's folder)
from bench_asgi import v2_request  # noqa: E402
from bench_service import BARE_APP  # noqa: E402
from machine import describe  # noqa: E402

from app.logging import log_request  # noqa: E402
from app.main import create_app  # noqa: E402
from app.routes.common import encode_json  # noqa: E402
from app.serve import freeze_heap  # noqa: E402
from app.settings import Settings  # noqa: E402

Case = Callable[[], Awaitable[Any]]


def layers(app: Any, last: str) -> list[tuple[str, Any]]:
    """The middleware stack from the outside in, down to the layer named ``last`` (a class
    name) or the router: (class name, callable)."""
    out = []
    node = app.middleware_stack
    while node is not None:
        out.append((type(node).__name__, node))
        if node is app.router or type(node).__name__ == last:
            break
        node = getattr(node, "app", None)
    return out


def with_id(app: Any, ids: Any) -> Any:
    """``app`` called with a new request id in the scope, as the request middleware sets it."""

    async def call(scope: dict[str, Any], receive: Any, send: Any) -> None:
        scope["request_id"] = f"{next(ids):032x}"
        await app(scope, receive, send)

    return call


def bare_app() -> Any:
    namespace: dict[str, Any] = {}
    exec(BARE_APP, namespace)  # the same bare route bench_service.py serves
    return namespace["app"]


async def started(app: Any) -> Any:
    """Run the app's start-up; the caller leaves the returned context at the end."""
    context = app.router.lifespan_context(app)
    await context.__aenter__()
    return context


async def cases(model: str, v2: bool) -> tuple[dict[str, Case], list[Any]]:
    app = create_app(Settings(model_path=model, log_level="info"))
    bare = bare_app()
    contexts = [await started(app), await started(bare)]
    service = app.state.service
    loaded = service.ready_model()
    meta = loaded.metadata
    house = {f["name"]: f["example"] for f in meta["features"] if f["example"] is not None}
    body = json.dumps(house).encode()
    out: dict[str, Case] = {"bare, whole app": caller(bare, "POST", "/predict", body)}
    await out["bare, whole app"]()  # builds its middleware stack
    # FastAPI's own route needs the exit stack above it: down to that layer
    for name, layer in layers(bare, "AsyncExitStackMiddleware")[1:]:
        out[f"bare: from {name}"] = caller(layer, "POST", "/predict", body)
    out["ours, whole app"] = caller(app, "POST", "/predict", body)
    await out["ours, whole app"]()
    ids = iter(range(10**9))
    below_id = False
    for name, layer in layers(app, "TrafficRoutes")[1:]:  # the layers /predict goes through
        if below_id:  # a fresh id, as the middleware gives: the feedback index grows as served
            layer = with_id(layer, ids)
        out[f"ours: from {name}"] = caller(layer, "POST", "/predict", body)
        below_id = below_id or name == "Guard"
    # /predict's endpoint (a tree from before TrafficRoutes: the router's first route)
    routes: list[Any] = getattr(app, "traffic_routes", None) or app.router.routes
    endpoint = routes[0].app
    rid_scope = http_scope("POST", "/predict", body)

    async def endpoint_only() -> None:
        message = {"type": "http.request", "body": body, "more_body": False}

        async def receive() -> dict[str, Any]:
            return message

        async def send(m: Any) -> None:
            pass

        await endpoint({**rid_scope, "request_id": f"{next(ids):032x}"}, receive, send)

    out["ours: the /predict endpoint"] = endpoint_only
    rows, _ = loaded.schema.validate(body)
    table, values = loaded.tabulate(rows)
    prices = loaded.predict(table)
    priced = service.price(loaded, table, "0" * 32, values)
    requests = service.metrics.requests
    content = {
        "price": prices[0],
        "interval": loaded.interval.of(prices[0]) if loaded.interval is not None else None,
        "model_version": loaded.version,
        "request_id": "0" * 32,
        "unknown_categories": {},
    }

    def step(fn: Callable[[], Any]) -> Case:
        async def call() -> None:
            fn()

        return call

    out["step: validate the body"] = step(lambda: loaded.schema.validate(body))
    out["step: the table"] = step(lambda: loaded.table(rows))
    out["step: predict (folded)"] = step(lambda: loaded.predict(table))
    out["step: input quality"] = step(lambda: loaded.quality(table))
    out["step: observe_prediction"] = step(
        lambda: requests.observe_prediction(loaded.version, prices, {}, {}, Counter())
    )
    if loaded.monitor is not None:
        monitor = loaded.monitor
        out["step: drift update"] = step(lambda: monitor.add_rows(values, prices))
    out["step: price (all of the above but validation and the table)"] = step(
        lambda: service.price(loaded, table, "0" * 32, values)
    )
    if loaded.interval is not None:
        rule = loaded.interval
        out["step: the interval"] = step(lambda: rule.of(prices[0]))
    out["step: encode the answer"] = step(lambda: encode_json(content))
    out["step: after-answer hook"] = step(
        lambda: service.traffic.served(loaded, priced, f"{next(ids):032x}")
    )
    out["step: observe_request"] = step(
        lambda: requests.observe_request("POST", "/predict", 200, 0.0001, 600, 200)
    )
    started_at = time.perf_counter()
    out["step: access line"] = step(
        lambda: log_request("POST", "/predict", 200, started_at, "0" * 32, "127.0.0.1")
    )
    if v2:
        v2_body = json.dumps(v2_request(house, meta["features"])).encode()
        out["V2 infer, whole app"] = caller(app, "POST", "/v2/models/houseprice/infer", v2_body)
    return out, contexts


async def run(model: str, rounds: int, calls: int, v2: bool) -> dict[str, list[float]]:
    table, contexts = await cases(model, v2)
    for call in table.values():
        for _ in range(200):
            await call()
    freeze_heap()
    times: dict[str, list[float]] = {name: [] for name in table}
    for _ in range(rounds):
        for name, call in table.items():
            t0 = time.thread_time()
            for _ in range(calls):
                await call()
            times[name].append((time.thread_time() - t0) / calls * 1e6)
    for context in contexts:
        await context.__aexit__(None, None, None)
    return times


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--model", required=True, help="the artifact to serve")
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--v2", action="store_true", help="also V2 infer")
    args = ap.parse_args()
    times = asyncio.run(run(args.model, args.rounds, args.calls, args.v2))
    print(
        f"{args.rounds} rounds of {args.calls} calls; thread CPU us per call (median, quartiles);"
        " 'own': the layer alone, the median per-round difference to the next row"
    )
    print(f"machine: {describe('fastapi', 'pydantic')}")
    names = list(times)
    for i, name in enumerate(names):
        values = times[name]
        q = statistics.quantiles(values, n=4) if len(values) > 1 else values * 3
        line = f"{name:<50}{statistics.median(values):>8.1f}   ({q[0]:.1f}-{q[2]:.1f})"
        following = names[i + 1] if i + 1 < len(names) else ""
        group = name.split(",")[0].split(":")[0]
        if group in ("bare", "ours") and following.startswith(group + ":"):
            own = [a - b for a, b in zip(values, times[following], strict=True)]
            line += f"   own {statistics.median(own):6.1f}"
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
