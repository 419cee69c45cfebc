"""The service through FastAPI's TestClient, against a small real artifact.

The artifact is a real fitted ``model.pipeline.Pipeline`` (imputers, one-hot encoder and a
regression tree on four Ames columns) saved with ``model.workflow.artifact.save_artifact``, so the
loader, the checksum and the schema-driven validator are all exercised for real; the default
model trained by the CLI is used by the end-to-end tests.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from exposition import metric  # tests/exposition.py
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings
from model.compose import ColumnTransformer
from model.drift import build_reference
from model.pipeline import Pipeline
from model.preprocessing import OneHotEncoder, SimpleImputer
from model.tree import DecisionTreeRegressor
from model.workflow.artifact import load_artifact, save_artifact

ROOT = Path(__file__).resolve().parents[1]

FEATURES: list[dict[str, Any]] = [
    {
        "name": "living_area",
        "column": "area",
        "kind": "numeric",
        "unit": "sq ft",
        "description": "Above-grade living area",
        "required": True,
        "bounds": [1, 20000],
        "example": 1500,
    },
    {
        "name": "lot_area",
        "column": "Lot.Area",
        "kind": "numeric",
        "unit": "sq ft",
        "description": "Lot size",
        "required": False,
        "bounds": [1, 1000000],
        "example": 9500,
    },
    {
        "name": "neighborhood",
        "column": "Neighborhood",
        "kind": "categorical",
        "unit": "",
        "description": "Neighborhood within Ames",
        "required": True,
        "bounds": None,
        "example": "NAmes",
    },
    {
        "name": "garage_type",
        "column": "Garage.Type",
        "kind": "categorical",
        "unit": "",
        "description": "Garage location",
        "required": False,
        "bounds": None,
        "example": "Attchd",
    },
]
#: A count, for the integer-kind test's artifact only.
BEDROOMS: dict[str, Any] = {
    "name": "bedrooms",
    "column": "Bedroom.AbvGr",
    "kind": "integer",
    "unit": "",
    "description": "Bedrooms above grade",
    "required": False,
    "bounds": [0, 20],
    "example": 3,
}


def training_table(
    specs: list[dict[str, Any]], rows: int = 1200
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    df = pd.read_csv(ROOT / "data" / "ames.csv", nrows=rows)
    cols: dict[str, np.ndarray] = {}
    for f in specs:
        raw = df[f["column"]]
        if f["kind"] != "categorical":
            cols[f["name"]] = raw.to_numpy(dtype=np.float64)
        else:
            cols[f["name"]] = np.array([None if pd.isna(v) else str(v) for v in raw], dtype=object)
    return cols, df["price"].to_numpy(dtype=np.float64)


def build_artifact(
    directory: str | Path,
    version: str = "test-1",
    *,
    names: tuple[str, ...] = ("living_area", "lot_area", "neighborhood", "garage_type"),
    signing_key: bytes | None = None,
    filename: str = "model.joblib",
    created_at: str = "2026-11-27T00:00:00Z",
) -> str:
    """Fit a small real pipeline on ``names``, save it in ``directory``, return the path."""
    specs = [f for f in [*FEATURES, BEDROOMS] if f["name"] in names]
    cols, y = training_table(specs)
    numeric = [f["name"] for f in specs if f["kind"] != "categorical"]
    categorical = [f["name"] for f in specs if f["kind"] == "categorical"]
    pipe = Pipeline(
        [
            (
                "prep",
                ColumnTransformer(
                    [
                        ("num", SimpleImputer(strategy="median"), numeric),
                        (
                            "cat",
                            Pipeline(
                                [
                                    (
                                        "impute",
                                        SimpleImputer(strategy="constant", fill_value="none"),
                                    ),
                                    ("onehot", OneHotEncoder()),
                                ]
                            ),
                            categorical,
                        ),
                    ]
                ),
            ),
            ("tree", DecisionTreeRegressor(max_depth=6)),
        ]
    )
    pipe.fit(cols, y)
    pred = pipe.predict(cols)
    features = []
    for f in specs:
        entry = dict(f)
        col = cols[f["name"]]
        if f["kind"] != "categorical":
            entry.update(min=float(np.nanmin(col)), max=float(np.nanmax(col)), categories=None)
        else:
            entry.update(min=None, max=None, categories=sorted({v for v in col if v is not None}))
        features.append(entry)
    # the drift reference profiles an integer feature as a numeric one
    kinds = {f["name"]: "categorical" if f["kind"] == "categorical" else "numeric" for f in specs}
    cats = {f["name"]: f["categories"] for f in features if f["kind"] == "categorical"}
    metadata = {
        "format_version": 1,
        "model_version": version,
        "created_at": created_at,
        "features": features,
        "test": {"rmse": float(np.sqrt(np.mean((pred - y) ** 2)))},
        "reference": build_reference(cols, kinds, pred, categories=cats),
    }
    path = Path(directory) / filename
    save_artifact(path, pipe, metadata, signing_key=signing_key)
    return str(path)


# --- fixtures --------------------------------------------------------------------------------

HOUSE: dict[str, Any] = {
    "living_area": 1500,
    "lot_area": 9500.0,
    "neighborhood": "NAmes",
    "garage_type": "Attchd",
}
TOKEN = "test-admin-token"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("models")
    build_artifact(d, "test-1")
    return d


@pytest.fixture(scope="module")
def artifact(model_dir: Path) -> str:
    return str(model_dir / "model.joblib")


@pytest.fixture(scope="module")
def pipeline(artifact: str) -> Any:
    return load_artifact(artifact).pipeline


def make_client(artifact: str, **overrides: Any) -> TestClient:
    settings = Settings(**{"model_path": artifact, "admin_token": TOKEN, **overrides})
    return TestClient(create_app(settings), raise_server_exceptions=False)


@pytest.fixture(scope="module")
def client(artifact: str) -> Iterator[TestClient]:
    with make_client(artifact, max_batch_size=50, max_body_bytes=64 * 1024) as c:
        yield c


@pytest.fixture
def fresh(artifact: str) -> Iterator[TestClient]:
    """A new app per test, for tests that count metrics or reload models."""
    with make_client(artifact) as c:
        yield c


def columns(rows: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """The table the pipeline expects, built by hand (the reference for the service)."""
    out: dict[str, np.ndarray] = {}
    for f in FEATURES:
        values = [r.get(f["name"]) for r in rows]
        if f["kind"] != "categorical":
            out[f["name"]] = np.array([math.nan if v is None else v for v in values], float)
        else:
            col = np.empty(len(values), dtype=object)
            col[:] = values
            out[f["name"]] = col
    return out


# --- /predict --------------------------------------------------------------------------------


def test_predict_one_house_matches_the_pipeline(client: TestClient, pipeline: Any) -> None:
    r = client.post("/predict", json=HOUSE)
    assert r.status_code == 200, r.text
    body = r.json()
    expected = float(pipeline.predict(columns([HOUSE]))[0])
    assert body["price"] == pytest.approx(expected, rel=1e-12)
    assert body["model_version"] == "test-1"
    assert body["unknown_categories"] == {}
    assert re.fullmatch(r"[0-9a-f]{32}", body["request_id"])
    assert r.headers["x-request-id"] == body["request_id"]


def test_predict_batch_keeps_order_and_matches_the_pipeline(
    client: TestClient, pipeline: Any
) -> None:
    rows: list[dict[str, Any]] = [
        HOUSE,
        {"living_area": 2400, "neighborhood": "NoRidge"},
        {"living_area": 900, "lot_area": None, "neighborhood": "OldTown", "garage_type": None},
    ]
    r = client.post("/predict", json={"instances": rows})
    assert r.status_code == 200, r.text
    expected = pipeline.predict(columns(rows))
    np.testing.assert_allclose(r.json()["prices"], expected, rtol=1e-12)
    assert len(set(r.json()["prices"])) > 1  # three different houses, not one price repeated


def test_omitted_and_null_optional_fields_are_imputed_alike(
    client: TestClient, pipeline: Any
) -> None:
    omitted = client.post("/predict", json={"living_area": 1500, "neighborhood": "NAmes"})
    null = client.post(
        "/predict",
        json={"living_area": 1500, "neighborhood": "NAmes", "lot_area": None, "garage_type": None},
    )
    assert omitted.status_code == null.status_code == 200
    assert omitted.json()["price"] == null.json()["price"]
    expected = pipeline.predict(columns([{"living_area": 1500, "neighborhood": "NAmes"}]))[0]
    assert omitted.json()["price"] == pytest.approx(float(expected))


def test_unknown_category_is_accepted_reported_and_counted(
    fresh: TestClient, pipeline: Any
) -> None:
    house = {**HOUSE, "neighborhood": "Atlantis"}
    r = fresh.post("/predict", json=house)
    assert r.status_code == 200, r.text
    assert r.json()["unknown_categories"] == {"neighborhood": "Atlantis"}
    assert r.json()["price"] == pytest.approx(float(pipeline.predict(columns([house]))[0]))
    batch = fresh.post(
        "/predict", json={"instances": [HOUSE, house, {**house, "garage_type": "Moat"}]}
    )
    assert batch.json()["unknown_categories"] == [
        {"row": 1, "feature": "neighborhood", "value": "Atlantis"},
        {"row": 2, "feature": "neighborhood", "value": "Atlantis"},
        {"row": 2, "feature": "garage_type", "value": "Moat"},
    ]
    text = fresh.get("/metrics").text
    assert metric(text, "houseprice_input_unknown_category_total", feature="neighborhood") == 3
    assert metric(text, "houseprice_input_unknown_category_total", feature="garage_type") == 1


BAD_BODIES: list[tuple[str, bytes, int, list[Any]]] = [
    ("missing required", b'{"neighborhood": "NAmes"}', 422, ["body", "living_area"]),
    (
        "boolean for a number",
        b'{"living_area": true, "neighborhood": "NAmes"}',
        422,
        ["body", "living_area"],
    ),
    (
        "string for a number",
        b'{"living_area": "1500", "neighborhood": "NAmes"}',
        422,
        ["body", "living_area"],
    ),
    ("NaN literal", b'{"living_area": NaN, "neighborhood": "NAmes"}', 422, ["body", "living_area"]),
    (
        "Infinity literal",
        b'{"living_area": Infinity, "neighborhood": "NAmes"}',
        422,
        ["body", "living_area"],
    ),
    (
        "overflow to inf",
        b'{"living_area": 1e400, "neighborhood": "NAmes"}',
        422,
        ["body", "living_area"],
    ),
    (
        "negative size",
        b'{"living_area": -5, "neighborhood": "NAmes"}',
        422,
        ["body", "living_area"],
    ),
    ("absurd size", b'{"living_area": 1e9, "neighborhood": "NAmes"}', 422, ["body", "living_area"]),
    (
        "extra field",
        b'{"living_area": 1500, "neighborhood": "NAmes", "pool": 1}',
        422,
        ["body", "pool"],
    ),
    (
        "number for a category",
        b'{"living_area": 1500, "neighborhood": 7}',
        422,
        ["body", "neighborhood"],
    ),
    ("empty category", b'{"living_area": 1500, "neighborhood": ""}', 422, ["body", "neighborhood"]),
    ("empty batch", b'{"instances": []}', 422, ["body", "instances"]),
    ("batch of non-objects", b'{"instances": [1]}', 422, ["body", "instances", 0]),
    (
        "bad row in batch",
        b'{"instances": [{"living_area": 1500, "neighborhood": "NAmes"}, '
        b'{"living_area": false, "neighborhood": "NAmes"}]}',
        422,
        ["body", "instances", 1, "living_area"],
    ),
    ("instances beside fields", b'{"instances": [], "living_area": 1}', 422, ["body"]),
    ("array body", b"[1, 2]", 422, ["body"]),
    ("null body", b"null", 422, ["body"]),
    ("malformed JSON", b'{"living_area": 15', 400, ["body"]),
    ("empty body", b"", 400, ["body"]),
    ("not UTF-8", b'{"neighborhood": "\xff\xfe"}', 400, ["body"]),
]


@pytest.mark.parametrize(
    ("body", "status", "loc"),
    [case[1:] for case in BAD_BODIES],
    ids=[case[0] for case in BAD_BODIES],
)
def test_bad_input_is_a_4xx_naming_the_field(
    client: TestClient, body: bytes, status: int, loc: list[Any]
) -> None:
    r = client.post("/predict", content=body, headers={"content-type": "application/json"})
    assert r.status_code == status, r.text
    detail = r.json()["detail"]
    assert isinstance(detail, list) and detail
    for err in detail:
        assert set(err) == {"loc", "msg", "type"}
    assert any(err["loc"][: len(loc)] == loc for err in detail), detail


def test_an_error_list_is_capped_at_max_errors_with_the_total_count(artifact: str) -> None:
    """A body of thousands of unknown keys gets MAX_ERRORS errors back, and their count."""
    body = {**HOUSE, **{f"k{i}": 0 for i in range(5000)}}
    with make_client(artifact, max_errors=7) as c:
        r = c.post("/predict", json=body)
        assert r.status_code == 422
        assert len(r.json()["detail"]) == 7 and r.json()["error_count"] == 5000
        assert r.json()["detail"][0] == {
            "loc": ["body", "k0"],
            "msg": "Extra inputs are not permitted",
            "type": "extra_forbidden",
        }
        assert len(r.content) < 1000
        # more keys than a feedback has fields (five)
        unknown = {"model_version": 1, "x": 1, "y": 2, "z": 3, "w": 4, "v": 5}
        r = c.post("/feedback", json=unknown)
        assert r.status_code == 422 and r.json()["error_count"] == 5  # refused before validation
        assert [e["loc"] for e in r.json()["detail"]] == [["body", k] for k in "xyzwv"]
        colons = {**HOUSE, "neighborhood": "a:b:c:d:e:f:g"}  # colons in a value are not keys
        assert c.post("/predict", json=colons).status_code == 200
        many = {"instances": [{**HOUSE, "garage_type": f"{i}:{i}"} for i in range(30)]}
        assert c.post("/predict", json=many).status_code == 200
        r = c.post("/predict", json={"instances": [HOUSE, {**HOUSE, "bad": 1, "worse": 2}]})
        assert r.status_code == 422 and r.json()["error_count"] == 2  # validated: fail_fast
        assert r.json()["detail"][0]["loc"] == ["body", "instances", 1, "bad"]


def test_over_size_batch_is_refused(client: TestClient) -> None:
    ok = client.post("/predict", json={"instances": [HOUSE] * 50})
    assert ok.status_code == 200 and len(ok.json()["prices"]) == 50
    r = client.post("/predict", json={"instances": [HOUSE] * 51})
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "instances"]
    assert "50" in r.json()["detail"][0]["msg"]


@pytest.mark.parametrize("ctype", ["text/plain", "application/x-www-form-urlencoded", None])
def test_wrong_content_type_is_415(client: TestClient, ctype: str | None) -> None:
    headers = {"content-type": ctype} if ctype else {}
    r = client.post("/predict", content=json.dumps(HOUSE).encode(), headers=headers)
    assert r.status_code == 415
    assert "application/json" in r.json()["detail"]


def test_json_content_type_with_charset_is_accepted(client: TestClient) -> None:
    r = client.post(
        "/predict",
        content=json.dumps(HOUSE).encode(),
        headers={"content-type": "application/json; charset=utf-8"},
    )
    assert r.status_code == 200


def test_body_over_the_limit_is_413_by_declared_length(client: TestClient) -> None:
    big = json.dumps({"instances": [HOUSE] * 2000}).encode()
    assert len(big) > 64 * 1024
    r = client.post("/predict", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert "limit" in r.json()["detail"]


def test_body_over_the_limit_is_413_while_streaming(client: TestClient) -> None:
    """A chunked body (no Content-Length) is cut off once the received bytes pass the limit."""
    chunk = b" " * 8192

    def body() -> Iterator[bytes]:
        for _ in range(100):  # 800 KiB, far over 64 KiB
            yield chunk

    r = client.post("/predict", content=body(), headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert "content-length" not in {k.lower() for k in r.request.headers}


def test_request_id_is_honoured_when_sane_and_replaced_otherwise(client: TestClient) -> None:
    r = client.post("/predict", json=HOUSE, headers={"x-request-id": "abc-123.x:y"})
    assert r.headers["x-request-id"] == "abc-123.x:y" == r.json()["request_id"]
    for bad in ("has space", "x" * 200, "<script>"):
        r = client.post("/predict", json=HOUSE, headers={"x-request-id": bad})
        assert r.headers["x-request-id"] != bad
        assert re.fullmatch(r"[0-9a-f]{32}", r.headers["x-request-id"])


# --- /model, /health ---------------------------------------------------------------------------


def test_model_metadata_without_and_with_reference(client: TestClient) -> None:
    r = client.get("/model")
    assert r.status_code == 200
    meta = r.json()
    assert meta["model_version"] == "test-1"
    assert [f["name"] for f in meta["features"]] == [f["name"] for f in FEATURES]
    assert "reference" not in meta
    assert re.fullmatch(r"[0-9a-f]{64}", meta["artifact"]["sha256"])
    full = client.get("/model", params={"include_reference": "true"}).json()
    assert set(full["reference"]["features"]) == {f["name"] for f in FEATURES}


def test_health(client: TestClient) -> None:
    assert client.get("/health/live").json() == {"status": "alive"}
    r = client.get("/health/ready")
    assert r.status_code == 200 and r.json()["model_version"] == "test-1"


def test_failed_load_leaves_the_app_up_but_not_ready(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    with make_client(str(tmp_path / "missing.joblib")) as c:
        assert c.get("/health/live").status_code == 200
        ready = c.get("/health/ready")
        assert ready.status_code == 503
        assert "no such artifact" in ready.json()["reason"]
        r = c.post("/predict", json=HOUSE)
        assert r.status_code == 503 and r.headers["retry-after"] == "1"
        assert c.get("/model").status_code == 503
        text = c.get("/metrics").text
        assert metric(text, "houseprice_model_ready") == 0
        assert metric(text, "houseprice_model_loads_total", result="failure") == 1
    lines = [json.loads(x) for x in capfd.readouterr().err.splitlines() if x.startswith("{")]
    errors = [x for x in lines if x["level"] == "error"]
    assert len(errors) == 1 and "no such artifact" in errors[0]["msg"]


def test_tampered_artifact_is_never_loaded(tmp_path: Path) -> None:
    path = build_artifact(tmp_path, "tampered")
    data = bytearray(Path(path).read_bytes())
    data[len(data) // 2] ^= 0xFF
    Path(path).write_bytes(bytes(data))
    with make_client(path) as c:
        r = c.get("/health/ready")
        assert r.status_code == 503 and "checksum mismatch" in r.json()["reason"]


def test_signing_key_requires_a_valid_signature(tmp_path: Path) -> None:
    unsigned = build_artifact(tmp_path / "u", "unsigned")
    with make_client(unsigned, model_signing_key="k1") as c:
        r = c.get("/health/ready")
        assert r.status_code == 503 and "signature" in r.json()["reason"]
    signed = build_artifact(tmp_path / "s", "signed", signing_key=b"k1")
    with make_client(signed, model_signing_key="k1") as c:
        assert c.get("/health/ready").status_code == 200
    with make_client(signed, model_signing_key="other") as c:
        assert "signature mismatch" in c.get("/health/ready").json()["reason"]


# --- /admin/reload -----------------------------------------------------------------------------


def auth(token: str = TOKEN) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"authorization": "Basic dXNlcjpwYXNz"}, 401),
        ({"authorization": "Bearer"}, 401),
        ({"authorization": "Bearer "}, 401),
        ({"authorization": "Bearer wrong-token"}, 403),
        ({"authorization": f"Bearer {TOKEN}x"}, 403),
    ],
)
def test_reload_requires_the_admin_token(
    client: TestClient, headers: dict[str, str], status: int
) -> None:
    r = client.post("/admin/reload", headers=headers)
    assert r.status_code == status
    if status == 401:
        assert r.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    ("body", "ctype", "status"),
    [
        (b'{"path": ', "application/json", 400),  # malformed JSON: 400, like every route
        (b'{"path": 5}', "application/json", 422),
        (b'{"path": "x", "other": 1}', "application/json", 422),
        (b'{"path": "x"}', "text/plain", 415),
    ],
)
def test_reload_bodies_are_read_like_every_other(
    client: TestClient, body: bytes, ctype: str, status: int
) -> None:
    r = client.post("/admin/reload", content=body, headers={**auth(), "content-type": ctype})
    assert r.status_code == status, r.text
    if status != 415:
        assert r.json()["error_count"] >= 1 and r.json()["detail"][0]["loc"][0] == "body"


def test_reload_is_disabled_without_admin_token(artifact: str) -> None:
    with make_client(artifact, admin_token=None) as c:
        r = c.post("/admin/reload", headers=auth())
        assert r.status_code == 403 and "disabled" in r.json()["detail"]


def test_reload_swaps_model_validator_and_openapi(tmp_path: Path) -> None:
    first = build_artifact(tmp_path, "v1")
    # v2 has no garage_type and is saved beside v1 in the same model directory
    build_artifact(tmp_path, "v2", names=("living_area", "neighborhood"), filename="next.joblib")
    with make_client(first) as c:
        props = c.get("/openapi.json").json()["components"]["schemas"]["House"]["properties"]
        assert "garage_type" in props
        assert c.post("/predict", json=HOUSE).json()["model_version"] == "v1"

        r = c.post("/admin/reload", headers=auth(), json={"path": "next.joblib"})
        assert r.status_code == 200, r.text
        assert r.json()["model_version"] == "v2" and r.json()["previous_version"] == "v1"

        assert c.post("/predict", json=HOUSE).status_code == 422  # garage_type now unknown
        small = {"living_area": 1500, "neighborhood": "NAmes"}
        assert c.post("/predict", json=small).json()["model_version"] == "v2"
        props = c.get("/openapi.json").json()["components"]["schemas"]["House"]["properties"]
        assert set(props) == {"living_area", "neighborhood"}
        assert c.get("/model").json()["model_version"] == "v2"
        text = c.get("/metrics").text
        assert metric(text, "houseprice_model_info", model_version="v2") == 1
        assert metric(text, "houseprice_model_info", model_version="v1") == 0
        assert metric(text, "houseprice_model_loads_total", result="success") == 2

        # no body: MODEL_PATH again
        r = c.post("/admin/reload", headers=auth())
        assert r.status_code == 200 and r.json()["model_version"] == "v1"


def test_reload_refuses_what_is_not_a_regular_file_or_too_large_before_reading(
    tmp_path: Path,
) -> None:
    import os

    first = build_artifact(tmp_path, "v1", names=("living_area", "neighborhood"))
    os.mkfifo(tmp_path / "fifo.joblib")  # would block a plain open() forever
    big = build_artifact(tmp_path, "v2", filename="big.joblib")
    fake_sidecar = build_artifact(tmp_path, "v3", filename="odd.joblib")
    os.unlink(fake_sidecar + ".sha256")
    os.mkfifo(fake_sidecar + ".sha256")
    size = Path(big).stat().st_size
    assert Path(first).stat().st_size < size  # the serving one is within every limit below
    cases = [
        (size, "fifo.joblib", "not a regular file"),
        (size, "odd.joblib", "odd.joblib.sha256: refused: not a regular file"),
        (size, ".", "not a regular file"),
        (size - 1, "big.joblib", f"{size} bytes is over the limit of {size - 1}"),
    ]
    for limit, name, why in cases:
        with make_client(first, max_artifact_bytes=limit) as c:
            start = time.monotonic()
            r = c.post("/admin/reload", headers=auth(), json={"path": name})
            assert r.status_code == 409 and why in r.json()["detail"], (name, r.text)
            assert time.monotonic() - start < 5
            assert c.get("/model").json()["model_version"] == "v1"
            text = c.get("/metrics").text
            assert metric(text, "houseprice_model_loads_total", result="failure") == 1


def test_reload_refuses_an_older_artifact_unless_asked(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    new = build_artifact(tmp_path, "new", created_at="2026-11-28T10:00:00Z")
    build_artifact(tmp_path, "old", filename="old.joblib", created_at="2026-11-20T10:00:00Z")
    with make_client(new) as c:
        r = c.post("/admin/reload", headers=auth(), json={"path": "old.joblib"})
        assert r.status_code == 409 and "allow_downgrade" in r.json()["detail"], r.text
        assert c.get("/model").json()["model_version"] == "new"
        r = c.post(
            "/admin/reload", headers=auth(), json={"path": "old.joblib", "allow_downgrade": True}
        )
        assert r.status_code == 200 and r.json()["model_version"] == "old"
        assert r.json()["previous_version"] == "new"
    lines = [json.loads(x) for x in capfd.readouterr().err.splitlines() if x.startswith("{")]
    assert any(x["msg"] == "downgrade allowed" and x["model_version"] == "old" for x in lines)


def test_a_reload_has_a_deadline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    from app import state

    first = build_artifact(tmp_path, "v1")
    release = threading.Event()
    real = state.load_model

    def slow(path: str, settings: Settings) -> Any:
        release.wait(10)
        return real(path, settings)

    with make_client(first, reload_timeout=0.3) as c:
        monkeypatch.setattr(state, "load_model", slow)
        start = time.monotonic()
        r = c.post("/admin/reload", headers=auth())
        assert r.status_code == 409 and "RELOAD_TIMEOUT" in r.json()["detail"], r.text
        assert time.monotonic() - start < 3
        r = c.post("/admin/reload", headers=auth())  # the overrun thread still holds on
        assert r.status_code == 409 and "still runs" in r.json()["detail"]
        assert c.post("/predict", json=HOUSE).status_code == 200  # the old model serves
        release.set()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            r = c.post("/admin/reload", headers=auth())
            if r.status_code == 200:
                break
            time.sleep(0.05)
        assert r.status_code == 200, r.text


def test_reload_of_a_bad_artifact_keeps_the_old_model(tmp_path: Path) -> None:
    first = build_artifact(tmp_path, "v1")
    bad = Path(build_artifact(tmp_path, "bad", filename="bad.joblib"))
    data = bytearray(bad.read_bytes())
    data[100] ^= 0x01
    bad.write_bytes(bytes(data))
    with make_client(first) as c:
        for body, status, words in [
            ({"path": "bad.joblib"}, 409, "checksum mismatch"),
            ({"path": "nothere.joblib"}, 409, "no such artifact"),
            ({"path": "../outside.joblib"}, 403, "outside the model directory"),
            ({"path": "/etc/passwd"}, 403, "outside the model directory"),
            ({"path": 5}, 422, "string"),
            ({"path": "model\u0000.joblib"}, 422, "should match pattern"),  # a NUL byte
            ({"other": "x"}, 422, "Extra"),
        ]:
            r = c.post("/admin/reload", headers=auth(), json=body)
            assert r.status_code == status, (body, r.text)
            assert words in json.dumps(r.json()["detail"]), r.text
        r = c.post("/admin/reload", headers={**auth(), "content-type": "text/plain"}, content=b"x")
        assert r.status_code == 415
        assert c.post("/predict", json=HOUSE).json()["model_version"] == "v1"
        assert c.get("/health/ready").status_code == 200
        text = c.get("/metrics").text
        assert metric(text, "houseprice_model_loads_total", result="failure") == 2


def test_reload_brings_up_an_app_that_started_without_a_model(tmp_path: Path) -> None:
    path = tmp_path / "model.joblib"
    with make_client(str(path)) as c:
        assert c.get("/health/ready").status_code == 503
        build_artifact(tmp_path, "late")
        r = c.post("/admin/reload", headers=auth())
        assert r.status_code == 200 and r.json()["previous_version"] is None
        assert c.get("/health/ready").json()["model_version"] == "late"


# --- /metrics, /feedback, /drift ---------------------------------------------------------------

CONTRACT_2 = [
    "houseprice_http_requests_total",
    "houseprice_http_request_duration_seconds_bucket",
    "houseprice_http_requests_in_flight",
    "houseprice_http_request_size_bytes_bucket",
    "houseprice_http_response_size_bytes_bucket",
    "houseprice_predictions_total",
    "houseprice_prediction_batch_size_bucket",
    "houseprice_predicted_price_dollars_bucket",
    "houseprice_prediction_errors_total",
    "houseprice_model_info",
    "houseprice_model_loads_total",
    "houseprice_model_last_load_timestamp_seconds",
    "houseprice_model_ready",
    "houseprice_model_test_rmse_dollars",
    "houseprice_input_missing_total",
    "houseprice_input_out_of_range_total",
    "houseprice_input_unknown_category_total",
    "houseprice_drift_score",
    "houseprice_drift_detected",
    "houseprice_drift_window_samples",
    "houseprice_feedback_total",
    "houseprice_feedback_abs_error_dollars_sum",
    "houseprice_feedback_squared_error_dollars_sum",
    "process_resident_memory_bytes",
]


def test_metrics_expose_every_contract_name_with_counts(fresh: TestClient) -> None:
    rows = [
        HOUSE,
        {"living_area": 50_000 / 10, "neighborhood": "Atlantis"},
        {**HOUSE, "lot_area": 2},
    ]
    assert fresh.post("/predict", json={"instances": rows}).status_code == 200
    price = fresh.post("/predict", json=HOUSE).json()["price"]
    assert fresh.post("/predict", json={"living_area": True}).status_code == 422
    fb = fresh.post(
        "/feedback",
        json={"model_version": "test-1", "predicted_price": price, "actual_price": price + 1000},
    )
    assert fb.status_code == 200
    r = fresh.get("/metrics")
    assert r.headers["content-type"].startswith("text/plain")
    text = r.text
    for name in CONTRACT_2:
        assert re.search(rf"^{name}[{{ ]", text, re.M), f"{name} missing from /metrics"
    m = lambda name, **kw: metric(text, name, **kw)  # noqa: E731
    assert m("houseprice_http_requests_total", method="POST", route="/predict", status="2xx") == 2
    assert m("houseprice_http_requests_total", method="POST", route="/predict", status="4xx") == 1
    assert m("houseprice_predictions_total", model_version="test-1") == 4
    assert m("houseprice_prediction_batch_size_count") == 2
    assert m("houseprice_predicted_price_dollars_count", model_version="test-1") == 4
    assert m("houseprice_prediction_errors_total", reason="validation") == 1
    # row 1: lot_area and garage_type missing; row 0 of HOUSE has all four
    assert m("houseprice_input_missing_total", feature="lot_area") == 1
    assert m("houseprice_input_missing_total", feature="garage_type") == 1
    # living_area 5000 is over the training max of the first 1200 rows; lot_area 2 under min
    assert m("houseprice_input_out_of_range_total", feature="living_area") == 1
    assert m("houseprice_input_out_of_range_total", feature="lot_area") == 1
    assert m("houseprice_model_ready") == 1
    assert m("houseprice_model_test_rmse_dollars", model_version="test-1") > 0
    assert m("houseprice_drift_window_samples", feature="living_area", model_version="test-1") == 4
    assert m("houseprice_feedback_total", model_version="test-1") == 1
    assert m("houseprice_feedback_abs_error_dollars_sum", model_version="test-1") == 1000
    assert m("houseprice_feedback_squared_error_dollars_sum", model_version="test-1") == 1e6
    assert (
        m(
            "houseprice_http_request_duration_seconds_bucket",
            le="0.0001",
            method="POST",
            route="/predict",
        )
        >= 0
    )  # the 0.1 ms bucket exists


def test_unmatched_routes_do_not_create_series_per_path(fresh: TestClient) -> None:
    for i in range(3):
        assert fresh.get(f"/nothing/{i}").status_code == 404
    text = fresh.get("/metrics").text
    assert metric(text, "houseprice_http_requests_total", route="unmatched", status="4xx") == 3
    assert "/nothing/" not in text


def test_predicted_price_histogram_matches_a_literal_loop(fresh: TestClient) -> None:
    rows = [{**HOUSE, "living_area": float(a)} for a in range(600, 3600, 100)]
    prices = fresh.post("/predict", json={"instances": rows}).json()["prices"]
    text = fresh.get("/metrics").text
    for le in ("100000.0", "150000.0", "200000.0", "300000.0", "1e+06"):
        got = metric(
            text, "houseprice_predicted_price_dollars_bucket", le=le, model_version="test-1"
        )
        assert got == sum(1 for p in prices if p <= float(le)), le
    total = metric(text, "houseprice_predicted_price_dollars_sum", model_version="test-1")
    assert total == pytest.approx(sum(prices))


def test_feedback_validation(fresh: TestClient) -> None:
    good = {"model_version": "test-1", "predicted_price": 200000.0, "actual_price": 180000}
    r = fresh.post("/feedback", json=good)
    assert r.json() == {"model_version": "test-1", "abs_error": 20000.0, "squared_error": 4e8}
    assert fresh.post("/feedback", json={**good, "model_version": "made-up"}).status_code == 404
    assert fresh.post("/feedback", json={**good, "actual_price": -1}).status_code == 422
    assert fresh.post("/feedback", json={**good, "actual_price": "1"}).status_code == 422
    assert fresh.post("/feedback", json={**good, "extra": 1}).status_code == 422
    assert (
        fresh.post("/feedback", content=b"{", headers={"content-type": "application/json"})
    ).status_code == 400
    assert (
        fresh.post("/feedback", content=b"x", headers={"content-type": "text/plain"}).status_code
        == 415
    )
    text = fresh.get("/metrics").text
    assert metric(text, "houseprice_feedback_total", model_version="test-1") == 1
    assert "made-up" not in text


def test_drift_report_follows_the_requests(fresh: TestClient) -> None:
    cols, _ = training_table(FEATURES)
    rows = []
    # a random sample: the file is ordered by sale, a prefix would drift on neighbourhood
    for i in np.random.default_rng(0).choice(len(cols["living_area"]), 300, replace=False):
        row = {f["name"]: cols[f["name"]][i] for f in FEATURES}
        row = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
        row["living_area"] = float(row["living_area"]) * 3  # shifted
        row["lot_area"] = None if row["lot_area"] is None else float(row["lot_area"])
        rows.append(row)
    rows = [r for r in rows if r["living_area"] <= 20000]
    assert fresh.post("/predict", json={"instances": rows}).status_code == 200
    report = fresh.get("/drift").json()
    assert report["model_version"] == "test-1"
    assert set(report["features"]) == {f["name"] for f in FEATURES}
    assert report["features"]["living_area"]["samples"] == len(rows)
    assert report["features"]["living_area"]["drifted"] is True
    assert report["features"]["neighborhood"]["drifted"] is False
    text = fresh.get("/metrics").text
    assert metric(text, "houseprice_drift_detected", feature="living_area") == 1
    assert metric(text, "houseprice_drift_detected", feature="neighborhood") == 0


def test_monitoring_disabled_records_nothing_on_the_request_path(artifact: str) -> None:
    with make_client(artifact, monitoring_enabled=False) as c:
        assert c.post("/predict", json=HOUSE).status_code == 200
        assert c.get("/drift").status_code == 503
        text = c.get("/metrics").text
        assert metric(text, "houseprice_predictions_total", model_version="test-1") == 0
        assert metric(text, "houseprice_http_requests_total", route="/predict") == 0
        assert "houseprice_drift_score{" not in text
        assert metric(text, "houseprice_model_ready") == 1  # state gauges still shown


@pytest.mark.parametrize("otel", [False, True])
def test_fastapi_telemetry_follows_otel_enabled(
    artifact: str, otel: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With an OpenTelemetry tracer provider configured, FastAPI's native bridge asks it for
    a tracer on a request only when ``OTEL_ENABLED``; off (the default), requests skip it."""
    from opentelemetry import trace

    asked: list[str] = []

    class Recording(trace.TracerProvider):  # an SDK's stand-in: FastAPI skips the NoOp one
        def get_tracer(
            self, instrumenting_module_name: str, *args: Any, **kwargs: Any
        ) -> trace.Tracer:
            asked.append(instrumenting_module_name)
            return trace.NoOpTracer()

    monkeypatch.setattr(trace, "_TRACER_PROVIDER", Recording())
    with make_client(artifact, otel_enabled=otel) as c:
        assert c.post("/predict", json=HOUSE).status_code == 200
        assert c.get("/health/live").status_code == 200
    assert (asked != []) is otel, asked


# --- Open Inference Protocol (V2) --------------------------------------------------------------


def v2_request(rows: list[dict[str, Any]]) -> dict[str, Any]:
    inputs = []
    for f in FEATURES:
        numeric = f["kind"] == "numeric"
        inputs.append(
            {
                "name": f["name"],
                "shape": [len(rows)],
                "datatype": "FP64" if numeric else "BYTES",
                "data": [r.get(f["name"]) for r in rows],
            }
        )
    return {"id": "req-1", "inputs": inputs}


def test_v2_metadata_and_ready(client: TestClient) -> None:
    meta = client.get("/v2/models/houseprice").json()
    assert meta["name"] == "houseprice" and meta["versions"] == ["test-1"]
    assert {i["name"]: i["datatype"] for i in meta["inputs"]} == {
        "living_area": "FP64",
        "lot_area": "FP64",
        "neighborhood": "BYTES",
        "garage_type": "BYTES",
    }
    assert meta["outputs"] == [{"name": "price", "datatype": "FP64", "shape": [-1]}]
    assert client.get("/v2/models/houseprice/ready").json() == {"name": "houseprice", "ready": True}
    r = client.get("/v2/models/other/ready")
    assert r.status_code == 404 and "other" in r.json()["error"]


def test_v2_infer_matches_predict(client: TestClient) -> None:
    rows: list[dict[str, Any]] = [
        HOUSE,
        {"living_area": 2400, "lot_area": None, "neighborhood": "NoRidge"},
    ]
    r = client.post("/v2/models/houseprice/infer", json=v2_request(rows))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model_name"] == "houseprice" and body["id"] == "req-1"
    (out,) = body["outputs"]
    assert out["name"] == "price" and out["datatype"] == "FP64" and out["shape"] == [2]
    expected = client.post("/predict", json={"instances": rows}).json()["prices"]
    assert out["data"] == expected
    # [n, 1] tensors given as nested lists are accepted too
    req = v2_request(rows)
    for t in req["inputs"]:
        t["shape"] = [2, 1]
        t["data"] = [[v] for v in t["data"]]
    assert (
        client.post("/v2/models/houseprice/infer", json=req).json()["outputs"][0]["data"]
        == expected
    )


def test_v2_infer_errors_are_400_with_a_message(client: TestClient) -> None:
    def call(req: dict[str, Any], name: str = "houseprice") -> tuple[int, str]:
        r = client.post(f"/v2/models/{name}/infer", json=req)
        return r.status_code, r.json()["error"]

    good = v2_request([HOUSE])
    bad_type = v2_request([{**HOUSE, "living_area": True}])
    assert call(bad_type) == (400, "input 'living_area' element 0: Input should be a valid number")
    wrong_dtype = v2_request([HOUSE])
    wrong_dtype["inputs"][2]["datatype"] = "FP64"
    assert call(wrong_dtype)[0] == 400 and "expected BYTES" in call(wrong_dtype)[1]
    shape = v2_request([HOUSE])
    shape["inputs"][0]["shape"] = [3]
    assert call(shape)[0] == 400 and "shape" in call(shape)[1]
    unknown = v2_request([HOUSE])
    unknown["inputs"][0]["name"] = "pool"
    assert call(unknown)[0] == 400 and "unknown input 'pool'" in call(unknown)[1]
    ragged = v2_request([HOUSE])
    ragged["inputs"][0]["data"] = [1500, 1600]
    ragged["inputs"][0]["shape"] = [2]
    assert call(ragged)[0] == 400 and "different lengths" in call(ragged)[1]
    missing = v2_request([HOUSE])
    del missing["inputs"][0]  # living_area is required
    assert call(missing)[0] == 400 and "living_area" in call(missing)[1]
    assert call({**good, "outputs": [{"name": "rent"}]})[0] == 400
    assert call({"inputs": "x"})[0] == 400
    assert call(good, name="other")[0] == 404
    r = client.post(
        "/v2/models/houseprice/infer", content=b"{", headers={"content-type": "application/json"}
    )
    assert r.status_code == 400 and "error" in r.json()


# --- docs, OpenAPI, logs -----------------------------------------------------------------------


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_use_only_local_assets(client: TestClient, page: str) -> None:
    r = client.get(page)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    urls = re.findall(r"""(?:src|href)=["']([^"']+)""", r.text)
    assert urls, r.text
    assert all(u.startswith("/static/") for u in urls), urls
    assert "https://" not in r.text.replace("https://swagger.io", "")  # no CDN at all
    for u in urls:
        asset = client.get(u)
        assert asset.status_code == 200 and len(asset.content) > 500, u


def test_openapi_documents_the_models_own_fields(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    body = doc["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]
    refs = [s["$ref"] for s in body["schema"]["oneOf"]]
    assert refs == ["#/components/schemas/House", "#/components/schemas/HouseBatch"]
    example = {
        "living_area": 1500,
        "lot_area": 9500,
        "neighborhood": "NAmes",
        "garage_type": "Attchd",
    }
    assert body["examples"]["house"]["value"] == example
    assert body["examples"]["batch"]["value"] == {"instances": [example, example]}
    op = doc["paths"]["/predict"]["post"]
    assert op["operationId"] == "predict"
    ok = op["responses"]["200"]["content"]["application/json"]["examples"]
    price = client.post("/predict", json=example).json()["price"]  # a real answer, not made up
    assert ok["house"]["value"]["price"] == pytest.approx(price, rel=1e-9)
    assert ok["batch"]["value"]["prices"] == pytest.approx([price, price], rel=1e-9)
    assert "500" in op["responses"] and "422" in op["responses"]
    house = doc["components"]["schemas"]["House"]
    assert house["additionalProperties"] is False
    assert set(house["required"]) == {"living_area", "neighborhood"}
    living = house["properties"]["living_area"]
    assert living["type"] == "number" and living["minimum"] == 1 and living["maximum"] == 20000
    assert "sq ft" in living["description"] and living["x-unit"] == "sq ft"
    hood = house["properties"]["neighborhood"]
    assert "NAmes" in hood["examples"] and "NAmes" in hood["description"]
    lot = house["properties"]["lot_area"]
    assert {"type": "null"} in lot["anyOf"]  # optional and nullable
    batch = doc["components"]["schemas"]["HouseBatch"]["properties"]["instances"]
    assert batch["maxItems"] == 50 and batch["minItems"] == 1
    for path in (
        "/predict",
        "/model",
        "/health/ready",
        "/admin/reload",
        "/metrics",
        "/drift",
        "/feedback",
        "/v2/models/{name}",
        "/v2/models/{name}/ready",
        "/v2/models/{name}/infer",
    ):
        assert path in doc["paths"], path
    assert "/docs" not in doc["paths"]


def test_one_json_access_line_per_request_without_body_or_token(
    artifact: str, capfd: pytest.CaptureFixture[str]
) -> None:
    with make_client(artifact) as c:
        capfd.readouterr()
        c.post(
            "/predict",
            json={**HOUSE, "neighborhood": "SecretVille"},
            headers={"x-request-id": "rid-1"},
        )
        c.post("/admin/reload", headers={"authorization": "Bearer not-the-token"})
    err = capfd.readouterr().err
    lines = [json.loads(x) for x in err.splitlines() if x.startswith("{")]
    access = [x for x in lines if x["logger"] == "houseprice.access"]
    assert [x["path"] for x in access] == ["/predict", "/admin/reload"]
    first = access[0]
    assert first["method"] == "POST" and first["status"] == 200 and first["request_id"] == "rid-1"
    assert first["latency_ms"] > 0
    assert access[1]["status"] == 403
    assert "SecretVille" not in err and "not-the-token" not in err


def test_a_table_of_one_reports_as_its_row_in_a_batch(client: TestClient) -> None:
    """One path for one house and many: each house alone gets the price and the quality
    counts it gets as a row of the batch (this artifact is a tree: the pipeline prices)."""
    model = client.app.state.service.holder.current  # type: ignore[attr-defined]
    houses = [
        HOUSE,
        {"living_area": 1, "lot_area": None, "neighborhood": "Atlantis", "garage_type": "Moat"},
        {"living_area": 1, "lot_area": None, "neighborhood": "NAmes", "garage_type": None},
        {"living_area": 19999.5, "lot_area": 2.0, "neighborhood": "NAmes", "garage_type": "Moat"},
    ]
    rows = [model.schema.house.model_validate(h) for h in houses]
    batch = model.table(rows)
    q_batch, prices = model.quality(batch), model.predict(batch)
    missing: dict[str, int] = {}
    out_of_range: dict[str, int] = {}
    unknown = []
    for i, row in enumerate(rows):
        one = model.table([row])
        assert model.predict(one) == [prices[i]]
        q = model.quality(one)
        for total, part in ((missing, q.missing), (out_of_range, q.out_of_range)):
            for name, n in part.items():
                total[name] = total.get(name, 0) + n
        unknown += [(i, name, value) for _, name, value in q.unknown]
    assert (missing, out_of_range, unknown) == (
        q_batch.missing,
        q_batch.out_of_range,
        q_batch.unknown,
    )
    assert q_batch.missing == {"lot_area": 2, "garage_type": 1}
    assert q_batch.unknown == [(1, "neighborhood", "Atlantis"), (1, "garage_type", "Moat"),
                               (3, "garage_type", "Moat")]  # fmt: skip


def test_client_disconnect_mid_body_is_not_a_server_error(client: TestClient) -> None:
    """Driven over raw ASGI: the client sends half a body, then hangs up."""
    import asyncio

    app = client.app
    messages: list[dict[str, Any]] = [
        {"type": "http.request", "body": b'{"living_area": 15', "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        message: dict[str, Any] = messages.pop(0)
        return message

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/predict",
        "raw_path": b"/predict",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/json")],
        "client": ("127.0.0.1", 1),
        "server": ("testserver", 80),
        "state": {},
    }
    asyncio.run(app(scope, receive, send))  # type: ignore[arg-type]
    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 499


# --- a model that fails is a server fault, answered 500 and counted ----------------------------


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        ("raise", "prediction failed"),
        ("nan", "the model returned a non-finite price"),
    ],
)
def test_a_failing_model_answers_500_on_both_prediction_routes(
    fresh: TestClient, monkeypatch: pytest.MonkeyPatch, broken: str, message: str
) -> None:
    model = fresh.app.state.service.holder.current  # type: ignore[attr-defined]

    def predict(table: dict[str, tuple[Any, ...]]) -> list[float]:
        if broken == "raise":
            raise RuntimeError("boom")
        return [math.nan] * len(next(iter(table.values())))

    monkeypatch.setattr(model, "predict", predict)
    r = fresh.post("/predict", json=HOUSE)
    assert r.status_code == 500 and r.json() == {"detail": message}
    r = fresh.post("/v2/models/houseprice/infer", json=v2_request([HOUSE]))
    assert r.status_code == 500 and r.json() == {"error": message}
    reason = "model_error" if broken == "raise" else "non_finite"
    text = fresh.get("/metrics").text
    assert re.search(
        rf'^houseprice_prediction_errors_total{{reason="{reason}"}} 2\.0$', text, re.M
    ), text
    assert "houseprice_predictions_total{" not in text  # nothing was served


# --- the integer feature kind ------------------------------------------------------------------


def test_an_integer_feature_takes_whole_numbers_only(tmp_path: Path) -> None:
    """``kind: integer`` (counts, years, grades): documented as ``integer``; 2.0 is 2; 2.5 is
    a 422 naming the field; everywhere else it is a numeric feature (pricing, quality, drift,
    V2)."""
    path = build_artifact(tmp_path, "int-1", names=("living_area", "neighborhood", "bedrooms"))
    pipe = load_artifact(path).pipeline
    with make_client(path) as c:
        doc = c.get("/openapi.json").json()
        beds = doc["components"]["schemas"]["House"]["properties"]["bedrooms"]
        assert {"type": "integer", "minimum": 0, "maximum": 20} in beds["anyOf"]
        house = {"living_area": 1500, "neighborhood": "NAmes"}
        whole = c.post("/predict", json={**house, "bedrooms": 2.0})
        two = c.post("/predict", json={**house, "bedrooms": 2})
        assert whole.status_code == two.status_code == 200
        assert whole.json()["price"] == two.json()["price"]
        table = {
            "living_area": np.array([1500.0]),
            "neighborhood": np.array(["NAmes"], dtype=object),
            "bedrooms": np.array([2.0]),
        }
        assert two.json()["price"] == pytest.approx(float(pipe.predict(table)[0]), rel=1e-12)
        for bad in (2.5, 1960.7, "2", True):
            r = c.post("/predict", json={**house, "bedrooms": bad})
            assert r.status_code == 422, bad
            assert r.json()["detail"][0]["loc"] == ["body", "bedrooms"], r.json()
        r = c.post("/predict", json={"instances": [house, {**house, "bedrooms": 6.5}]})
        assert r.status_code == 422
        assert r.json()["detail"][0]["loc"] == ["body", "instances", 1, "bedrooms"]
        assert "integer" in r.json()["detail"][0]["msg"]
        assert c.post("/predict", json={**house, "bedrooms": 25}).status_code == 422  # bounds
        assert c.post("/predict", json={**house, "bedrooms": None}).status_code == 200
        meta = c.get("/v2/models/houseprice").json()
        assert {"name": "bedrooms", "datatype": "FP64", "shape": [-1]} in meta["inputs"]
        inputs = [
            {"name": "living_area", "shape": [1], "datatype": "FP64", "data": [1500]},
            {"name": "neighborhood", "shape": [1], "datatype": "BYTES", "data": ["NAmes"]},
            {"name": "bedrooms", "shape": [1], "datatype": "INT64", "data": [2]},
        ]
        v2 = c.post("/v2/models/houseprice/infer", json={"inputs": inputs})
        assert v2.status_code == 200 and v2.json()["outputs"][0]["data"] == [two.json()["price"]]
        for _ in range(3):
            c.post("/predict", json={**house, "bedrooms": 19.0})  # inside bounds, above training
        text = c.get("/metrics").text
        assert metric(text, "houseprice_input_out_of_range_total", feature="bedrooms") == 3
        assert metric(text, "houseprice_input_missing_total", feature="bedrooms") == 1
        report = c.get("/drift").json()
        assert report["features"]["bedrooms"]["samples"] == 7  # every priced house
        assert report["features"]["bedrooms"]["kind"] == "numeric"


# --- the request guard: Content-Length, route labels, unread bodies ---------------------------


def _asgi(app: Any, method: str, path: str, headers: list[tuple[bytes, bytes]],
          body: list[dict[str, Any]]) -> list[dict[str, Any]]:  # fmt: skip
    """One request through the ASGI interface (headers as a server would give them)."""
    import asyncio

    sent: list[dict[str, Any]] = []
    messages = list(body)

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop(0)
        await asyncio.sleep(3600)  # a client that never sends more
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "headers": headers, "client": ("127.0.0.1", 1),
        "server": ("testserver", 80), "state": {},
    }  # fmt: skip
    asyncio.run(asyncio.wait_for(app(scope, receive, send), 10))
    return sent


@pytest.mark.parametrize(
    "length", [b"0" * 5000, b"-1", b"1e3", b"12 ", b"\xd9\xa1", b"99999999999999999999"]
)
def test_a_content_length_that_is_not_a_sane_integer_is_400_counted_and_logged(
    fresh: TestClient, length: bytes, capfd: pytest.CaptureFixture[str]
) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", length)]
    sent = _asgi(fresh.app, "POST", "/predict", headers, [])
    start = sent[0]
    assert start["status"] == 400
    assert (b"connection", b"close") in start["headers"]
    assert b"Content-Length" in sent[1]["body"]
    text = fresh.get("/metrics").text
    assert (
        metric(
            text, "houseprice_http_requests_total", method="POST", route="unmatched", status="4xx"
        )
        == 1
    )
    lines = [json.loads(x) for x in capfd.readouterr().err.splitlines() if x.startswith("{")]
    assert any(x.get("path") == "/predict" and x.get("status") == 400 for x in lines)


def test_an_answer_sent_before_the_declared_body_closes_the_connection(
    fresh: TestClient,
) -> None:
    """A route that answers without reading the body (415 here, 404, a GET) must not leave
    the server reading a trickled body for as long as the client likes."""
    headers = [(b"content-type", b"text/plain"), (b"content-length", b"100")]
    first_part = [{"type": "http.request", "body": b"x" * 10, "more_body": True}]
    for method, path in (("POST", "/predict"), ("POST", "/nowhere"), ("GET", "/health/live")):
        sent = _asgi(fresh.app, method, path, headers, list(first_part))
        assert (b"connection", b"close") in sent[0]["headers"], (method, path)
    full = [{"type": "http.request", "body": b"{}", "more_body": False}]
    headers = [(b"content-type", b"application/json"), (b"content-length", b"2")]
    sent = _asgi(fresh.app, "POST", "/feedback", headers, full)
    assert (b"connection", b"close") not in sent[0]["headers"]  # read in full: keep-alive


def test_static_assets_have_their_own_route_label(fresh: TestClient) -> None:
    assert fresh.get("/static/swagger-ui.css").status_code == 200
    assert fresh.get("/static/nothing-here.js").status_code == 404
    text = fresh.get("/metrics").text
    http = "houseprice_http_requests_total"
    assert metric(text, http, method="GET", route="/static/*", status="2xx") == 1
    assert metric(text, http, method="GET", route="/static/*", status="4xx") == 1
    assert metric(text, http, method="GET", route="unmatched") == 0
