"""The Lambda handlers answer every event shape exactly as the service answers the same request."""

from __future__ import annotations

import base64
import json
import logging
from pathlib import Path

import msgspec
import pytest

from modelapi import aws_lambda
from modelapi.aws_lambda import LambdaHandler
from modelapi.config import Settings
from modelapi.predictor import Predictor
from modelapi.service import Request, Response, Service
from modelapi.source import ModelSource
from modelapi.store.builtin import BUILTIN_ROOT
from tests.aws_lambda.events import (
    CONTRACT_ROW,
    EVENTS,
    EventCase,
    all_event_files,
    changed_event,
    event_body,
    load_event,
)

BUNDLE = BUILTIN_ROOT / "diabetes" / "1"


@pytest.fixture
def lambda_handler(tmp_path: Path) -> LambdaHandler:
    """A handler serving the shipped bundle as if it were embedded in the package."""
    return LambdaHandler(Settings(store=str(tmp_path / "empty")), embedded_model=BUNDLE)


def expected_response(case: EventCase, predictor: Predictor) -> Response:
    service = Service(ModelSource.of(predictor), Settings())
    headers = {"content-type": case.content_type} if case.method == "POST" else {}
    return service.handle(Request(case.method, case.path, headers, event_body(case)))


def test_every_event_file_has_a_case() -> None:
    assert sorted(p.name for p in all_event_files()) == sorted(c.file for c in EVENTS)


@pytest.mark.parametrize("case", EVENTS, ids=lambda c: c.file.removesuffix(".json"))
def test_event_answers_like_the_service(
    case: EventCase, lambda_handler: LambdaHandler, pima_predictor: Predictor
) -> None:
    answer = lambda_handler.handle(load_event(case.file))
    expected = expected_response(case, pima_predictor)
    if case.shape == "direct_plain":
        assert answer == msgspec.json.decode(expected.body)
        return
    assert isinstance(answer, dict)
    if case.shape == "direct_body":
        assert answer == {"statusCode": expected.status, "body": expected.body.decode()}
        return
    assert answer["statusCode"] == expected.status
    assert answer["body"] == expected.body.decode()
    assert answer["isBase64Encoded"] is False
    headers = {"content-type": expected.content_type, **expected.headers}
    if case.shape == "alb_multi":
        assert "headers" not in answer
        assert answer["multiValueHeaders"] == {k: [v] for k, v in headers.items()}
    else:
        assert answer["headers"] == headers
        assert "multiValueHeaders" not in answer
    if case.shape.startswith("alb"):
        assert answer["statusDescription"].startswith(f"{expected.status} ")
    else:
        assert "statusDescription" not in answer


@pytest.mark.parametrize(
    "file",
    ["rest_v1_predict_base64.json", "http_v2_default_predict.json", "alb_multi_value_predict.json"],
)
def test_contract_row_predicts_one(file: str, lambda_handler: LambdaHandler) -> None:
    answer = lambda_handler.handle(load_event(file))
    assert isinstance(answer, dict)
    assert answer["statusCode"] == 200
    assert json.loads(answer["body"])["outcome"] == 1


def test_plain_direct_invocation_answers_the_prediction(lambda_handler: LambdaHandler) -> None:
    answer = lambda_handler.handle(json.loads(CONTRACT_ROW))
    assert isinstance(answer, dict)
    assert answer["outcome"] == 1
    assert set(answer["probabilities"]) == {"0", "1"}


def test_plain_direct_error_is_the_error_body(lambda_handler: LambdaHandler) -> None:
    answer = lambda_handler.handle({"pregnancies": "many"})
    assert isinstance(answer, dict)
    assert answer["error"] == "invalid_input"
    fields = {d["field"] for d in answer["details"]}
    assert "glucose" in fields
    assert "many" not in json.dumps(answer)


def test_named_stage_is_stripped_only_for_its_own_prefix(lambda_handler: LambdaHandler) -> None:
    # The path starts with "/dev" but is another path.
    event = changed_event("http_v2_stage_predict.json", rawPath="/development/predict")
    answer = lambda_handler.handle(event)
    assert isinstance(answer, dict)
    assert answer["statusCode"] == 404


def test_stage_root_maps_to_root(lambda_handler: LambdaHandler, pima_predictor: Predictor) -> None:
    answer = lambda_handler.handle(changed_event("http_v2_stage_model.json", rawPath="/dev"))
    assert isinstance(answer, dict)
    expected = Service(ModelSource.of(pima_predictor), Settings()).handle(Request("GET", "/"))
    assert answer["statusCode"] == expected.status


def test_invalid_base64_is_a_400(lambda_handler: LambdaHandler) -> None:
    answer = lambda_handler.handle(
        changed_event("http_v2_predict_base64.json", body="not base64 at all!")
    )
    assert isinstance(answer, dict)
    assert answer["statusCode"] == 400
    assert json.loads(answer["body"])["error"] == "malformed_body"


def test_non_string_body_in_an_http_event_is_a_400(lambda_handler: LambdaHandler) -> None:
    answer = lambda_handler.handle(changed_event("rest_v1_predict.json", body={"pregnancies": 2}))
    assert isinstance(answer, dict)
    assert answer["statusCode"] == 400


def test_direct_body_may_be_an_object(lambda_handler: LambdaHandler) -> None:
    answer = lambda_handler.handle({"body": json.loads(CONTRACT_ROW)})
    assert isinstance(answer, dict)
    assert answer["statusCode"] == 200
    assert json.loads(answer["body"])["outcome"] == 1


def test_wrong_method_is_405_with_allow(lambda_handler: LambdaHandler) -> None:
    answer = lambda_handler.handle(changed_event("rest_v1_ping.json", httpMethod="DELETE"))
    assert isinstance(answer, dict)
    assert answer["statusCode"] == 405
    assert answer["headers"]["allow"] == "GET"


def test_binary_answer_is_base64(
    lambda_handler: LambdaHandler, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        Service,
        "handle",
        lambda self, request: Response(200, b"\xff\xfe", "application/octet-stream"),
    )
    answer = lambda_handler.handle(load_event("http_v2_default_ping.json"))
    assert isinstance(answer, dict)
    assert answer["isBase64Encoded"] is True
    assert base64.b64decode(answer["body"]) == b"\xff\xfe"


@pytest.mark.parametrize(
    "file", ["rest_v1_predict.json", "alb_predict.json", "direct_body_sls_invoke.json"]
)
def test_a_bug_answers_a_generic_500_and_is_logged(
    file: str,
    lambda_handler: LambdaHandler,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(self: Service, request: Request) -> Response:
        raise RuntimeError("secret detail")

    monkeypatch.setattr(Service, "handle", broken)
    with caplog.at_level(logging.ERROR, logger="modelapi.aws_lambda"):
        answer = lambda_handler.handle(load_event(file))
    assert isinstance(answer, dict)
    assert answer["statusCode"] == 500
    assert json.loads(answer["body"])["error"] == "internal_error"
    assert "secret detail" not in json.dumps(answer)
    assert any(r.exc_info for r in caplog.records)


def test_a_bug_in_a_plain_direct_invocation_answers_500(
    lambda_handler: LambdaHandler, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Service, "handle", lambda self, request: 1 / 0)
    answer = lambda_handler.handle({"pregnancies": 2})
    assert isinstance(answer, dict)
    assert answer["statusCode"] == 500


def test_bad_setting_answers_503_and_is_retried(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MODELAPI_MAX_BODY_BYTES", "lots")
    monkeypatch.setenv("MODELAPI_STORE", str(tmp_path))
    handler = LambdaHandler(embedded_model=tmp_path / "none")
    answer = handler.handle(load_event("rest_v1_predict.json"))
    assert isinstance(answer, dict)
    assert answer["statusCode"] == 503
    assert "MODELAPI_MAX_BODY_BYTES" in answer["body"]
    monkeypatch.setenv("MODELAPI_MAX_BODY_BYTES", "100000")
    answer = handler.handle(load_event("rest_v1_predict.json"))
    assert isinstance(answer, dict)
    assert answer["statusCode"] == 200


def test_module_entry_points_read_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, pima_example_answer: dict[str, object]
) -> None:
    monkeypatch.setattr(aws_lambda, "_default", None)
    monkeypatch.setenv("MODELAPI_STORE", str(tmp_path))  # empty: the built-in model answers
    monkeypatch.setenv("MODELAPI_MODEL", "diabetes")
    sls_event = load_event("direct_body_sls_invoke.json")
    answer = aws_lambda.predict(sls_event, None)
    assert isinstance(answer, dict)
    assert answer["statusCode"] == 200
    assert json.loads(answer["body"])["outcome"] == pima_example_answer["outcome"]
    assert aws_lambda.ping({}, None) == {"statusCode": 200, "body": '{"ping": "pong"}'}
    via_http = aws_lambda.ping(load_event("rest_v1_ping.json"), None)
    assert isinstance(via_http, dict)
    assert via_http["statusCode"] == 200
    answer = aws_lambda.handler(load_event("function_url_predict.json"), None)
    assert isinstance(answer, dict)
    assert answer["headers"]["x-model-version"] == "diabetes:1"


def test_direct_invocations_are_trusted_and_http_events_need_the_key(tmp_path: Path) -> None:
    settings = Settings(store=str(tmp_path), api_key="lambda-key-0c1d2e")
    keyed = LambdaHandler(settings, embedded_model=BUILTIN_ROOT / "diabetes" / "1")
    direct = keyed.handle(load_event("direct_body_sls_invoke.json"))
    assert isinstance(direct, dict)
    assert direct["statusCode"] == 200
    assert "outcome" in json.loads(direct["body"])
    plain = keyed.handle(load_event("direct_plain_features.json"))
    assert isinstance(plain, dict)
    assert "outcome" in plain
    for name in ("rest_v1_predict.json", "http_v2_default_predict.json", "alb_predict.json"):
        answer = keyed.handle(load_event(name))
        assert isinstance(answer, dict)
        assert answer["statusCode"] == 401, name
    with_key = changed_event(
        "rest_v1_predict.json",
        headers={"content-type": "application/json", "x-api-key": "lambda-key-0c1d2e"},
        multiValueHeaders={},
    )
    answer = keyed.handle(with_key)
    assert isinstance(answer, dict)
    assert answer["statusCode"] == 200
