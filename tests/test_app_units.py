"""Unit tests of the service's pieces that need no model: settings, metrics, auth, schema."""

from __future__ import annotations

import math
import re
import signal

import numpy as np
import pytest
from exposition import metric  # tests/exposition.py
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from pydantic import ValidationError

from app.metrics import (
    BATCH_BUCKETS,
    LATENCY_BUCKETS,
    PRICE_BUCKETS,
    SIZE_BUCKETS,
    Metrics,
    latency_buckets,
)
from app.schemas import FeatureSpec, build_request_schema, error_list
from app.settings import Settings, SettingsError
from app.state import Service

# --- settings ----------------------------------------------------------------------------------


def test_settings_defaults_are_the_documented_ones() -> None:
    s = Settings.from_env({})
    assert s == Settings()
    assert (s.model_path, s.host, s.port, s.log_level) == (
        "artifacts/model.joblib",
        "127.0.0.1",
        8000,
        "info",
    )
    assert (s.max_batch_size, s.max_body_bytes) == (10_000, 16 * 1024 * 1024)
    assert s.admin_token is None and s.model_signing_key is None
    assert (s.drift_window, s.drift_min_samples, s.drift_psi_threshold) == (1000, 200, 0.25)
    assert s.monitoring_enabled is True
    assert (s.body_timeout, s.otel_enabled) == (30.0, False)


def test_settings_read_every_variable() -> None:
    env = {
        "MODEL_PATH": "/m/x.joblib",
        "MODEL_SIGNING_KEY": "s1gn-k3y",
        "HOST": "0.0.0.0",
        "PORT": "9000",
        "LOG_LEVEL": "WARNING",
        "MAX_BATCH_SIZE": "5",
        "MAX_BODY_BYTES": "1024",
        "ADMIN_TOKEN": "adm1n-s3cret",
        "DRIFT_WINDOW": "50",
        "DRIFT_MIN_SAMPLES": "10",
        "DRIFT_PSI_THRESHOLD": "0.1",
        "MONITORING_ENABLED": "false",
        "BODY_TIMEOUT": "2.5",
        "OTEL_ENABLED": "true",
    }
    s = Settings.from_env(env)
    assert s == Settings(
        model_path="/m/x.joblib",
        model_signing_key="s1gn-k3y",
        host="0.0.0.0",
        port=9000,
        log_level="warning",
        max_batch_size=5,
        max_body_bytes=1024,
        admin_token="adm1n-s3cret",
        drift_window=50,
        drift_min_samples=10,
        drift_psi_threshold=0.1,
        monitoring_enabled=False,
        body_timeout=2.5,
        otel_enabled=True,
    )
    assert "adm1n-s3cret" not in repr(s) and "s1gn-k3y" not in repr(s)


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({"MAX_BATCH_SIZE": "10k"}, "MAX_BATCH_SIZE"),
        ({"MAX_BATCH_SIZE": "0"}, "MAX_BATCH_SIZE"),
        ({"PORT": "-1"}, "PORT"),
        ({"LOG_LEVEL": "loud"}, "LOG_LEVEL"),
        ({"MONITORING_ENABLED": "maybe"}, "MONITORING_ENABLED"),
        ({"OTEL_ENABLED": "sometimes"}, "OTEL_ENABLED"),
        ({"BODY_TIMEOUT": "0"}, "BODY_TIMEOUT"),
        ({"DRIFT_PSI_THRESHOLD": "nan"}, "DRIFT_PSI_THRESHOLD"),
        ({"DRIFT_PSI_THRESHOLD": "-1"}, "DRIFT_PSI_THRESHOLD"),
        ({"DRIFT_WINDOW": "100", "DRIFT_MIN_SAMPLES": "200"}, "DRIFT_MIN_SAMPLES"),
    ],
)
def test_settings_errors_name_the_variable(env: dict[str, str], name: str) -> None:
    with pytest.raises(SettingsError, match=name):
        Settings.from_env(env)


# --- metrics -----------------------------------------------------------------------------------


def test_prediction_metrics_expose_what_the_client_types_would() -> None:
    """The same exposition as a prometheus_client Counter and Histograms."""
    rng = np.random.default_rng(1)
    values = np.concatenate(
        [rng.lognormal(12, 0.5, 500), np.asarray(PRICE_BUCKETS)[:5], [1e7, 0.0]]
    )  # values exactly on a bound must fall in that bucket (le is inclusive)
    reference = CollectorRegistry()
    count = Counter("houseprice_predictions", "-", ["model_version", "role"], registry=reference)
    sizes = Histogram(
        "houseprice_prediction_batch_size", "-", buckets=BATCH_BUCKETS, registry=reference
    )
    prices = Histogram(
        "houseprice_predicted_price_dollars",
        "-",
        ["model_version", "role"],
        buckets=PRICE_BUCKETS,
        registry=reference,
    )
    missing = Counter("houseprice_input_missing", "-", ["feature"], registry=reference)
    ours = Metrics()
    requests = [values[:300], values[300:301], values[301:450], *np.split(values[450:], 57)]
    for k, batch in enumerate(requests):
        version = "a" if k % 3 else "b"
        ours.requests.observe_prediction(version, batch.tolist(), {"area": k % 2}, {}, {})
        count.labels(version, "champion").inc(len(batch))
        sizes.observe(len(batch))
        missing.labels("area").inc(k % 2)
        for x in batch:
            prices.labels(version, "champion").observe(float(x))
    _assert_same_samples(
        reference,
        ours,
        "houseprice_predictions_total",
        "houseprice_prediction_batch_size",
        "houseprice_predicted_price_dollars",
        "houseprice_input_missing_total",
    )


def test_two_apps_have_separate_registries() -> None:
    a, b = Metrics(), Metrics()
    a.requests.observe_prediction("x", [1.0, 1.0, 1.0], {}, {}, {})
    assert b"houseprice_predictions_total{" not in generate_latest(b.registry)
    assert (
        b'houseprice_predictions_total{model_version="x",role="champion"} 3.0'
        in generate_latest(a.registry)
    )


def test_http_metrics_expose_what_the_client_types_would() -> None:
    """The HTTP metrics against prometheus_client's Counter/Histogram/Gauge."""
    rng = np.random.default_rng(2)
    reference = CollectorRegistry()
    requests = Counter(
        "houseprice_http_requests", "-", ["method", "route", "status"], registry=reference
    )
    duration = Histogram(
        "houseprice_http_request_duration_seconds",
        "-",
        ["method", "route"],
        buckets=LATENCY_BUCKETS,
        registry=reference,
    )
    sizes = {
        kind: Histogram(
            f"houseprice_http_{kind}_size_bytes", "-", ["route"], buckets=SIZE_BUCKETS,
            registry=reference,
        )
        for kind in ("request", "response")
    }  # fmt: skip
    in_flight = Gauge("houseprice_http_requests_in_flight", "-", registry=reference)
    ours = Metrics()
    calls = [
        (str(rng.choice(["GET", "POST"])), str(rng.choice(["/predict", "unmatched"])),
         int(rng.choice([200, 201, 404, 422, 500])), float(rng.lognormal(-7, 2)),
         int(rng.integers(0, 5_000_000)), int(rng.integers(0, 20_000)))
        for _ in range(400)
    ]  # fmt: skip
    on_bounds = ("POST", "/predict", 200, LATENCY_BUCKETS[3], int(SIZE_BUCKETS[2]), 0)
    calls.append(on_bounds)  # le is inclusive: a value on a bound counts in that bucket
    for method, route, status, seconds, got, sent in calls:
        requests.labels(method, route, f"{status // 100}xx").inc()
        duration.labels(method, route).observe(seconds)
        sizes["request"].labels(route).observe(got)
        sizes["response"].labels(route).observe(sent)
        ours.requests.observe_request(method, route, status, seconds, got, sent)
    in_flight.inc(3)
    ours.requests.in_flight = 3
    _assert_same_samples(
        reference,
        ours,
        "houseprice_http_requests_total",
        "houseprice_http_request_duration_seconds",
        "houseprice_http_request_size_bytes",
        "houseprice_http_response_size_bytes",
        "houseprice_http_requests_in_flight",
    )


def _assert_same_samples(reference: CollectorRegistry, ours: Metrics, *prefixes: str) -> None:
    want, got = generate_latest(reference).decode(), generate_latest(ours.registry).decode()
    for prefix in prefixes:
        w, g = _all_samples(want, prefix), _all_samples(got, prefix)
        assert w and g.keys() == w.keys(), prefix
        for key, value in w.items():
            assert g[key] == pytest.approx(value, rel=1e-12), key


def _all_samples(text: str, prefix: str) -> dict[str, float]:
    """Every sample line of a family but ``_created``, by its name and labels."""
    out = {}
    for line in text.splitlines():
        if line.startswith(prefix) and "_created" not in line:
            key, value = line.rsplit(" ", 1)
            out[key] = float(value)
    return out


def test_requests_from_threads_are_all_counted() -> None:
    """Requests from several threads at once: every one is counted, as prometheus_client's
    own types count them."""
    import threading

    reference = CollectorRegistry()
    requests = Counter(
        "houseprice_http_requests", "-", ["method", "route", "status"], registry=reference
    )
    duration = Histogram(
        "houseprice_http_request_duration_seconds",
        "-",
        ["method", "route"],
        buckets=LATENCY_BUCKETS,
        registry=reference,
    )
    prices = Histogram(
        "houseprice_predicted_price_dollars",
        "-",
        ["model_version", "role"],
        buckets=PRICE_BUCKETS,
        registry=reference,
    )
    missing = Counter("houseprice_input_missing", "-", ["feature"], registry=reference)
    ours = Metrics()
    per_thread = 1300

    def drive(k: int) -> None:
        rng = np.random.default_rng(k)
        for i in range(per_thread):
            seconds, price = float(rng.lognormal(-7, 2)), float(rng.lognormal(12, 0.5))
            ours.requests.observe_request("POST", "/predict", 200 + i % 2, seconds, 300, 90)
            ours.requests.observe_prediction(f"v{k % 2}", [price], {"area": i % 2}, {}, {})

    threads = [threading.Thread(target=drive, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k in range(4):
        rng = np.random.default_rng(k)
        for i in range(per_thread):
            seconds, price = float(rng.lognormal(-7, 2)), float(rng.lognormal(12, 0.5))
            requests.labels("POST", "/predict", "2xx").inc()
            duration.labels("POST", "/predict").observe(seconds)
            prices.labels(f"v{k % 2}", "champion").observe(price)
            missing.labels("area").inc(i % 2)
    _assert_same_samples(
        reference,
        ours,
        "houseprice_http_requests_total",
        "houseprice_http_request_duration_seconds",
        "houseprice_predicted_price_dollars",
        "houseprice_input_missing_total",
    )


def test_unknown_methods_fold_into_other() -> None:
    """A client inventing methods cannot multiply the series."""
    m = Metrics()
    for method in ("GET", "PROPFIND", "BREW", "get", "X" * 50):
        m.requests.observe_request(method, "unmatched", 405, 0.001, 0, 10)
    text = generate_latest(m.registry).decode()
    http = "houseprice_http_requests_total"
    assert metric(text, http, method="GET", route="unmatched") == 1
    assert metric(text, http, method="other", route="unmatched") == 4
    assert len(re.findall(rf"^{http}{{", text, re.M)) == 2


def test_latency_buckets_start_at_a_tenth_of_a_millisecond_and_cover_the_body_deadline() -> None:
    m = Metrics()
    m.requests.observe_request("GET", "/x", 200, 0.00005, 0, 10)
    text = generate_latest(m.registry).decode()
    line = re.search(r'houseprice_http_request_duration_seconds_bucket\{le="0.0001".*', text)
    assert line is not None and line.group(0).endswith(" 1.0")
    assert 'le="30.0"' in text  # BODY_TIMEOUT's default
    assert latency_buckets(30.0)[-1] == 30.0
    assert latency_buckets(90.0)[-1] == 90.0  # a longer deadline gets its own top bucket
    m = Metrics(body_timeout=90.0)
    m.requests.observe_request("POST", "/predict", 408, 89.0, 0, 10)
    text = generate_latest(m.registry).decode()
    bucket = "houseprice_http_request_duration_seconds_bucket"
    assert metric(text, bucket, le="90.0") == 1 and metric(text, bucket, le="30.0") == 0


# --- admin auth --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("token", "header", "expected"),
    [
        ("t0k", None, 401),
        ("t0k", "t0k", 401),
        ("t0k", "Token t0k", 401),
        ("t0k", "Bearer", 401),
        ("t0k", "Bearer wrong", 403),
        ("t0k", "Bearer t0k", None),
        ("t0k", "bearer t0k", None),
        (None, "Bearer t0k", 403),
    ],
)
def test_check_admin(token: str | None, header: str | None, expected: int | None) -> None:
    svc = Service(Settings(admin_token=token))
    assert svc.check_admin(header) == expected


# --- request schema ----------------------------------------------------------------------------

SPECS = [
    FeatureSpec.from_metadata(e)
    for e in [
        {
            "name": "area",
            "kind": "numeric",
            "unit": "sq ft",
            "description": "Area",
            "required": True,
            "bounds": [1, 100],
            "min": 10,
            "max": 90,
            "example": 50,
        },
        {"name": "rooms", "kind": "numeric", "required": False, "example": 3},
        {
            "name": "town",
            "kind": "categorical",
            "required": True,
            "categories": ["A", "B"],
            "example": "A",
        },
    ]
]


def test_feature_spec_reads_metadata() -> None:
    area, rooms, town = SPECS
    assert (area.lo, area.hi, area.bounds, area.required) == (10.0, 90.0, (1.0, 100.0), True)
    assert (rooms.lo, rooms.hi, rooms.bounds) == (-math.inf, math.inf, None)
    assert town.categories == {"A", "B"}
    with pytest.raises(ValueError, match="kind"):
        FeatureSpec.from_metadata({"name": "x", "kind": "text"})
    with pytest.raises(ValueError, match="'kind'"):
        FeatureSpec.from_metadata({"name": "x"})


def test_schema_validates_one_house_and_batches() -> None:
    schema = build_request_schema(SPECS, max_batch_size=2)
    rows, batch = schema.validate(b'{"area": 5, "town": "Z"}')
    assert not batch and rows[0].model_dump() == {"area": 5.0, "rooms": None, "town": "Z"}
    rows, batch = schema.validate(
        b'{"instances": [{"area": 5, "town": "A"}, {"area": 6.5, "town": "B"}]}'
    )
    assert batch and [r.area for r in rows] == [5.0, 6.5]  # type: ignore[attr-defined]
    # a category value that happens to be "instances" is still one house
    rows, batch = schema.validate(b'{"area": 5, "town": "instances"}')
    assert not batch and rows[0].town == "instances"  # type: ignore[attr-defined]
    for body, loc in [
        (b'{"instances": [{"area": 5, "town": "A"}] , "x": 1}', ["body", "x"]),
        (b'{"instances": [{}, {}, {}]}', ["body", "instances"]),
        (b'{"area": 101, "town": "A"}', ["body", "area"]),
        (b'{"area": 0.5, "town": "A"}', ["body", "area"]),
    ]:
        with pytest.raises(ValidationError) as info:
            schema.validate(body)
        assert any(e["loc"][: len(loc)] == loc for e in error_list(info.value, 20)), body


def test_schema_example_row_is_valid() -> None:
    schema = build_request_schema(SPECS, max_batch_size=10)
    assert schema.example == {"area": 50, "rooms": 3, "town": "A"}
    schema.house.model_validate(schema.example)


# --- SIGTERM hook ------------------------------------------------------------------------------


def test_sigterm_flips_readiness_and_drains_without_re_raising(artifact_path: str) -> None:
    """``app.serve.Server.handle_exit``: SIGTERM makes readiness 503 at once, stops the
    server (uvicorn then drains), and is not re-raised after the drain (exit 0, not 143);
    SIGINT keeps uvicorn's own handling."""
    import uvicorn

    from app.main import create_app
    from app.serve import Server

    app = create_app(Settings.from_env({"MODEL_PATH": artifact_path}))
    svc: Service = app.state.service
    server = Server(uvicorn.Config(app), svc)
    server.handle_exit(signal.SIGTERM, None)
    assert svc.holder.shutting_down and not svc.holder.ready
    assert server.should_exit and server._captured_signals == []
    server = Server(uvicorn.Config(app), svc)
    server.handle_exit(signal.SIGINT, None)
    assert server.should_exit and server._captured_signals == [signal.SIGINT]


# --- access log --------------------------------------------------------------------------------


def test_access_line_is_valid_json_for_awkward_paths(capfd: pytest.CaptureFixture[str]) -> None:
    import json
    import logging
    import time

    from app.logging import ACCESS_LOGGER, configure_logging, log_request

    configure_logging("info")
    path = '/predict/"quoted"\\back\u00e9\n'
    log_request("POST", path, 404, time.perf_counter(), "abc-1", None)
    (line,) = [x for x in capfd.readouterr().err.splitlines() if x.startswith("{")]
    record = json.loads(line)
    assert record["path"] == path and record["status"] == 404 and record["client"] is None
    assert record["logger"] == ACCESS_LOGGER and record["latency_ms"] >= 0

    class Collect(logging.Handler):  # no .stream: the ordinary logging path is taken
        def __init__(self) -> None:
            super().__init__()
            self.records: list[logging.LogRecord] = []

        def emit(self, record: logging.LogRecord) -> None:
            self.records.append(record)

    collect = Collect()
    logging.getLogger(ACCESS_LOGGER).handlers[:] = [collect]
    try:
        log_request("GET", "/x", 200, time.perf_counter(), "rid", "10.0.0.1")
    finally:
        configure_logging("info")
    (rec,) = collect.records
    assert (rec.path, rec.status, rec.request_id, rec.client) == ("/x", 200, "rid", "10.0.0.1")  # type: ignore[attr-defined]


def test_access_line_reaches_each_handler_once_whatever_its_kind() -> None:
    """A stream handler beside other handlers: each gets one line (or record) per request,
    at the same time, and a handler above INFO none."""
    import io
    import json
    import logging
    import time

    from app.logging import ACCESS_LOGGER, configure_logging, log_request

    class Collect(logging.Handler):
        def __init__(self, level: int = logging.NOTSET) -> None:
            super().__init__(level)
            self.records: list[logging.LogRecord] = []

        def emit(self, record: logging.LogRecord) -> None:
            self.records.append(record)

    text = io.StringIO()
    stream = logging.StreamHandler(text)
    first, second, quiet = Collect(), Collect(), Collect(logging.WARNING)
    logging.getLogger(ACCESS_LOGGER).handlers[:] = [first, stream, second, quiet]
    try:
        log_request("GET", "/y", 201, time.perf_counter(), "one", None)
    finally:
        configure_logging("info")
    (line,) = text.getvalue().splitlines()
    assert json.loads(line)["request_id"] == "one"
    assert [len(first.records), len(second.records), len(quiet.records)] == [1, 1, 0]
    assert first.records[0].getMessage() == "request"
    assert abs(first.records[0].created - json.loads(line)["ts"]) < 1e-5


def test_access_lines_of_one_loop_turn_share_one_write(monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio
    import json
    import logging
    import time

    from app.logging import ACCESS_LOGGER, configure_logging, log_request

    writes: list[str] = []

    class Stream:
        def write(self, text: str) -> None:
            writes.append(text)

        def flush(self) -> None:
            pass

    configure_logging("info")
    monkeypatch.setattr("sys.stderr", Stream())

    async def requests_in_one_turn() -> int:
        for i in range(5):
            log_request("POST", "/predict", 200, time.perf_counter(), f"r{i}", None)
        pending = len(writes)  # nothing written yet: the turn is not over
        await asyncio.sleep(0)
        return pending

    try:
        assert asyncio.run(requests_in_one_turn()) == 0
        assert len(writes) == 1 and writes[0].count("\n") == 5
        assert [json.loads(x)["request_id"] for x in writes[0].splitlines()] == [
            f"r{i}" for i in range(5)
        ]
        asyncio.run(requests_in_one_turn())  # a new loop: its lines are written too
        assert len(writes) == 2 and writes[1].count("\n") == 5
        log_request("GET", "/x", 200, time.perf_counter(), "now", None)  # no loop: at once
        assert len(writes) == 3 and json.loads(writes[2])["request_id"] == "now"
        assert logging.getLogger(ACCESS_LOGGER).handlers  # still the configured handler
    finally:
        configure_logging("info")


def test_encode_json_writes_what_json_dumps_writes_and_refuses_what_it_refuses() -> None:
    """The answers' encoder (pydantic-core, the stdlib's strict encoder behind it): the same
    JSON values as ``json.dumps(allow_nan=False)``; a non-finite float is a ValueError, an
    unknown type a TypeError; text that only says NaN, and a lone surrogate, are encoded."""
    import json

    from app.routes.common import encode_json

    answer = {
        "price": 201234.56789012346,
        "interval": {"level": 0.9, "low": 1e-7, "high": 1e16},
        "request_id": "NaN-Infinity",
        "unknown_categories": {"hood": "Café", "odd": "x\ud800"},
        "prices": [1, 2.5, None, True],
    }
    got = encode_json(answer)
    assert json.loads(got) == answer
    assert b" " not in got.replace(b"NaN-Infinity", b"")  # compact
    for bad in (math.nan, math.inf, -math.inf):
        with pytest.raises(ValueError):
            encode_json({"price": bad})
    with pytest.raises(TypeError):
        encode_json({"price": object()})


# --- the bounded request head (app/serve.py) ---------------------------------------------------


class _Transport:
    """What the protocol writes, and whether it closed the connection."""

    def __init__(self) -> None:
        self.written = b""
        self.closed = False

    def write(self, data: bytes) -> None:
        self.written += data

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: object = None) -> object:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 5000)}.get(name, default)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def _feed(
    chunks: list[bytes], max_head_bytes: int = 1024, max_headers: int = 10
) -> tuple[_Transport, list[tuple[int, str]], list[dict[str, object]]]:
    """Feed ``chunks`` to a bounded protocol in turn (the app answers 200 to each request,
    reading its body); what it wrote, what it refused and the scopes the app saw."""
    import asyncio

    import uvicorn
    from uvicorn.server import ServerState

    from app.serve import bounded_protocol

    seen: list[dict[str, object]] = []

    async def app(scope: dict[str, object], receive: object, send: object) -> None:
        seen.append(scope)
        while (await receive())["more_body"]:  # type: ignore[operator]
            pass
        await send({"type": "http.response.start", "status": 200,  # type: ignore[operator]
                    "headers": [(b"content-length", b"0")]})  # fmt: skip
        await send({"type": "http.response.body", "body": b""})  # type: ignore[operator]

    refused: list[tuple[int, str]] = []
    transport = _Transport()

    async def main() -> None:
        config = uvicorn.Config(app, log_config=None, access_log=False)  # type: ignore[arg-type]
        config.load()
        cls = bounded_protocol(max_head_bytes, max_headers, lambda s, r: refused.append((s, r)))
        protocol = cls(config, ServerState(), {}, asyncio.get_running_loop())
        protocol.connection_made(transport)  # type: ignore[arg-type]
        for chunk in chunks:
            if transport.closed:
                break
            protocol.data_received(chunk)
            for _ in range(5):  # let the app's task answer before the next chunk
                await asyncio.sleep(0)

    asyncio.run(main())
    return transport, refused, seen


def _head(fields: int, path: bytes = b"/x", body: bytes = b"") -> bytes:
    lines = b"".join(b"X-F%d: v\r\n" % i for i in range(fields - 2))
    return b"POST %s HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n%s\r\n%s" % (
        path,
        len(body),
        lines,
        body,
    )


def test_the_head_may_have_max_headers_fields_and_one_more_is_431_and_closed() -> None:
    transport, refused, seen = _feed([_head(10)])
    assert len(seen) == 1 and len(seen[0]["headers"]) == 10  # type: ignore[arg-type]
    assert transport.written.startswith(b"HTTP/1.1 200") and not transport.closed
    transport, refused, seen = _feed([_head(11)])
    assert seen == [] and transport.closed
    assert transport.written.startswith(b"HTTP/1.1 431")
    assert transport.written.count(b"HTTP/1.1") == 1  # no 400 after the 431
    assert refused == [(431, "more than 10 header fields")]


def test_the_head_may_fill_the_byte_budget_and_one_byte_more_is_431() -> None:
    base = len(_head(2, b"/"))
    for extra, allowed in ((0, True), (1, False)):
        head = _head(2, b"/" + b"p" * (1024 - base + extra))
        transport, refused, seen = _feed([head])
        assert (len(seen) == 1) is allowed, extra
        if not allowed:
            assert transport.written.startswith(b"HTTP/1.1 431") and transport.closed
            assert refused == [(431, "request head over 1024 bytes")]


def test_an_endless_header_line_in_small_chunks_is_refused_once_the_budget_is_spent() -> None:
    chunks = [b"GET /x HTTP/1.1\r\nHost: t\r\nX-Endless: "] + [b"a" * 100] * 50
    transport, refused, seen = _feed(chunks)
    assert seen == [] and transport.closed and transport.written.startswith(b"HTTP/1.1 431")
    assert refused == [(431, "request head over 1024 bytes")]


def test_a_body_is_not_counted_as_head_and_each_request_has_its_own_budget() -> None:
    body = b"b" * 5000  # five budgets of body, in one chunk with its head
    head = _head(10, b"/" + b"p" * 600)  # each head well over half the budget
    transport, refused, seen = _feed([_head(10, body=body), head, head, head + head])
    assert refused == [] and not transport.closed
    assert len(seen) == 5 and transport.written.count(b"HTTP/1.1 200") == 5
