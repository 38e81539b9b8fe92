"""Fuzzing the HTTP API: schemathesis against the live /openapi.json of a real uvicorn server.

Every operation in the document is generated from its schema (valid and invalid requests) and
sent over a real socket; every built-in check runs on every answer: no 5xx, status codes,
content types, headers and bodies as documented, valid data accepted, invalid data refused.

One check is left out for one operation: valid data cannot always be accepted by
`POST /v2/models/{name}/infer`, because its inputs must agree with each other (one tensor per
feature, every shape naming the same row count), which JSON Schema cannot express. Those
requests are refused with a 422 naming the tensor, which the other checks still hold to the
document.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from modelapi.app import create_app
from modelapi.bundle import read_bundle
from modelapi.config import Settings
from modelapi.predictor import Predictor
from modelapi.service import Request
from modelapi.source import ModelSource
from modelapi.store.builtin import BUILTIN_ROOT
from tests.adversarial.budget import scaled
from tests.servers import serve_model

EXAMPLES = scaled(25, 1000)
LIMITS = Settings(store="/nonexistent/models", max_body_bytes=256 * 1024, max_batch_rows=200)
# Cross-tensor agreement (one row count for every input) is not expressible in JSON Schema.
_EXCLUDED = {"POST /v2/models/{name}/infer": [positive_data_acceptance]}


def _document() -> dict[str, Any]:
    """The document a server with LIMITS serves for the shipped model.

    Built when the module is collected, so that every operation is its own test; the live
    server's /openapi.json is checked to be this same document.
    """
    predictor = Predictor(read_bundle(BUILTIN_ROOT / "diabetes" / "1"))
    app = create_app(LIMITS, source=ModelSource.of(predictor))
    try:
        response = app.service.handle(Request("GET", "/openapi.json"))
    finally:
        app.close()
    assert response.status == 200
    document: dict[str, Any] = json.loads(response.body)
    return document


DOCUMENT = _document()
# A batch over the row limit is refused with 413 (documented), a refusal like any other 4xx.
_CONFIG = schemathesis.Config.from_dict(
    {
        "checks": {
            "negative_data_rejection": {
                "expected-statuses": [400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 428, 429]
            }
        }
    }
)
schema = schemathesis.openapi.from_dict(DOCUMENT, config=_CONFIG)


@pytest.fixture(scope="module")
def base_url(pima_predictor: Predictor) -> Iterator[str]:
    """uvicorn on 127.0.0.1 serving the shipped model with LIMITS."""
    with serve_model(pima_predictor, LIMITS) as url:
        yield url


def test_the_live_server_serves_the_fuzzed_document(base_url: str) -> None:
    live = schemathesis.openapi.from_url(f"{base_url}/openapi.json", timeout=10)
    assert live.raw_schema == DOCUMENT
    labels = {result.ok().label for result in live.get_all_operations()}
    assert set(_EXCLUDED) <= labels
    paths = {label.split(" ", 1)[1] for label in labels}
    assert {"/predict", "/ping", "/health", "/model", "/v2/models/{name}/infer"} <= paths


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.function_scoped_fixture,
    ],
)
def test_every_operation_holds_to_its_document(case: schemathesis.Case, base_url: str) -> None:
    excluded = _EXCLUDED.get(case.operation.label, [])
    case.call_and_validate(base_url=base_url, excluded_checks=excluded, timeout=10)
