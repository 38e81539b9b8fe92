"""The routes for a model of a real table: booleans, dates, missing values, long category lists.

Nothing a caller can read (an error, /model, /openapi.json, the form) lists more than 20
training categories of a feature; the report is served at /model/report.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from jsonschema import Draft202012Validator, FormatChecker

from modelapi.app import App, create_app
from modelapi.bundle import read_bundle
from modelapi.config import Settings
from modelapi.predictor import Predictor
from modelapi.schema import Feature, Target
from modelapi.service import Request, Response
from modelapi.store.builtin import BUILTIN_ROOT
from modelapi.values import datetime_days
from tests.http.test_page import Page
from tests.http.toy_models import running_app
from tests.linear_models import linear_predictor

CITIES = tuple(f"city-{n:02d}" for n in range(30))
TOWNS = tuple(f"town-{n:02d}" for n in range(12))
FEATURES = (
    Feature(column="City", key="city", type="category", categories=CITIES),
    Feature(column="Town", key="town", type="category", categories=TOWNS),
    Feature(column="Plan", key="plan", type="category", categories=("basic", "pro")),
    Feature(column="Autopay", key="autopay", type="boolean"),
    Feature(column="Signup", key="signup", type="datetime", min=18628.0, max=20087.0),
    Feature(column="Calls", key="calls", type="integer", min=0.0, max=11.0, accepts_missing=True),
)
WEIGHTS = [
    {c: [0.01 * i] for i, c in enumerate(CITIES)},
    {t: [-0.02 * i] for i, t in enumerate(TOWNS)},
    {"basic": [0.5], "pro": [-0.5]},
    [-0.7],
    [0.0001],
    [0.3],
]
ROW = {
    "city": "city-07",
    "town": "town-03",
    "plan": "pro",
    "autopay": True,
    "signup": "2023-04-05",
    "calls": 2,
}


def _predictor() -> Predictor:
    spec = {"kind": "logistic", "intercept": [-1.0], "weights": WEIGHTS}
    target = Target(column="Churn", key="churn")
    return linear_predictor(spec, FEATURES, ("no", "yes"), target=target, name="churn")


@pytest.fixture
def app(settings: Settings) -> Iterator[App]:
    with running_app(_predictor(), settings) as app:
        yield app


def _get(app: App, path: str) -> Response:
    return app.service.handle(Request("GET", path))


def _post(app: App, body: object) -> Response:
    return app.service.handle(Request("POST", "/predict", {}, json.dumps(body).encode()))


def _no_long_list(body: bytes) -> None:
    for city in CITIES:
        assert city.encode() not in body, city


def test_booleans_and_dates_are_answered_as_the_model_computes(app: App) -> None:
    response = _post(app, [ROW, {**ROW, "autopay": "False", "signup": "2023-04-05T12:00Z"}])
    assert response.status == 200, response.body
    rows = [
        ["city-07", "town-03", "pro", 1.0, datetime_days("2023-04-05"), 2.0],
        ["city-07", "town-03", "pro", 0.0, datetime_days("2023-04-05T12:00Z"), 2.0],
    ]
    expected = _predictor().predict(rows)
    answers = json.loads(response.body)
    assert [a["churn"] for a in answers] == [label for label, _ in expected]
    assert [a["probabilities"]["yes"] for a in answers] == [p[1] for _, p in expected]  # type: ignore[index]


def test_errors_count_a_long_category_list_and_never_list_it(app: App) -> None:
    response = _post(app, {**ROW, "city": "Atlantis", "town": "nowhere", "signup": "05/04/2023"})
    assert response.status == 422
    details = {d["field"]: d["reason"] for d in json.loads(response.body)["details"]}
    assert details["city"] == "must be one of the 30 training categories"
    assert details["town"] == "must be one of the training categories: " + ", ".join(TOWNS)
    assert details["signup"] == "must be a date (ISO 8601, e.g. 2024-05-31)"
    _no_long_list(response.body)


def test_model_publishes_the_size_of_a_long_list_only(app: App) -> None:
    response = _get(app, "/model")
    features = {f["key"]: f for f in json.loads(response.body)["features"]}
    assert "categories" not in features["city"]
    assert features["city"]["n_categories"] == 30
    assert features["town"]["categories"] == list(TOWNS)
    assert features["calls"]["accepts_missing"] is True
    _no_long_list(response.body)


def test_the_document_types_every_feature_and_lists_no_long_list(app: App) -> None:
    response = _get(app, "/openapi.json")
    _no_long_list(response.body)
    document = json.loads(response.body)
    schema = document["components"]["schemas"]["Features"]
    assert sorted(schema["required"]) == ["autopay", "city", "plan", "signup", "town"]
    assert schema["additionalProperties"] is True
    properties = schema["properties"]
    assert "enum" not in properties["city"]
    assert "30 training categories" in properties["city"]["description"]
    assert properties["town"]["enum"] == list(TOWNS)

    def valid(key: str, value: object) -> bool:
        checker = Draft202012Validator(properties[key], format_checker=FormatChecker())
        return checker.is_valid(value)

    for good in (True, False, 0, 1, "TRUE", "no", "1"):
        assert valid("autopay", good), good
    for bad in (2, "maybe", None, ""):
        assert not valid("autopay", bad), bad
    assert valid("signup", "2023-04-05")
    assert valid("signup", "2023-04-05T12:00:00Z")
    assert not valid("signup", "05/04/2023")
    assert valid("calls", None)
    assert not valid("plan", None)
    # Every value the schema allows above is answered.
    for value in (True, 0, "TRUE", "no"):
        assert _post(app, {**ROW, "autopay": value}).status == 200
    assert _post(app, {**ROW, "signup": "2023-04-05T12:00:00Z"}).status == 200


def test_the_form_picks_a_control_for_each_feature(app: App) -> None:
    response = _get(app, "/")
    _no_long_list(response.body)
    page = Page(response.body.decode())
    controls = {
        attrs["id"]: (tag, attrs)
        for tag, attrs in page.elements
        if tag in ("input", "select") and "id" in attrs
    }
    assert controls["city"][0] == "input"
    assert "list" not in controls["city"][1]
    assert controls["town"][0] == "input"
    assert controls["town"][1]["list"] == "list-town"
    options = [a["value"] for t, a in page.elements if t == "option" and "value" in a]
    assert set(TOWNS) <= set(options)
    assert controls["plan"][0] == "select"
    assert controls["autopay"][0] == "select"
    assert controls["signup"][1]["placeholder"] == "YYYY-MM-DD"
    assert "required" in controls["signup"][1]
    assert "required" not in controls["calls"][1]


def test_the_report_is_served_behind_the_key(settings: Settings) -> None:
    report = read_bundle(BUILTIN_ROOT / "diabetes" / "1").files["report.html"]
    app = create_app(settings.replace(reload_interval_s=0))
    try:
        response = _get(app, "/model/report")
        assert (response.status, response.body) == (200, report)
        assert response.content_type == "text/html; charset=utf-8"
        assert "script-src" not in response.headers["content-security-policy"]
        assert response.headers["x-model-version"] == "diabetes:1"
    finally:
        app.close()
    locked = create_app(settings.replace(reload_interval_s=0, api_key="k3y"))
    try:
        assert _get(locked, "/model/report").status == 401
        allowed = locked.service.handle(Request("GET", "/model/report", {"x-api-key": "k3y"}))
        assert allowed.status == 200
    finally:
        locked.close()


def test_a_model_not_loaded_from_a_store_has_no_report(app: App) -> None:
    response = _get(app, "/model/report")
    assert response.status == 404
    assert json.loads(response.body)["error"] == "not_found"
