"""Property-based API tests: schemathesis generates requests from the app's own OpenAPI
document (valid and invalid ones) and checks that no response is a 5xx and that every
response matches the status codes and schemas the document declares.

The app is driven in-process over ASGI with a small real artifact loaded (see
``test_app_api.build_artifact``); the ``/predict`` operation is described by that model's
generated schema, so this also checks that the generated schema and the validator agree.
"""

from __future__ import annotations

import tempfile
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance
from test_app_api import build_artifact

from app.main import create_app
from app.settings import Settings

Message = MutableMapping[str, Any]


def _app() -> Callable[..., Awaitable[None]]:
    """The app with its model loaded once; the lifespan is answered without re-running it
    (schemathesis opens a test client, hence a start-up and a model load, per call)."""
    path = build_artifact(tempfile.mkdtemp(prefix="houseprice-schemathesis-"), "st-1")
    app = create_app(Settings(model_path=path, admin_token="st-token", max_batch_size=20))
    app.state.service.load_initial()

    async def asgi(
        scope: Message,
        receive: Callable[[], Awaitable[Message]],
        send: Callable[[Message], Awaitable[None]],
    ) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                kind = message["type"].rsplit(".", 1)[-1]  # startup / shutdown
                await send({"type": f"lifespan.{kind}.complete"})
                if kind == "shutdown":
                    return
        await app(scope, receive, send)

    return asgi


# Module level: schemathesis reads the document at import to parametrize the test.
schema = schemathesis.openapi.from_asgi("/openapi.json", _app())


# Documented business rules a schema cannot express (as in tests/e2e/test_schemathesis.py):
# /feedback answers 404 for a model version never served, and the V2 generic tensor schema
# cannot name this model's inputs, so infer answers 400 for an unknown input name.
_BUSINESS_RULES = {
    "/feedback",
    "/v2/models/{name}/infer",
    "/v2/models/{name}/versions/{version}/infer",
}


@schema.parametrize()
@settings(
    max_examples=8,
    deadline=None,
    derandomize=True,  # the same cases every run: a unit test must not be a lottery
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_api_conforms_to_its_own_openapi_document(case: schemathesis.Case) -> None:
    excluded = [positive_data_acceptance] if case.operation.path in _BUSINESS_RULES else []
    case.call_and_validate(excluded_checks=excluded)


def test_the_document_has_the_model_operations() -> None:
    paths = {op.ok().path for op in schema.get_all_operations()}  # type: ignore[union-attr]
    assert {"/predict", "/feedback", "/v2/models/{name}/infer", "/admin/reload"} <= paths


pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
