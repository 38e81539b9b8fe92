"""A new route is one `Route` entry: dispatched, keyed, documented, with no other table to edit."""

from __future__ import annotations

import json
import sys

import httpx
import pytest
from openapi_spec_validator import OpenAPIV31SpecValidator

from modelapi.app import App
from modelapi.config import Settings
from modelapi.predictor import Predictor
from modelapi.routes import ROUTES, Computed, Route
from modelapi.service import Request, Response, Service, json_response
from modelapi.source import ModelSource

pytestmark = pytest.mark.anyio

KEY = "a-key-for-the-extra-route"


def echo_features(service: Service, request: Request) -> Response:
    """Name the served model's features, in order."""
    names = [f.key for f in service.predictor().manifest.features]
    return json_response(200, {"features": names, "echo": request.path.rsplit("/", 1)[1]})


def feature_count(service: Service, predictor: Predictor) -> str:
    return f"{len(predictor.manifest.features)} features."


EXTRA = Route(
    path="/features/{label}",
    handler="tests.http.test_routes:echo_features",
    methods=("GET", "POST"),
    operation={
        "summary": "The served model's features",
        "description": Computed("tests.http.test_routes:feature_count"),
        "tags": ["model"],
        "parameters": [
            {"name": "label", "in": "path", "required": True, "schema": {"type": "string"}}
        ],
        "responses": {"200": {"description": "The features."}},
    },
)
UNDOCUMENTED = Route(path="/quiet", handler="tests.http.test_routes:echo_features")


def _service(predictor: Predictor, settings: Settings) -> Service:
    return Service(ModelSource.of(predictor), settings, routes=(*ROUTES, EXTRA, UNDOCUMENTED))


async def test_an_extra_route_is_served_over_http(
    pima_predictor: Predictor, settings: Settings
) -> None:
    app = App(_service(pima_predictor, settings))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        got = await client.get("/features/hello")
        posted = await client.post("/features/there")
        refused = await client.put("/features/there")
        document = (await client.get("/openapi.json")).json()
    expected = [f.key for f in pima_predictor.manifest.features]
    assert got.status_code == 200
    assert got.json() == {"features": expected, "echo": "hello"}
    assert posted.json() == {"features": expected, "echo": "there"}
    assert refused.status_code == 405
    assert refused.headers["allow"] == "GET, POST"
    OpenAPIV31SpecValidator(document).validate()
    item = document["paths"]["/features/{label}"]
    assert set(item) == {"get", "post"}
    assert item["get"]["summary"] == "The served model's features"
    assert item["get"]["description"] == f"{len(expected)} features."
    assert item["post"]["operationId"] == "post_features_label"
    assert document["paths"]["/quiet"]["get"]["summary"] == (
        "Name the served model's features, in order"
    )
    # The routes the list already held are documented as before, the new ones after them.
    assert list(document["paths"])[-2:] == ["/features/{label}", "/quiet"]


def test_an_extra_route_needs_the_key_and_is_documented_so(
    pima_predictor: Predictor, settings: Settings
) -> None:
    service = _service(pima_predictor, settings.replace(api_key=KEY))
    assert service.handle(Request("GET", "/features/x")).status == 401
    assert service.handle(Request("GET", "/features/x", {"x-api-key": KEY})).status == 200
    answer = service.handle(Request("GET", "/openapi.json", {"x-api-key": KEY}))
    operation = json.loads(answer.body)["paths"]["/features/{label}"]["get"]
    assert operation["responses"]["401"] == {"$ref": "#/components/responses/Error401"}


def test_the_default_service_does_not_have_it(
    pima_predictor: Predictor, settings: Settings
) -> None:
    service = Service(ModelSource.of(pima_predictor), settings)
    assert service.handle(Request("GET", "/features/x")).status == 404
    answer = service.handle(Request("GET", "/openapi.json"))
    assert "/features/{label}" not in json.loads(answer.body)["paths"]


def test_an_extra_route_imports_its_module_on_its_first_call(
    pima_predictor: Predictor, settings: Settings
) -> None:
    name = "tests.http.test_routes"
    module = sys.modules.pop(name)
    try:
        service = _service(pima_predictor, settings)
        assert name not in sys.modules
        assert service.handle(Request("GET", "/features/y")).status == 200
        assert name in sys.modules
    finally:
        sys.modules[name] = module
