"""GET /openapi.json: a valid OpenAPI 3.1 document that matches what the service does."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping

import httpx
import msgspec
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from openapi_spec_validator import OpenAPIV31SpecValidator

from modelapi.app import App
from modelapi.bundle import Bundle
from modelapi.config import Settings
from modelapi.predictor import OUT_OF_RANGE, Predictor
from modelapi.service import Request
from tests.conftest import PIMA_EXAMPLE
from tests.http.toy_models import running_app, toy_predictor

pytestmark = pytest.mark.anyio

Document = dict[str, object]


def document_of(app: App) -> Document:
    key = app.service.settings.api_key or ""
    response = app.service.handle(Request("GET", "/openapi.json", {"x-api-key": key}))
    assert response.status == 200
    return json.loads(response.body)


def validator(document: Document, schema: Mapping[str, object]) -> Draft202012Validator:
    """A JSON-schema validator for a schema of the document, its $refs resolved in the document."""
    return Draft202012Validator({**schema, "components": document["components"]})


def response_schema(document: Document, path: str, method: str, status: int) -> dict[str, object]:
    response = document["paths"][path][method]["responses"][str(status)]
    if "$ref" in response:
        response = document["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
    return response["content"]["application/json"]["schema"]


async def test_the_document_is_valid_openapi_3_1(client: httpx.AsyncClient) -> None:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    document = response.json()
    assert document["openapi"] == "3.1.0"
    OpenAPIV31SpecValidator(document).validate()


@pytest.mark.parametrize("api_key", [None, "secret-key"])
@pytest.mark.parametrize("task", ["classification", "regression"])
def test_documents_for_other_models_and_settings_are_valid(
    settings: Settings, api_key: str | None, task: str
) -> None:
    with running_app(toy_predictor(task), settings.replace(api_key=api_key)) as app:
        OpenAPIV31SpecValidator(document_of(app)).validate()


def test_every_route_of_the_service_is_documented(app: App) -> None:
    document = document_of(app)
    assert "/metrics" in app.service.routes, "the app serves metrics"
    documented = {
        (path, method.upper()) for path, item in document["paths"].items() for method in item
    }
    served = {(path, method) for path, methods in app.service.routes.items() for method in methods}
    assert documented == served
    operation_ids = [
        op["operationId"] for item in document["paths"].values() for op in item.values()
    ]
    assert len(operation_ids) == len(set(operation_ids))


def test_a_route_added_later_is_documented_from_its_docstring(app: App) -> None:
    def shout(service: object, request: Request) -> object:
        """Shout back, loudly."""
        raise AssertionError("not called")

    app.service.routes["/shout"] = {"POST": shout}  # type: ignore[dict-item]
    operation = document_of(app)["paths"]["/shout"]["post"]
    assert operation["summary"] == "Shout back, loudly"


async def test_the_example_is_the_pima_body_and_validates(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    body = document["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]
    assert body["example"] == json.loads(PIMA_EXAMPLE)
    validator(document, body["schema"]).validate(body["example"])
    features = document["components"]["schemas"]["Features"]
    assert features["examples"] == [json.loads(PIMA_EXAMPLE)]

    answer = await client.post("/predict", content=json.dumps(body["example"]))
    assert answer.status_code == 200
    validator(document, response_schema(document, "/predict", "post", 200)).validate(answer.json())
    assert answer.headers["x-model-version"] == "diabetes:1"


async def test_a_batch_and_its_answers_match_the_schemas(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    rows = [json.loads(PIMA_EXAMPLE)] * 3
    request_schema = document["paths"]["/predict"]["post"]["requestBody"]["content"][
        "application/json"
    ]["schema"]
    validator(document, request_schema).validate(rows)
    answer = await client.post("/predict", json=rows)
    assert answer.status_code == 200
    validator(document, response_schema(document, "/predict", "post", 200)).validate(answer.json())


async def test_the_csv_example_matches_its_pattern_and_is_answered(
    client: httpx.AsyncClient,
) -> None:
    document = (await client.get("/openapi.json")).json()
    csv = document["paths"]["/predict"]["post"]["requestBody"]["content"]["text/csv"]
    validator(document, csv["schema"]).validate(csv["example"])
    answer = await client.post(
        "/predict", content=csv["example"], headers={"content-type": "text/csv"}
    )
    assert answer.status_code == 200
    assert answer.text.splitlines()[0].startswith("outcome,")


def test_training_ranges_are_hints_not_limits(app: App, pima_predictor: Predictor) -> None:
    document = document_of(app)
    features = document["components"]["schemas"]["Features"]
    text = json.dumps(features)
    assert "minimum" not in text
    assert "maximum" not in text
    glucose = next(f for f in pima_predictor.manifest.features if f.key == "glucose")
    assert f"{glucose.min:g} to {glucose.max:g}" in features["properties"]["glucose"]["description"]
    row = json.loads(PIMA_EXAMPLE) | {"glucose": int(glucose.max or 0) + 1000}
    validator(document, features).validate(row)
    response = app.service.handle(Request("POST", "/predict", {}, json.dumps(row).encode()))
    assert response.status == 200


def _feature_value(schema: Mapping[str, object]) -> st.SearchStrategy[object]:
    """Values the documented schema of one feature allows: JSON numbers or numeric strings."""
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    number, text = schema["anyOf"]
    numbers: st.SearchStrategy[object]
    if number["type"] == "integer":
        numbers = st.integers(min_value=-(2**63), max_value=2**63)
    else:
        numbers = st.floats(allow_nan=False, allow_infinity=False)
    return st.one_of(numbers, st.from_regex(text["pattern"]))


def _rows(document: Document) -> st.SearchStrategy[dict[str, object]]:
    properties = document["components"]["schemas"]["Features"]["properties"]
    return st.fixed_dictionaries({k: _feature_value(s) for k, s in properties.items()})


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_every_row_the_schema_allows_is_predicted(
    settings: Settings, pima_predictor: Predictor, task: str
) -> None:
    predictors = {"classification": pima_predictor, "regression": toy_predictor("regression")}
    with running_app(predictors[task], settings) as app:
        document = document_of(app)
        features = validator(document, document["components"]["schemas"]["Features"])
        answers = validator(document, response_schema(document, "/predict", "post", 200))

        @hypothesis_settings(
            max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
        )
        @given(row=_rows(document))
        def check(row: dict[str, object]) -> None:
            features.validate(row)
            response = app.service.handle(Request("POST", "/predict", {}, json.dumps(row).encode()))
            if task == "regression" and response.status == 422:
                # Values near a double's limit can overflow the prediction itself: refused.
                reasons = [d["reason"] for d in json.loads(response.body)["details"]]
                assert reasons == [OUT_OF_RANGE], response.body
                return
            assert response.status == 200, response.body
            answers.validate(json.loads(response.body))

        check()


@pytest.mark.parametrize(
    ("value", "accepted"),
    [("148", True), ("-3", True), ("1e2", False), ("1.5", False), (" 7", False), ("", False)],
)
def test_numeric_string_pattern_for_integers(app: App, value: str, accepted: bool) -> None:
    """The documented pattern is a safe subset: whatever it allows, the service accepts."""
    document = document_of(app)
    schema = document["components"]["schemas"]["Features"]["properties"]["glucose"]
    assert validator(document, schema).is_valid(value) is accepted
    if accepted:
        row = json.loads(PIMA_EXAMPLE) | {"glucose": value}
        response = app.service.handle(Request("POST", "/predict", {}, json.dumps(row).encode()))
        assert response.status == 200


def test_huge_numeric_strings_are_outside_the_pattern(app: App) -> None:
    document = document_of(app)
    bmi = validator(document, document["components"]["schemas"]["Features"]["properties"]["bmi"])
    assert bmi.is_valid("33.6e1")
    assert not bmi.is_valid("1e999"), "1e999 overflows to infinity, which the service refuses"
    assert math.isinf(float("1e999"))


def test_missing_fields_are_outside_the_schema_and_extra_ones_as_the_setting_says(
    app: App, settings: Settings, pima_predictor: Predictor
) -> None:
    document = document_of(app)
    features = validator(document, document["components"]["schemas"]["Features"])
    row = json.loads(PIMA_EXAMPLE)
    assert features.is_valid(row | {"colour": "red"}), "extra fields are ignored"
    with running_app(pima_predictor, settings.replace(extra_fields="forbid")) as strict:
        forbidding = document_of(strict)
        assert not validator(forbidding, forbidding["components"]["schemas"]["Features"]).is_valid(
            row | {"colour": "red"}
        )
    assert not features.is_valid({k: v for k, v in row.items() if k != "age"})
    assert not features.is_valid(row | {"age": True})
    assert not features.is_valid(row | {"age": 22.5})


@pytest.mark.parametrize(
    ("status", "request_"),
    [
        (400, Request("POST", "/predict", {}, b"{not json")),
        (400, Request("POST", "/predict", {}, b"[" * 100_000 + b"]" * 100_000)),
        (413, Request("POST", "/predict", {}, b"[" + b" " * 600 + b"]")),
        (415, Request("POST", "/predict", {"content-type": "image/png"}, PIMA_EXAMPLE)),
        (422, Request("POST", "/predict", {}, b'{"glucose": "high"}')),
        (404, Request("GET", "/v2/models/other", {})),
        (401, Request("GET", "/model", {"x-api-key": "wrong"})),
    ],
)
def test_error_bodies_match_the_documented_error_responses(
    pima_predictor: Predictor, settings: Settings, status: int, request_: Request
) -> None:
    limit = 512 if status == 413 else None
    tight = settings.replace(max_body_bytes=limit, api_key="k" if status == 401 else None)
    with running_app(pima_predictor, tight) as app:
        document = document_of(app)
        path = request_.path if request_.path in document["paths"] else "/v2/models/{name}"
        response = app.service.handle(request_)
        assert response.status == status
        schema = response_schema(document, path, request_.method.lower(), status)
        validator(document, schema).validate(json.loads(response.body))


def test_unavailable_model_answers_503_in_the_error_shape(settings: Settings) -> None:
    with running_app(None, settings) as app:
        response = app.service.handle(Request("GET", "/openapi.json"))
    assert response.status == 503
    assert json.loads(response.body)["error"] == "model_unavailable"


def test_security_schemes_only_when_an_api_key_is_set(
    pima_predictor: Predictor, settings: Settings
) -> None:
    with running_app(pima_predictor, settings) as app:
        open_document = document_of(app)
    assert "securitySchemes" not in open_document["components"]
    assert "security" not in open_document
    assert all(
        "401" not in op["responses"]
        for item in open_document["paths"].values()
        for op in item.values()
    )
    with running_app(pima_predictor, settings.replace(api_key="k")) as app:
        document = document_of(app)
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearer"] == {"type": "http", "scheme": "bearer", "description": "The API key."}
    assert schemes["apiKey"] == {"type": "apiKey", "in": "header", "name": "X-API-Key"}
    assert document["security"] == [{"bearer": []}, {"apiKey": []}]
    for path, item in document["paths"].items():
        for operation in item.values():
            if path in ("/ping", "/health"):
                assert operation["security"] == []
                assert "401" not in operation["responses"]
            else:
                assert "security" not in operation
                assert "401" in operation["responses"]


def test_prediction_responses_document_the_model_version_header(app: App) -> None:
    document = document_of(app)
    for path, method in [
        ("/predict", "post"),
        ("/model", "get"),
        ("/v2/models/{name}/infer", "post"),
    ]:
        headers = document["paths"][path][method]["responses"]["200"]["headers"]
        assert headers["X-Model-Version"]["required"] is True


def test_the_document_is_cached_per_model_and_follows_a_reload(
    app: App, builtin_bundle: Bundle
) -> None:
    first = app.service.handle(Request("GET", "/openapi.json")).body
    assert app.service.handle(Request("GET", "/openapi.json")).body is first
    manifest = msgspec.structs.replace(builtin_bundle.manifest, version=7)
    app.service.source.predictor = Predictor(Bundle(manifest, builtin_bundle.files))
    reloaded = json.loads(app.service.handle(Request("GET", "/openapi.json")).body)
    assert reloaded["info"]["version"] == "7"
    assert "diabetes:7" in reloaded["info"]["description"]


def test_categories_are_string_enums(settings: Settings) -> None:
    with running_app(toy_predictor(), settings) as app:
        document = document_of(app)
    colour = document["components"]["schemas"]["Features"]["properties"]["colour"]
    assert colour["type"] == "string"
    assert colour["enum"] == list(toy_predictor().manifest.features[0].categories or ())
    answer = document["components"]["schemas"]["Answer"]
    assert answer["properties"]["label"]["enum"] == ["a", "b", "c"]
