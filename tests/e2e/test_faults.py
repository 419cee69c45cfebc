"""Bad artifacts against a real uvicorn process: never loaded, never ready, never served.

Every bad artifact is built from the session's freshly trained one, the way it goes wrong in
practice: missing, truncated, corrupted, tampered (a valid pickle next to a stale checksum),
swapped together with a recomputed checksum (caught only by the HMAC signature), unsigned,
from an incompatible format version, or a valid pickle that is not an artifact at all.

The tampered payloads are pickles that *would run code* when unpickled (they create a marker
file): the marker's absence proves the verification happens before unpickling, not after.

Start-up: the process stays up, ``/health/ready`` and ``/predict`` answer 503, and the log
says why in one line. Hot reload: with a good model serving, ``/admin/reload`` of each bad
artifact is refused (409) while a client keeps predicting with zero failed requests.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import joblib
import pytest

from model.workflow.artifact import hmac_sha256, load_artifact

from .conftest import Server

pytestmark = pytest.mark.e2e

KEY = "e2e-signing-key-0123456789abcdef"
TOKEN = "e2e-admin-token-fedcba9876543210"


class _RunsCode:
    """Unpickling this calls ``open(marker, "w")``: a stand-in for an attacker's payload."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:
        return (open, (str(self.marker), "w"))


def hostile_pickle(marker: Path) -> bytes:
    """A joblib-loadable pickle with the artifact's layout whose loading runs code."""
    buf = io.BytesIO()
    joblib.dump({"format_version": 1, "pipeline": _RunsCode(marker), "metadata": {}}, buf)
    return buf.getvalue()


@dataclass
class Bad:
    """One bad artifact and what the one log line must say about it.

    ``data(good, marker)`` gives the bytes written (``None``: no file); ``checksum`` and
    ``sign`` say over which bytes the ``.sha256`` and ``.sig`` sidecars are computed: the
    written ones (an attacker who rewrote the sidecar), the good artifact's (a stale
    sidecar), or none (no sidecar).
    """

    data: Callable[[bytes, Path], bytes | None]
    checksum: str | None
    sign: str | None
    why: str


def _format_2(good: bytes) -> bytes:
    payload = joblib.load(io.BytesIO(good))
    payload["format_version"] = 2
    buf = io.BytesIO()
    joblib.dump(payload, buf)
    return buf.getvalue()


def _not_artifact(good: bytes, marker: Path) -> bytes:
    buf = io.BytesIO()
    joblib.dump([1, 2, 3], buf)
    return buf.getvalue()


def _corrupt(good: bytes, marker: Path) -> bytes:
    mid = len(good) // 2
    return good[:mid] + bytes(b ^ 0xFF for b in good[mid : mid + 64]) + good[mid + 64 :]


def _half(good: bytes, marker: Path) -> bytes:
    return good[: len(good) // 2]


BAD: dict[str, Bad] = {
    "missing": Bad(lambda g, m: None, None, None, "no such artifact"),
    "checksum-missing": Bad(lambda g, m: g, None, "data", "checksum file"),
    "truncated": Bad(_half, "good", "good", "checksum mismatch"),
    # With the key set, the missing signature is refused before any unpickling.
    "truncated-rehashed": Bad(_half, "data", None, "signature"),
    "corrupted": Bad(_corrupt, "good", "good", "checksum mismatch"),
    # A valid (hostile) pickle next to the good artifact's checksum.
    "tampered": Bad(lambda g, m: hostile_pickle(m), "good", "good", "checksum mismatch"),
    # The attacker recomputed the checksum; without the key they cannot recompute the HMAC.
    "swapped-rehashed": Bad(lambda g, m: hostile_pickle(m), "data", "good", "signature mismatch"),
    "unsigned": Bad(lambda g, m: g, "data", None, "signature"),
    "format-version-2": Bad(
        lambda g, m: _format_2(g), "data", "data", "incompatible format_version 2"
    ),
    "not-an-artifact": Bad(_not_artifact, "data", "data", "not a houseprice artifact"),
}


def _write(path: Path, data: bytes, *, checksum: bytes | None, sign: bytes | None) -> None:
    """The artifact bytes and sidecars, the checksum/signature computed over the given bytes."""
    path.write_bytes(data)
    if checksum is not None:
        digest = hashlib.sha256(checksum).hexdigest()
        path.with_name(path.name + ".sha256").write_text(f"{digest}  {path.name}\n")
    if sign is not None:
        sig = hmac_sha256(KEY.encode(), sign)
        path.with_name(path.name + ".sig").write_text(sig + "\n")


def build(path: Path, good: bytes, bad: Bad, marker: Path) -> None:
    data = bad.data(good, marker)
    if data is None:
        return
    over = {"data": data, "good": good, None: None}
    _write(path, data, checksum=over[bad.checksum], sign=over[bad.sign])


@pytest.fixture(scope="module")
def model_dir(artifact_path: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model directory: the good artifact, signed with KEY, and every bad one beside it."""
    d = tmp_path_factory.mktemp("models")
    good = Path(artifact_path).read_bytes()
    _write(d / "model.joblib", good, checksum=good, sign=good)
    _write(d / "good-copy.joblib", good, checksum=good, sign=good)
    for name, bad in BAD.items():
        build(d / f"{name}.joblib", good, bad, d / f"PWNED-{name}")
    return d


def test_the_hostile_payload_really_runs_code_when_unpickled(tmp_path: Path) -> None:
    """Guards the guard: without verification, loading this payload would run code."""
    marker = tmp_path / "marker"
    joblib.load(io.BytesIO(hostile_pickle(marker)))
    assert marker.exists()


def test_the_good_signed_artifact_loads(model_dir: Path) -> None:
    art = load_artifact(model_dir / "model.joblib", signing_key=KEY.encode())
    assert art.signed


def _reason(case: str) -> str:
    return BAD[case].why


@pytest.mark.parametrize("case", list(BAD))
def test_bad_artifact_at_start_up_never_becomes_ready(
    serve: Callable[..., Server], model_dir: Path, case: str
) -> None:
    path = model_dir / f"{case}.joblib"
    server = serve(
        {"MODEL_PATH": str(path), "MODEL_SIGNING_KEY": KEY, "ADMIN_TOKEN": TOKEN}, ready=False
    )
    with httpx.Client(base_url=server.url, timeout=10) as c:
        for _ in range(3):  # stays 503: no retry loop quietly loads it later
            ready = c.get("/health/ready")
            assert ready.status_code == 503, ready.text
            assert _reason(case) in ready.json()["reason"]
        assert c.get("/health/live").status_code == 200
        predict = c.post("/predict", json={"living_area": 1500})
        assert predict.status_code == 503
        assert c.get("/v2/models/houseprice/ready").status_code == 503
    assert not (model_dir / f"PWNED-{case}").exists(), "the payload was unpickled"
    assert server.stop() == 0
    lines = [json.loads(x) for x in server.logs().splitlines() if x.startswith("{")]
    why = [x for x in lines if _reason(case) in x.get("msg", "")]
    assert len(why) == 1, why  # one line says why...
    assert why[0]["level"] == "error" and str(path) in why[0]["msg"]
    assert "\n" not in why[0]["msg"]  # ...and it is one line, not a traceback
    assert not [x for x in lines if "exc" in x], "a traceback was logged"


def test_reload_of_each_bad_artifact_is_refused_while_serving(
    serve: Callable[..., Server], model_dir: Path
) -> None:
    """A client predicts without pause while every bad artifact is offered to /admin/reload."""
    server = serve(
        {
            "MODEL_PATH": str(model_dir / "model.joblib"),
            "MODEL_SIGNING_KEY": KEY,
            "ADMIN_TOKEN": TOKEN,
        }
    )
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=server.url, timeout=10) as c:
        version = c.get("/health/ready").json()["model_version"]
        house = c.get("/model").json()["features"]
    example = {f["name"]: f["example"] for f in house if f.get("example") is not None}

    statuses: dict[int, int] = {}
    versions: set[str] = set()
    failures: list[str] = []
    stop = threading.Event()

    def client() -> None:
        with httpx.Client(base_url=server.url, timeout=10) as c:
            while not stop.is_set():
                try:
                    r = c.post("/predict", json=example)
                except httpx.HTTPError as e:  # a failed request, not an answer
                    failures.append(repr(e))
                    continue
                statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
                if r.status_code == 200:
                    versions.add(r.json()["model_version"])

    def served_at_least(n: int) -> None:
        """Wait (bounded) until the clients have had ``n`` answers: proof they are running."""
        deadline = time.monotonic() + 30
        while sum(statuses.values()) < n and time.monotonic() < deadline:
            time.sleep(0.01)

    threads = [threading.Thread(target=client) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        served_at_least(25)  # the clients are predicting before the first reload...
        with httpx.Client(base_url=server.url, timeout=30) as admin:
            for case in BAD:
                r = admin.post("/admin/reload", json={"path": f"{case}.joblib"}, headers=auth)
                assert r.status_code == 409, (case, r.status_code, r.text)
                assert "previous model keeps serving" in r.json()["detail"]
                assert _reason(case) in r.json()["detail"], (case, r.text)
                assert admin.get("/health/ready").json()["model_version"] == version
            ok = admin.post("/admin/reload", json={"path": "good-copy.joblib"}, headers=auth)
            assert ok.status_code == 200, ok.text
            assert ok.json()["previous_version"] == version
        served_at_least(sum(statuses.values()) + 25)  # ...and still after the last one
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    assert not failures, failures[:5]
    assert set(statuses) == {200}, statuses
    assert sum(statuses.values()) >= 50, statuses  # the client really ran throughout
    assert versions == {version}
    assert not list(model_dir.glob("PWNED-*")), "a payload was unpickled"
    refusals = [
        json.loads(x)
        for x in server.logs().splitlines()
        if x.startswith("{") and "reload refused" in x
    ]
    assert len(refusals) == len(BAD), [r["msg"] for r in refusals]
    assert server.stop() == 0


def test_reload_outside_the_model_directory_is_refused_before_reading(
    serve: Callable[..., Server], model_dir: Path, tmp_path: Path
) -> None:
    """A path escaping the directory is refused (403) without being opened: an attacker's
    file elsewhere would come with a matching checksum of its own."""
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    marker = tmp_path / "PWNED-outside"
    payload = hostile_pickle(marker)
    _write(outside / "model.joblib", payload, checksum=payload, sign=payload)
    server = serve({"MODEL_PATH": str(model_dir / "model.joblib"), "ADMIN_TOKEN": TOKEN})
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=server.url, timeout=10) as c:
        for path in (str(outside / "model.joblib"), f"../{outside.name}/model.joblib"):
            r = c.post("/admin/reload", json={"path": path}, headers=auth)
            assert r.status_code == 403, r.text
            assert "outside the model directory" in r.json()["detail"]
        assert c.get("/health/ready").status_code == 200
    assert not marker.exists()
    shutil.rmtree(outside)
