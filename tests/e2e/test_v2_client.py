"""The V2 (Open Inference Protocol) routes through a real client, ``tritonclient[http]``,
against the service as deployed (``python -m app`` on a free port, the default trained model).

Server metadata, liveness and readiness, model metadata and readiness (with and without the
version), and an inference whose price and interval equal ``/predict``'s, for one house and a
batch; then the protocol's errors as the client raises them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import numpy as np
import pytest
from tritonclient.http import InferenceServerClient, InferInput, InferRequestedOutput
from tritonclient.utils import InferenceServerException

from e2e.conftest import Server

pytestmark = pytest.mark.e2e

MODEL = "houseprice"


@pytest.fixture
def server(serve: Callable[..., Server], artifact_path: str) -> Server:
    return serve({"MODEL_PATH": artifact_path})


@pytest.fixture
def client(server: Server) -> Iterator[InferenceServerClient]:
    c = InferenceServerClient(server.url.removeprefix("http://"), network_timeout=30.0)
    yield c
    c.close()


def houses(server: Server) -> list[dict[str, Any]]:
    """The schema's example house, and one with its first numeric feature changed."""
    meta = httpx.get(server.url + "/model").json()
    one = {f["name"]: f["example"] for f in meta["features"] if f["example"] is not None}
    numeric = next(f for f in meta["features"] if f["kind"] != "categorical" and f["required"])
    lo, hi = numeric["min"], numeric["max"]
    return [one, {**one, numeric["name"]: round((lo + hi) / 2)}]


def tensors(rows: list[dict[str, Any]], metadata: dict[str, Any]) -> list[InferInput]:
    """One JSON (not binary) tensor per input the model declares and the rows give."""
    out = []
    for spec in metadata["inputs"]:
        name = spec["name"]
        if name not in rows[0]:
            continue
        t = InferInput(name, [len(rows)], spec["datatype"])
        if spec["datatype"] == "BYTES":
            t.set_data_from_numpy(np.array([r[name] for r in rows], dtype=object), False)
        else:
            t.set_data_from_numpy(np.array([r[name] for r in rows], dtype=np.float64), False)
        out.append(t)
    return out


def test_server_and_model_metadata_and_readiness(
    client: InferenceServerClient, server: Server
) -> None:
    assert client.is_server_live() and client.is_server_ready()
    meta = client.get_server_metadata()
    assert meta["name"] == MODEL and "extensions" in meta
    model = client.get_model_metadata(MODEL)
    version = httpx.get(server.url + "/model").json()["model_version"]
    assert model["name"] == MODEL and model["versions"] == [version]
    assert [o["name"] for o in model["outputs"]] == ["price", "price_low", "price_high"]
    assert client.get_model_metadata(MODEL, version) == model
    assert client.is_model_ready(MODEL) and client.is_model_ready(MODEL, version)
    assert not client.is_model_ready(MODEL, "no-such-version")
    assert not client.is_model_ready("other")
    live = httpx.get(server.url + "/v2/health/live")
    assert live.status_code == 200 and live.content == b""


@pytest.mark.parametrize("n", [1, 2])
def test_inference_equals_predict(client: InferenceServerClient, server: Server, n: int) -> None:
    rows = houses(server)[:n]
    meta = client.get_model_metadata(MODEL)
    result = client.infer(
        MODEL,
        tensors(rows, meta),
        outputs=[InferRequestedOutput(o, binary_data=False) for o in ("price", "price_low")],
        request_id="req-42",
    )
    body = httpx.post(server.url + "/predict", json={"instances": rows}).json()
    price = result.as_numpy("price")
    assert price is not None and price.tolist() == body["prices"]
    low = result.as_numpy("price_low")
    assert low is not None and low.tolist() == [iv["low"] for iv in body["intervals"]]
    assert result.as_numpy("price_high") is None  # not requested
    response = result.get_response()
    assert response["id"] == "req-42" and response["model_version"] == meta["versions"][0]
    version = meta["versions"][0]
    again = client.infer(MODEL, tensors(rows, meta), model_version=version)
    assert again.as_numpy("price").tolist() == body["prices"]


def test_errors_reach_the_client_with_the_protocol_message(
    client: InferenceServerClient, server: Server
) -> None:
    rows = houses(server)[:1]
    meta = client.get_model_metadata(MODEL)
    with pytest.raises(InferenceServerException, match="model 'other' not found"):
        client.infer("other", tensors(rows, meta))
    with pytest.raises(InferenceServerException, match="version 'v0' not found"):
        client.infer(MODEL, tensors(rows, meta), model_version="v0")
    bad = tensors(rows, meta)[:1]
    bad[0] = InferInput(bad[0].name(), [1], bad[0].datatype())
    bad[0].set_data_from_numpy(np.array([-1e9]), False)
    with pytest.raises(InferenceServerException, match=bad[0].name()):
        client.infer(MODEL, bad)
    # the binary tensor extension (tritonclient's default) is refused, saying what to do
    binary = InferInput(meta["inputs"][0]["name"], [1], "FP64")
    binary.set_data_from_numpy(np.array([1.0]), True)
    with pytest.raises(InferenceServerException, match="binary_data=False"):
        client.infer(MODEL, [binary])
    r = httpx.post(server.url + "/v2/models/houseprice/infer", content=b"{")
    assert r.status_code == 400 and "JSON" in r.json()["error"], r.text
