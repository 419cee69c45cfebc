"""Hostile input against a real uvicorn process: every attack gets a 4xx or a clean close.

Deep JSON, a 100 MB body, extreme numbers, unicode in categories, an over-size batch,
slow-loris connections, and the admin route's token handling. After each attack the process
must still be healthy (``/health/live`` 200, a normal prediction 200), its memory must not
have swallowed the payload, and its logs must hold neither the admin token nor a payload.
"""

from __future__ import annotations

import inspect
import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from exposition import metric  # tests/exposition.py

from app.state import Service

from .conftest import Server, start_server

pytestmark = pytest.mark.e2e

TOKEN = "hostile-admin-token-5f1e0c9a7b3d"
BODY_TIMEOUT = 2.0
KEEP_ALIVE = 1
SENTINEL = "PAYLOAD-SENTINEL-3c9d"  # sent inside bodies; must never reach the logs


@pytest.fixture(scope="module")
def server(artifact_path: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for the whole module (the shared harness, started once)."""
    log = tmp_path_factory.mktemp("hostile") / "server.log"
    srv = start_server(
        {
            "MODEL_PATH": artifact_path,
            "ADMIN_TOKEN": TOKEN,
            "BODY_TIMEOUT": str(BODY_TIMEOUT),
            "LOG_LEVEL": "info",
            "KEEP_ALIVE_TIMEOUT": str(KEEP_ALIVE),
        },
        log,
    )
    yield srv
    assert srv.stop() == 0


@pytest.fixture(scope="module")
def house(server: Server) -> dict[str, Any]:
    features = httpx.get(server.url + "/model").json()["features"]
    return {f["name"]: f["example"] for f in features if f.get("example") is not None}


def assert_healthy(server: Server, house: dict[str, Any]) -> None:
    assert server.proc.poll() is None, "the server died"
    with httpx.Client(base_url=server.url, timeout=10) as c:
        assert c.get("/health/live").status_code == 200
        assert c.get("/health/ready").status_code == 200
        r = c.post("/predict", json=house)
        assert r.status_code == 200, r.text


def rss_kb(server: Server) -> int:
    for line in Path(f"/proc/{server.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def open_fds(server: Server) -> int:
    return len(list(Path(f"/proc/{server.proc.pid}/fd").iterdir()))


def port(server: Server) -> int:
    return int(server.url.rsplit(":", 1)[1])


def post_raw(server: Server, path: str, body: bytes) -> httpx.Response:
    return httpx.post(
        server.url + path,
        content=body,
        headers={"content-type": "application/json", "authorization": f"Bearer {TOKEN}"},
        timeout=30,
    )


# --- deep and huge JSON ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/predict", "/feedback", "/v2/models/houseprice/infer", "/admin/reload"]
)
@pytest.mark.parametrize("shape", ["arrays", "objects", "instances"])
def test_deeply_nested_json_is_a_4xx(
    server: Server, house: dict[str, Any], path: str, shape: str
) -> None:
    depth = 100_000
    body = {
        "arrays": b"[" * depth + b"]" * depth,
        "objects": b'{"a":' * depth + b"1" + b"}" * depth,
        "instances": b'{"instances":' + b"[" * depth + b"]" * depth + b"}",
    }[shape]
    r = post_raw(server, path, body)
    assert 400 <= r.status_code < 500, (r.status_code, r.text[:300])
    assert_healthy(server, house)


def test_batch_of_10001_rows_is_refused_and_10000_accepted(
    server: Server, house: dict[str, Any]
) -> None:
    over = post_raw(server, "/predict", json.dumps({"instances": [house] * 10_001}).encode())
    assert over.status_code == 422, over.text[:300]
    assert over.json()["detail"][0]["loc"][:2] == ["body", "instances"]
    at = post_raw(server, "/predict", json.dumps({"instances": [house] * 10_000}).encode())
    assert at.status_code == 200
    assert len(at.json()["prices"]) == 10_000
    v2 = {
        "inputs": [
            {
                "name": k,
                "shape": [10_001],
                "datatype": "BYTES" if isinstance(v, str) else "FP64",
                "data": [v] * 10_001,
            }
            for k, v in house.items()
        ]
    }
    r = post_raw(server, "/v2/models/houseprice/infer", json.dumps(v2).encode())
    assert r.status_code == 400 and "batch limit" in r.json()["error"]
    assert_healthy(server, house)


def _stream_100mb(server: Server, chunked: bool) -> tuple[int, bytes]:
    """Send up to 100 MB as fast as the server takes it; return (bytes sent, reply)."""
    total = 100 * 1024 * 1024
    chunk = b'{"instances":[' + b" " * (1024 * 1024 - 14)
    head = b"POST /predict HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
    head += (
        b"Transfer-Encoding: chunked\r\n\r\n" if chunked else b"Content-Length: %d\r\n\r\n" % total
    )
    sent = 0
    reply = b""
    with socket.create_connection(("127.0.0.1", port(server)), timeout=10) as s:
        s.sendall(head)
        try:
            while sent < total:
                s.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed the connection: what we want
        try:
            while True:
                data = s.recv(65536)
                if not data:
                    break  # closed by the server
                reply += data
        except ConnectionResetError:
            pass
    return sent, reply


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_100_mb_body_is_refused_early_without_buffering(
    server: Server, house: dict[str, Any], chunked: bool
) -> None:
    before = rss_kb(server)
    peak = [before]
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            peak.append(rss_kb(server))
            time.sleep(0.01)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        sent, reply = _stream_100mb(server, chunked)
    finally:
        done.set()
        watcher.join()
    assert reply.startswith(b"HTTP/1.1 413"), reply[:200]
    assert b"connection: close" in reply.lower()
    # Refused by size: a declared length before any byte is read, a chunked body once the
    # 16 MiB limit is passed; either way the server stopped reading long before 100 MB.
    assert sent < (40 if chunked else 8) * 1024 * 1024, sent
    grew_mb = (max(peak) - before) / 1024
    assert grew_mb < 40, f"RSS grew {grew_mb:.0f} MB while receiving the body"
    assert_healthy(server, house)


# --- numbers and strings -----------------------------------------------------------------------


def _with(house: dict[str, Any], field: str, raw: str) -> bytes:
    """The house as JSON text with ``field`` set to the literal JSON text ``raw``."""
    body = json.dumps({**house, field: "@@"})
    return body.replace('"@@"', raw).encode()


@pytest.mark.parametrize(
    ("field", "raw", "expect"),
    [
        ("living_area", "1e308", 422),  # finite but over the field's bound
        ("lot_area", "1e308", 422),
        ("living_area", "1e400", 422),  # parses to inf: not a finite number
        ("living_area", "-1e400", 422),
        ("living_area", "NaN", 422),  # not JSON; parsed as an extension, refused by name
        ("living_area", "Infinity", 422),
        ("living_area", "-Infinity", 422),
        ("living_area", "1" + "0" * 400, 422),  # a 401-digit integer
        ("living_area", "-0.0", 422),  # below the bound of 1 sq ft
        ("total_basement_sf", "-0.0", 200),  # equal to the bound 0: a valid zero
        ("bedrooms", "-0.0", 200),
        ("living_area", "4.9e-324", 422),  # subnormal, below the bound
        ("total_basement_sf", "4.9e-324", 200),
        ("living_area", "true", 422),
        ("living_area", '"1500"', 422),
    ],
)
def test_extreme_numbers(
    server: Server, house: dict[str, Any], field: str, raw: str, expect: int
) -> None:
    r = post_raw(server, "/predict", _with(house, field, raw))
    assert r.status_code == expect, (raw, r.status_code, r.text[:300])
    if expect == 200:
        price = r.json()["price"]
        assert isinstance(price, float) and 1_000 < price < 10_000_000
    else:
        assert r.json()["detail"][0]["loc"][0] == "body"
    assert_healthy(server, house)


@pytest.mark.parametrize(
    "value",
    [
        "Ñämés",
        "🏠🏚️",
        "\u202eemaNN",  # right-to-left override
        "a\u0000b",  # NUL
        "\u200b",  # zero-width space
        "名前" * 50,  # 100 characters, the maximum
        "<script>alert(1)</script>",
        "'; DROP TABLE houses; --",
    ],
)
def test_unicode_categories_are_accepted_as_unknown(
    server: Server, house: dict[str, Any], value: str
) -> None:
    r = httpx.post(server.url + "/predict", json={**house, "neighborhood": value}, timeout=10)
    assert r.status_code == 200, r.text
    assert r.json()["unknown_categories"] == {"neighborhood": value}
    assert_healthy(server, house)


@pytest.mark.parametrize(
    ("raw", "expect"),
    [
        ('"' + "x" * 101 + '"', 422),  # over the 100-character limit
        ('""', 422),  # empty
        ('"\\ud800"', 400),  # a lone surrogate: not valid JSON text for a string
        ('"\\u0000"', 200),
    ],
)
def test_category_edge_strings(
    server: Server, house: dict[str, Any], raw: str, expect: int
) -> None:
    r = post_raw(server, "/predict", _with(house, "neighborhood", raw))
    assert r.status_code == expect, (raw, r.status_code, r.text[:300])
    assert_healthy(server, house)


def test_invalid_utf8_body_is_a_4xx(server: Server, house: dict[str, Any]) -> None:
    body = json.dumps(house).encode().replace(b'"NAmes"', b'"\xff\xfe"')
    assert b"\xff" in body
    r = post_raw(server, "/predict", body)
    assert r.status_code == 400, r.text[:300]
    assert_healthy(server, house)


# --- slow loris ----------------------------------------------------------------------------------


def _read_until_closed(s: socket.socket, timeout: float) -> tuple[bytes, float]:
    s.settimeout(timeout)
    start = time.monotonic()
    got = b""
    try:
        while True:
            data = s.recv(4096)
            if not data:
                return got, time.monotonic() - start
            got += data
    except (TimeoutError, ConnectionResetError):
        return got, -1.0


def test_stalled_body_gets_408_and_the_connection_is_closed(
    server: Server, house: dict[str, Any]
) -> None:
    with socket.create_connection(("127.0.0.1", port(server)), timeout=10) as s:
        s.sendall(
            b"POST /predict HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            b'Content-Length: 1000\r\n\r\n{"living_area": '
        )
        reply, after = _read_until_closed(s, BODY_TIMEOUT + 10)
    assert reply.startswith(b"HTTP/1.1 408"), reply[:200]
    assert 0 <= after < BODY_TIMEOUT + 5, after
    assert_healthy(server, house)


def test_trickled_body_gets_408_at_the_deadline(server: Server, house: dict[str, Any]) -> None:
    """One byte every 0.2 s: each read is quick, but the whole body misses the deadline."""
    body = json.dumps(house).encode()
    with socket.create_connection(("127.0.0.1", port(server)), timeout=10) as s:
        s.sendall(
            b"POST /predict HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body)
        )
        start = time.monotonic()
        try:
            for b in body:
                s.sendall(bytes([b]))
                time.sleep(0.2)
                if time.monotonic() - start > BODY_TIMEOUT + 5:
                    break
        except (BrokenPipeError, ConnectionResetError):
            pass
        reply, _ = _read_until_closed(s, 10)
    assert reply.startswith(b"HTTP/1.1 408"), reply[:200]
    assert time.monotonic() - start < BODY_TIMEOUT + 8
    assert_healthy(server, house)


def test_idle_keep_alive_connection_is_closed(server: Server, house: dict[str, Any]) -> None:
    with socket.create_connection(("127.0.0.1", port(server)), timeout=10) as s:
        s.sendall(b"GET /health/live HTTP/1.1\r\nHost: t\r\n\r\n")
        reply, after = _read_until_closed(s, KEEP_ALIVE + 10)
    assert reply.startswith(b"HTTP/1.1 200")
    assert 0 <= after < KEEP_ALIVE + 5, after


def test_many_half_open_connections_do_not_starve_the_service(
    server: Server, house: dict[str, Any]
) -> None:
    """Partial request *headers* are held by uvicorn (it has no header timeout; see
    docs/RELIABILITY.md): they must not stop it from serving, and closing them frees them."""
    baseline = open_fds(server)
    socks = []
    try:
        for i in range(100):
            s = socket.create_connection(("127.0.0.1", port(server)), timeout=10)
            s.sendall(b"POST /predict HTTP/1.1\r\nHost: t\r\nX-Slow-%d: " % i)
            socks.append(s)
        deadline = time.monotonic() + 10
        while open_fds(server) < baseline + 100 and time.monotonic() < deadline:
            time.sleep(0.05)  # poll until the server has accepted them all
        assert open_fds(server) >= baseline + 100
        started = time.monotonic()
        assert_healthy(server, house)
        assert time.monotonic() - started < 2
    finally:
        for s in socks:
            s.close()
    deadline = time.monotonic() + 10
    while open_fds(server) > baseline + 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert open_fds(server) <= baseline + 2, "connections were not released"


# --- admin route ---------------------------------------------------------------------------------


def test_admin_without_token_is_401(server: Server) -> None:
    r = httpx.post(server.url + "/admin/reload", timeout=10)
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "header",
    [
        "Bearer wrong-token",
        f"Bearer {TOKEN[:-1]}",  # one character short
        f"Bearer {TOKEN}x",
        f"Bearer {TOKEN.upper()}",
    ],
)
def test_admin_with_wrong_token_is_403(server: Server, header: str) -> None:
    r = httpx.post(server.url + "/admin/reload", headers={"Authorization": header}, timeout=10)
    assert r.status_code == 403, r.text


@pytest.mark.parametrize("header", [f"Basic {TOKEN}", f"Token {TOKEN}", TOKEN, "Bearer"])
def test_admin_with_malformed_authorization_is_401(server: Server, header: str) -> None:
    r = httpx.post(server.url + "/admin/reload", headers={"Authorization": header}, timeout=10)
    assert r.status_code == 401, r.text


@pytest.mark.parametrize("name", ["token", "access_token", "admin_token", "authorization"])
def test_admin_token_in_query_string_is_not_accepted(server: Server, name: str) -> None:
    r = httpx.post(server.url + "/admin/reload", params={name: TOKEN}, timeout=10)
    assert r.status_code == 401, r.text
    bearer = httpx.post(server.url + "/admin/reload", params={name: f"Bearer {TOKEN}"}, timeout=10)
    assert bearer.status_code == 401


def test_admin_token_is_compared_in_constant_time() -> None:
    """Read the code: the token is compared with hmac.compare_digest, never with ==.

    (A statistical timing test over loopback would be flaky; the property is structural.)
    """
    source = inspect.getsource(Service.check_admin)
    assert "hmac.compare_digest(" in source
    assert "== token" not in source and "token ==" not in source


def test_admin_with_the_right_token_works(server: Server) -> None:
    r = httpx.post(
        server.url + "/admin/reload", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
    )
    assert r.status_code == 200, r.text


def test_admin_disabled_without_a_token_setting(serve: Any, artifact_path: str) -> None:
    srv = serve({"MODEL_PATH": artifact_path, "ADMIN_TOKEN": ""})
    r = httpx.post(srv.url + "/admin/reload", headers={"Authorization": "Bearer x"}, timeout=10)
    assert r.status_code == 403 and "disabled" in r.json()["detail"]
    assert httpx.post(srv.url + "/admin/reload", timeout=10).status_code == 401


def test_logs_hold_no_token_and_no_payload(server: Server, house: dict[str, Any]) -> None:
    """Last in the module (pytest keeps file order): every request above was logged."""
    with httpx.Client(base_url=server.url, timeout=10) as c:
        c.post("/predict", json={**house, "neighborhood": SENTINEL})
        c.post("/predict", json={**house, "living_area": SENTINEL})
        c.post(
            "/feedback", json={"model_version": SENTINEL, "predicted_price": 1, "actual_price": 2}
        )
        c.post("/admin/reload", params={"token": TOKEN}, json={"path": "x.joblib"})
        c.post("/admin/reload", headers={"Authorization": f"Bearer {TOKEN}x"}, json={"a": SENTINEL})
        c.get("/health/live", headers={"X-Request-ID": "ok-id-1", "Cookie": f"s={SENTINEL}"})
    logs = server.logs()
    lines = [json.loads(x) for x in logs.splitlines() if x.startswith("{")]
    assert len(lines) > 100, "the access log is missing"
    assert TOKEN not in logs
    assert TOKEN[:-1] not in logs and TOKEN.upper() not in logs  # the wrong tokens either
    assert SENTINEL not in logs
    assert "名前" not in logs and "DROP TABLE" not in logs  # payloads of the tests above
    assert any(x.get("request_id") == "ok-id-1" for x in lines)


# --- issue 17: the attacks that got through ----------------------------------------------------


def _metrics(server: Server) -> str:
    return httpx.get(server.url + "/metrics", timeout=10).text


def _access_line(server: Server, request_id: str) -> dict[str, Any]:
    """The access line of a request, polled for: it is written at the end of a loop turn."""
    deadline = time.monotonic() + 10
    while True:
        for line in server.logs().splitlines():
            if line.startswith("{") and f'"request_id":"{request_id}"' in line:
                record: dict[str, Any] = json.loads(line)
                return record
        if time.monotonic() > deadline:
            raise AssertionError(f"no access line for {request_id}")
        time.sleep(0.05)


def _send_until_closed(sock: socket.socket, head: bytes, chunk: bytes, limit: int) -> int:
    """Send ``head`` then ``chunk`` again and again until the server closes or ``limit``
    bytes went out; the bytes sent."""
    sent = 0
    try:
        sock.sendall(head)
        while sent < limit:
            sock.sendall(chunk)
            sent += len(chunk)
    except (BrokenPipeError, ConnectionResetError):
        pass
    return sent


def test_endless_header_lines_are_431_and_closed_with_memory_bounded(
    server: Server, house: dict[str, Any]
) -> None:
    """Four connections sending header lines without end: each is answered 431 and closed
    after at most MAX_HEADER_BYTES (16 KiB) of head; the process does not grow."""
    before = rss_kb(server)
    results: list[tuple[int, bytes, float]] = []

    def attack(i: int) -> None:
        with socket.create_connection(("127.0.0.1", port(server)), timeout=10) as s:
            start = time.monotonic()
            head = b"GET /health/live HTTP/1.1\r\nHost: t\r\nX-Endless-%d: " % i
            sent = _send_until_closed(s, head, b"a" * 65536, 64 * 1024 * 1024)
            reply, _ = _read_until_closed(s, 10)
            results.append((sent, reply, time.monotonic() - start))

    threads = [threading.Thread(target=attack, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(results) == 4
    for sent, reply, seconds in results:
        assert reply.startswith(b"HTTP/1.1 431"), reply[:200]
        assert sent < 8 * 1024 * 1024, sent  # refused early, not after the client gave up
        assert seconds < 10
    assert rss_kb(server) - before < 30 * 1024
    assert_healthy(server, house)


def test_too_many_header_fields_are_431_and_a_normal_head_is_served(
    server: Server, house: dict[str, Any]
) -> None:
    many = b"".join(b"X-Field-%d: 1\r\n" % i for i in range(101))
    with socket.create_connection(("127.0.0.1", port(server)), timeout=10) as s:
        s.sendall(b"GET /health/live HTTP/1.1\r\nHost: t\r\n" + many + b"\r\n")
        reply, after = _read_until_closed(s, 10)
    assert reply.startswith(b"HTTP/1.1 431") and b"header fields" in reply, reply[:200]
    assert after >= 0
    fine = {f"x-field-{i}": "v" * 100 for i in range(80)}  # 80 fields, ~10 KB: served
    assert httpx.get(server.url + "/health/live", headers=fine, timeout=10).status_code == 200
    assert metric(_metrics(server), "houseprice_http_requests_total", status="4xx",
                  method="other", route="unmatched") >= 1  # fmt: skip
    assert_healthy(server, house)


def test_a_body_of_unknown_keys_gets_a_capped_error_list_quickly(
    server: Server, house: dict[str, Any]
) -> None:
    """16 MB of unknown keys: 20 errors and their count, a small answer, no stall."""
    keys = 1_290_000
    body = b"{" + b",".join(b'"k%07d":0' % i for i in range(keys)) + b"}"
    assert len(body) < 16 * 1024 * 1024
    before = rss_kb(server)
    for path in ("/predict", "/feedback"):
        start = time.monotonic()
        r = post_raw(server, path, body)
        seconds = time.monotonic() - start
        assert r.status_code == 422, r.text[:300]
        assert len(r.json()["detail"]) == 20 and r.json()["error_count"] >= keys - 5
        assert len(r.content) < 4096
        assert seconds < 10, seconds
    assert rss_kb(server) - before < 100 * 1024  # the body itself, not its errors
    assert_healthy(server, house)


def test_a_content_length_of_5000_zeros_is_400_logged_and_counted(
    server: Server, house: dict[str, Any]
) -> None:
    counted = metric(_metrics(server), "houseprice_http_requests_total", method="POST",
                     route="unmatched", status="4xx")  # fmt: skip
    with socket.create_connection(("127.0.0.1", port(server)), timeout=10) as s:
        s.sendall(
            b"POST /predict HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            b"X-Request-Id: zeros-5000\r\nContent-Length: " + b"0" * 5000 + b"\r\n\r\n"
        )
        reply, after = _read_until_closed(s, 10)
    assert reply.startswith(b"HTTP/1.1 400") and b"Content-Length" in reply, reply[:300]
    assert after >= 0  # closed
    assert metric(_metrics(server), "houseprice_http_requests_total", method="POST",
                  route="unmatched", status="4xx") == counted + 1  # fmt: skip
    assert _access_line(server, "zeros-5000")["status"] == 400
    assert_healthy(server, house)


@pytest.mark.parametrize(
    ("method", "path", "ctype", "status"),
    [
        ("POST", "/nowhere", "application/json", 404),
        ("POST", "/predict", "text/plain", 415),
        ("POST", "/admin/reload", "application/json", 401),
        ("GET", "/health/live", "application/json", 200),
    ],
)
def test_a_declared_body_the_route_does_not_read_closes_the_connection(
    server: Server, method: str, path: str, ctype: str, status: int
) -> None:
    """The answer comes before the body: the connection is closed at once, so a client
    trickling the rest cannot hold it (BODY_TIMEOUT would be the bound otherwise)."""
    with socket.create_connection(("127.0.0.1", port(server)), timeout=10) as s:
        s.sendall(
            f"{method} {path} HTTP/1.1\r\nHost: t\r\nContent-Type: {ctype}\r\n"
            "Content-Length: 100000\r\n\r\n".encode()
            + b"x" * 10
        )
        start = time.monotonic()
        reply = b""
        closed = False
        while time.monotonic() - start < BODY_TIMEOUT + 3:
            try:
                s.sendall(b"x")  # the trickle
                s.settimeout(0.2)
                data = s.recv(4096)
                if not data:
                    closed = True
                    break
                reply += data
            except TimeoutError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
    assert reply.startswith(f"HTTP/1.1 {status}".encode()), reply[:200]
    assert closed and time.monotonic() - start < BODY_TIMEOUT, "held open by the trickle"


def test_invented_methods_and_static_paths_do_not_multiply_series(server: Server) -> None:
    methods = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]
    methods += [f"X{i:02d}" for i in range(28)] + ["PROPFIND", "BREW"]
    paths = ["/predict", "/model", "/nowhere", "/static/swagger-ui.css", "/static/none.js"]
    with httpx.Client(base_url=server.url, timeout=10) as c:
        for m in methods:
            for p in paths:
                c.request(m, p)
    series = re.findall(r"^houseprice_http_requests_total\{(.*)\} ", _metrics(server), re.M)
    labels = [dict(re.findall(r'(\w+)="([^"]*)"', s)) for s in series]
    assert {x["method"] for x in labels} <= {*methods[:7], "other"}
    assert {x["route"] for x in labels if "static" in x["route"]} == {"/static/*"}
    assert len(series) < 120, len(series)  # 37 methods x 5 paths would be hundreds


def test_x_forwarded_for_is_not_trusted_by_default(server: Server) -> None:
    """FORWARDED_ALLOW_IPS is unset: a local client cannot choose its logged address."""
    r = httpx.get(
        server.url + "/health/live",
        headers={"X-Forwarded-For": "203.0.113.9", "X-Request-Id": "xff-check"},
        timeout=10,
    )
    assert r.status_code == 200
    assert _access_line(server, "xff-check")["client"] == "127.0.0.1"


def test_x_forwarded_for_is_trusted_from_forwarded_allow_ips(
    serve: Any, artifact_path: str
) -> None:
    srv = serve({"MODEL_PATH": artifact_path, "FORWARDED_ALLOW_IPS": "127.0.0.1"})
    r = httpx.get(
        srv.url + "/health/live",
        headers={"X-Forwarded-For": "203.0.113.9", "X-Request-Id": "xff-trusted"},
        timeout=10,
    )
    assert r.status_code == 200
    assert _access_line(srv, "xff-trusted")["client"] == "203.0.113.9"


def test_reload_of_a_fifo_neither_wedges_reload_nor_shutdown(
    serve: Any, artifact_path: str, tmp_path: Path
) -> None:
    """A FIFO named as the artifact (or as its checksum) is refused at once; the server
    still reloads a good artifact and stops cleanly."""
    import os
    import shutil

    models = tmp_path / "models"
    models.mkdir()
    for src in Path(artifact_path).parent.glob(Path(artifact_path).name + "*"):
        shutil.copy(src, models / src.name)
    os.mkfifo(models / "fifo.joblib")
    shutil.copy(models / "model.joblib", models / "odd.joblib")
    os.mkfifo(models / "odd.joblib.sha256")
    srv = serve({"MODEL_PATH": str(models / "model.joblib"), "ADMIN_TOKEN": TOKEN})
    auth = {"authorization": f"Bearer {TOKEN}"}
    for name in ("fifo.joblib", "odd.joblib"):
        start = time.monotonic()
        r = httpx.post(srv.url + "/admin/reload", json={"path": name}, headers=auth, timeout=30)
        assert r.status_code == 409 and "not a regular file" in r.json()["detail"], r.text
        assert time.monotonic() - start < 5
    r = httpx.post(srv.url + "/admin/reload", headers=auth, timeout=30)
    assert r.status_code == 200, r.text
    start = time.monotonic()
    assert srv.stop() == 0
    assert time.monotonic() - start < 10
