"""The whole V2 (Open Inference Protocol) surface through FastAPI's TestClient: server
metadata and health, versioned model routes, interval outputs, and the protocol's errors.
The real client (tritonclient) drives a real server in ``tests/e2e/test_v2_client.py``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from test_answers import OTHER, build_linear  # tests/test_answers.py
from test_app_api import HOUSE, make_client, v2_request  # tests/test_app_api.py

INFER = "/v2/models/houseprice/infer"


@pytest.fixture(scope="module")
def paths(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("v2")
    return {"linear": build_linear(d), "tree": str(d / "tree.joblib")}


@pytest.fixture(scope="module")
def client(paths: dict[str, str]) -> Iterator[TestClient]:
    with make_client(paths["linear"], max_batch_size=100) as c:
        yield c


def test_server_metadata_and_health(client: TestClient, tmp_path: Path) -> None:
    meta = client.get("/v2").json()
    assert meta == {"name": "houseprice", "version": "0.1.0", "extensions": []}
    for path in ("/v2/health/live", "/v2/health/ready"):
        r = client.get(path)
        assert r.status_code == 200 and r.content == b"", path
    with make_client(str(tmp_path / "missing.joblib")) as down:
        assert down.get("/v2/health/live").status_code == 200
        r = down.get("/v2/health/ready")
        assert r.status_code == 503 and "not ready" in r.json()["error"]
        r = down.post(INFER, json=v2_request([HOUSE]))
        assert r.status_code == 503 and "not ready" in r.json()["error"]


def test_versioned_model_routes(client: TestClient) -> None:
    meta = client.get("/v2/models/houseprice").json()
    (version,) = meta["versions"]
    base = f"/v2/models/houseprice/versions/{version}"
    assert client.get(base).json() == meta
    assert client.get(base + "/ready").json() == {"name": "houseprice", "ready": True}
    r = client.post(base + "/infer", json=v2_request([HOUSE]))
    assert r.status_code == 200 and r.json()["model_version"] == version
    for path, method in (
        ("/v2/models/houseprice/versions/v0", "get"),
        ("/v2/models/houseprice/versions/v0/ready", "get"),
        ("/v2/models/houseprice/versions/v0/infer", "post"),
    ):
        kwargs: dict[str, Any] = {"json": v2_request([HOUSE])} if method == "post" else {}
        r = getattr(client, method)(path, **kwargs)
        assert r.status_code == 404, path
        assert r.json()["error"] == (
            f"model 'houseprice' version 'v0' not found; serving version {version!r}"
        )


def test_interval_outputs_equal_predicts(client: TestClient) -> None:
    meta = client.get("/v2/models/houseprice").json()
    assert [o["name"] for o in meta["outputs"]] == ["price", "price_low", "price_high"]
    rows = [HOUSE, OTHER]
    body = client.post(INFER, json=v2_request(rows)).json()
    out = {o["name"]: o for o in body["outputs"]}
    predicted = client.post("/predict", json={"instances": rows}).json()
    assert out["price"]["data"] == predicted["prices"]
    assert out["price_low"]["data"] == [iv["low"] for iv in predicted["intervals"]]
    assert out["price_high"]["data"] == [iv["high"] for iv in predicted["intervals"]]
    assert all(o["shape"] == [2] and o["datatype"] == "FP64" for o in out.values())
    only = client.post(INFER, json={**v2_request(rows), "outputs": [{"name": "price_high"}]})
    assert [o["name"] for o in only.json()["outputs"]] == ["price_high"]
    r = client.post(INFER, json={**v2_request(rows), "outputs": [{"name": "rent"}]})
    assert r.status_code == 400
    assert (
        r.json()["error"] == "unknown output 'rent'; the outputs are price, price_low, price_high"
    )


def test_a_model_without_intervals_outputs_the_price_only(paths: dict[str, str]) -> None:
    with make_client(paths["tree"]) as c:
        meta = c.get("/v2/models/houseprice").json()
        assert [o["name"] for o in meta["outputs"]] == ["price"]
        body = c.post(INFER, json=v2_request([HOUSE])).json()
        assert [o["name"] for o in body["outputs"]] == ["price"]
        assert (
            c.post(
                INFER, json={**v2_request([HOUSE]), "outputs": [{"name": "price_low"}]}
            ).status_code
            == 400
        )


def test_bodies_the_protocol_refuses(client: TestClient) -> None:
    good = json.dumps(v2_request([HOUSE])).encode()
    r = client.post(INFER, content=good)  # no content type, as tritonclient sends it
    assert r.status_code == 200, r.text
    r = client.post(INFER, content=good, headers={"content-type": "text/plain"})
    assert r.status_code == 415 and "error" in r.json()
    r = client.post(INFER, content=good, headers={"inference-header-content-length": "10"})
    assert r.status_code == 400 and "binary_data=False" in r.json()["error"]
    nan = good.replace(b"1500", b"NaN")
    r = client.post(INFER, content=nan)
    assert r.status_code == 400 and "living_area" in r.json()["error"], r.text
    r = client.post(INFER, json={**v2_request([HOUSE]), "extra": 1})
    assert r.status_code == 400 and "extra" in r.json()["error"]
    r = client.post(INFER, json={"inputs": []})
    assert r.status_code == 400 and "inputs" in r.json()["error"]
    twice = v2_request([HOUSE])
    twice["inputs"].append(dict(twice["inputs"][0]))
    r = client.post(INFER, json=twice)
    assert r.status_code == 400 and "given twice" in r.json()["error"], r.text
    alias = v2_request([HOUSE])
    alias["inputs"][0]["datatype"] = "FP32"  # any numeric datatype for a numeric feature
    assert client.post(INFER, json=alias).json() == client.post(INFER, content=good).json()
    nested = v2_request([HOUSE, OTHER])
    for t in nested["inputs"]:
        t["shape"], t["data"] = [2, 1], [[v] for v in t["data"]]
    r = client.post(INFER, json=nested)
    assert r.status_code == 200 and len(r.json()["outputs"][0]["data"]) == 2
    nested["inputs"][0]["shape"] = [1, 2]
    r = client.post(INFER, json=nested)
    assert r.status_code == 400 and "shape must be [n] or [n, 1]" in r.json()["error"]


def test_openapi_documents_every_v2_route(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    for path in (
        "/v2",
        "/v2/health/live",
        "/v2/health/ready",
        "/v2/models/{name}",
        "/v2/models/{name}/ready",
        "/v2/models/{name}/infer",
        "/v2/models/{name}/versions/{version}",
        "/v2/models/{name}/versions/{version}/ready",
        "/v2/models/{name}/versions/{version}/infer",
    ):
        assert path in doc["paths"], path
    infer = doc["paths"]["/v2/models/{name}/versions/{version}/infer"]["post"]
    assert [p["name"] for p in infer["parameters"]] == ["name", "version"]
    assert "V2InferenceResponse" in doc["components"]["schemas"]


def test_v2_answers_are_logged_and_indexed_for_feedback(
    paths: dict[str, str], tmp_path: Path
) -> None:
    """Every house V2 serves goes through the after-answer hook as /predict's do: one log line
    each (inputs, price, the interval the outputs carry) and feedback by the request id (the
    ``X-Request-Id``; also the answer's ``id`` when the request names none)."""
    log = tmp_path / "predictions.jsonl"
    with make_client(paths["linear"], prediction_log=str(log)) as c:
        r = c.post(INFER, json=v2_request([HOUSE, OTHER]), headers={"X-Request-Id": "v2-batch"})
        assert r.status_code == 200 and r.headers["x-request-id"] == "v2-batch"
        assert r.json()["id"] == "req-1"  # the protocol's id, echoed
        out = {o["name"]: o["data"] for o in r.json()["outputs"]}
        for i in range(2):
            fb = c.post(
                "/feedback", json={"request_id": "v2-batch", "index": i, "actual_price": 1.5e5}
            )
            assert fb.status_code == 200, fb.text
            assert fb.json()["predicted_price"] == out["price"][i]
        anonymous = {k: v for k, v in v2_request([HOUSE]).items() if k != "id"}
        one = c.post(INFER, json=anonymous)
        rid = one.json()["id"]
        assert rid == one.headers["x-request-id"]
        fb = c.post("/feedback", json={"request_id": rid, "actual_price": 1.5e5})
        assert fb.status_code == 200 and fb.json()["predicted_price"] == out["price"][0]
        assert c.post(INFER, json={"inputs": []}).status_code == 400  # refused: not recorded
        version = one.json()["model_version"]
        c.app.state.service.traffic.close()  # type: ignore[attr-defined]  # writes the queue
    got = [json.loads(x) for x in log.read_text().splitlines()]
    assert [(g["request_id"], g["index"]) for g in got] == [
        ("v2-batch", 0),
        ("v2-batch", 1),
        (rid, 0),
    ]
    assert [g["price"] for g in got] == [*out["price"], out["price"][0]]
    assert {(g["role"], g["model_version"]) for g in got} == {("champion", version)}
    for g, i in zip(got, (0, 1, 0), strict=True):
        assert g["interval"]["low"] == out["price_low"][i]
        assert g["interval"]["high"] == out["price_high"][i]
        assert g["interval"]["level"] == 0.9
    given = {k: v for k, v in got[0]["inputs"].items() if v is not None}
    assert given == HOUSE


def test_the_body_id_is_the_request_id_without_a_header(
    paths: dict[str, str], capfd: pytest.CaptureFixture[str]
) -> None:
    """A V2 client that names its request only in the body (``id``) gives feedback by that id:
    with no usable ``X-Request-Id`` the body's id, when a plain token, is the request id of
    the answer's header, the access line and the feedback index; a header still wins, and an
    id that is not a plain token is echoed in the answer but not adopted."""
    with make_client(paths["linear"]) as c:
        capfd.readouterr()
        body = {**v2_request([HOUSE]), "id": "order-17:a"}
        r = c.post(INFER, json=body)
        assert r.status_code == 200, r.text
        assert r.json()["id"] == r.headers["x-request-id"] == "order-17:a"
        price = r.json()["outputs"][0]["data"][0]
        fb = c.post("/feedback", json={"request_id": "order-17:a", "actual_price": 1.5e5})
        assert fb.status_code == 200 and fb.json()["predicted_price"] == price, fb.text
        access = [
            json.loads(x)
            for x in capfd.readouterr().err.splitlines()
            if x.startswith("{") and '"houseprice.access"' in x
        ]
        assert access[0]["path"] == INFER and access[0]["request_id"] == "order-17:a"

        r = c.post(INFER, json={**body, "id": "order-18"}, headers={"X-Request-Id": "from-header"})
        assert r.json()["id"] == "order-18" and r.headers["x-request-id"] == "from-header"
        fb = c.post("/feedback", json={"request_id": "from-header", "actual_price": 1e5})
        assert fb.status_code == 200
        fb = c.post("/feedback", json={"request_id": "order-18", "actual_price": 1e5})
        assert fb.status_code == 404
        r = c.post(INFER, json={**body, "id": "order-19"}, headers={"X-Request-Id": "bad id"})
        assert r.json()["id"] == r.headers["x-request-id"] == "order-19"  # the header unusable

        r = c.post(INFER, json={**body, "id": "not a token"})
        assert r.json()["id"] == "not a token"
        made_up = r.headers["x-request-id"]
        assert len(made_up) == 32 and int(made_up, 16) >= 0
        fb = c.post("/feedback", json={"request_id": made_up, "actual_price": 1.5e5})
        assert fb.status_code == 200
        fb = c.post("/feedback", json={"request_id": "not a token", "actual_price": 1.5e5})
        assert fb.status_code == 404


def test_the_traffic_routes_leave_other_methods_to_the_router(client: TestClient) -> None:
    """``/predict`` and V2 infer are answered before FastAPI's middleware stack for ``POST``
    only; another method still gets the router's 405, with the request id and counted."""
    for path in ("/predict", INFER):
        r = client.get(path)
        assert r.status_code == 405 and r.headers["allow"] == "POST", path
        assert len(r.headers["x-request-id"]) == 32
    r = client.post("/predict", json=HOUSE, headers={"X-Request-Id": "fast-1"})
    assert r.status_code == 200 and r.headers["x-request-id"] == r.json()["request_id"] == "fast-1"
    metrics = client.get("/metrics").text
    assert 'houseprice_http_requests_total{method="GET",route="/predict",status="4xx"}' in metrics
    assert 'houseprice_http_requests_total{method="POST",route="/predict",status="2xx"}' in metrics


def test_the_traffic_routes_remember_a_bounded_number_of_paths(paths: dict[str, str]) -> None:
    """A V2 path matched once is found by a dict lookup after, its parameters and method
    checked as the router checks them; made-up paths cannot grow what is remembered."""
    from app.middleware import TrafficRoutes

    with make_client(paths["linear"]) as c:
        version = c.get("/v2/models/houseprice").json()["versions"][0]
        versioned = f"/v2/models/houseprice/versions/{version}/infer"
        for _ in range(2):  # matched, then remembered
            assert c.post(INFER, json=v2_request([HOUSE])).status_code == 200
            assert c.post(versioned, json=v2_request([HOUSE])).status_code == 200
            r = c.post("/v2/models/other/infer", json=v2_request([HOUSE]))
            assert r.status_code == 404 and "'other' not found" in r.json()["error"]
            assert c.get(INFER).status_code == 405
        for i in range(300):
            assert c.post(f"/v2/models/m{i}/infer", json={}).status_code == 404
        node = c.app.middleware_stack  # type: ignore[attr-defined]
        while not isinstance(node, TrafficRoutes):
            node = node.app
        assert len(node.matched) == 256
        assert node.matched[INFER][1] == {"name": "houseprice"}
        assert c.post(INFER, json=v2_request([HOUSE])).status_code == 200


def _variants() -> list[Any]:
    """V2 bodies around the common one: valid, invalid, and valid in the less common shapes."""
    out: list[Any] = []

    def body(rows: list[dict[str, Any]] = [HOUSE], **change: Any) -> dict[str, Any]:  # noqa: B006
        req = v2_request(rows)
        for t in req["inputs"]:
            t.update(change.get(t["name"], {}))
        return req

    out += [body(), body([HOUSE, OTHER]), body([HOUSE] * 100), body([HOUSE] * 101)]
    for name in ("living_area", "lot_area", "neighborhood"):
        for value in (None, "3", True, 0, 0.5, 1e300, 25_000.0, "", "x" * 101, "Zzz", 7, [1]):
            out.append(body(**{name: {"data": [value]}}))
        dropped = body()
        dropped["inputs"] = [t for t in dropped["inputs"] if t["name"] != name]
        out.append(dropped)
    for datatype in ("FP32", "INT64", "UINT8", "BYTES", "FP8", "BOOL"):
        out.append(body(living_area={"datatype": datatype}))
        out.append(body(neighborhood={"datatype": datatype}))
    for shape in ([2], [1, 1], [], [-1], [0], [1, 2]):
        out.append(body(living_area={"shape": shape}))
    out.append(body(living_area={"shape": [1, 1], "data": [[1500]]}))
    out.append(body(living_area={"shape": [0], "data": []}))
    out.append(body(living_area={"name": "nope"}))
    backwards = body([HOUSE, OTHER])
    backwards["inputs"].reverse()
    out.append(backwards)
    twice = body()
    twice["inputs"].append(dict(twice["inputs"][0]))
    out.append(twice)
    out.append({**body(), "outputs": [{"name": "price"}]})
    out.append({**body(), "outputs": [{"name": "nope"}]})
    out.append({**body(), "parameters": {"a": 1}, "id": "x" * 129})
    out.append(body(living_area={"parameters": {"p": 1}}))
    out.append(body(living_area={"extra": 1}))
    out.append({"inputs": []})
    out += ["[]", "{", '{"inputs": [1]}']
    return out


def test_the_one_pass_path_takes_only_what_the_generic_path_takes(client: TestClient) -> None:
    """``_table`` (the model's own validator, one pass) answers only requests that the
    generic parse and the house validator accept, with the same columns and rows (the drift
    window's); the others go the generic way, which names the error."""
    from app.routes import v2

    model = client.app.state.service.ready_model()  # type: ignore[attr-defined]
    taken = 0
    for req in _variants():
        body = req.encode() if isinstance(req, str) else json.dumps(req).encode()
        fast = v2._table(model, body)
        try:
            slow: Any = model.tabulate(v2._rows(model, v2._parse(body)["inputs"]))
        except v2.V2ProtocolError as e:
            slow = e
        if fast is None:
            continue
        taken += 1
        assert not isinstance(slow, Exception), (req, slow)
        slow, slow_rows = slow
        assert fast[1] == slow_rows, req
        assert [list(map(type, r)) for r in fast[1]] == [list(map(type, r)) for r in slow_rows]
        table = {k: list(v) for k, v in fast[0].items()}
        assert table == {k: list(v) for k, v in slow.items()}, req
        assert list(table) == list(slow), req  # the model's order, whatever the body's
        for k, values in table.items():
            assert list(map(type, values)) == list(map(type, slow[k])), (k, req)
    assert taken >= 15
    for common in (v2_request([HOUSE]), v2_request([HOUSE, OTHER] * 50)):  # they do take it
        assert v2._table(model, json.dumps(common).encode()) is not None


def test_errors_are_the_same_with_or_without_the_one_pass_path(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every variant gets the same status and body whether or not the one-pass path runs."""
    from app.routes import v2

    def post(req: Any) -> tuple[int, Any]:
        if isinstance(req, str):
            r = client.post(INFER, content=req.encode())
        else:
            r = client.post(INFER, json=req, headers={"x-request-id": "fixed"})
        return r.status_code, r.json()

    variants = _variants()
    with_fast = [post(req) for req in variants]
    monkeypatch.setattr(v2, "_table", lambda model, body: None)
    without = [post(req) for req in variants]
    assert with_fast == without
    assert {status for status, _ in with_fast} == {200, 400}


@pytest.mark.parametrize("literal", ["Infinity", "-Infinity", "NaN"])
def test_the_one_pass_path_refuses_what_json_cannot_price(client: TestClient, literal: str) -> None:
    """pydantic reads ``Infinity`` and ``NaN`` in a JSON body; the model's own validator refuses
    them (its config forbids them) and the generic path answers 400, naming the field."""
    from app.routes import v2

    model = client.app.state.service.ready_model()  # type: ignore[attr-defined]
    body = json.dumps(v2_request([HOUSE])).replace('"data": [1500]', f'"data": [{literal}]')
    assert literal in body
    assert v2._table(model, body.encode()) is None
    r = client.post(INFER, content=body.encode())
    assert r.status_code == 400 and "living_area" in r.json()["error"]
