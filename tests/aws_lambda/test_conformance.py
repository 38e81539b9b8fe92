"""The conformance table through the Lambda handler, once per event format."""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from modelapi.aws_lambda import LambdaHandler
from tests.conformance import SETUPS, Answer, Case, Send, Setup, check

Event = dict[str, object]


def _body_fields(body: bytes, force_base64: bool) -> Event:
    try:
        if force_base64:
            raise UnicodeDecodeError("utf-8", body, 0, 0, "forced")
        return {"body": body.decode("utf-8"), "isBase64Encoded": False}
    except UnicodeDecodeError:
        return {"body": base64.b64encode(body).decode(), "isBase64Encoded": True}


def rest_v1(method: str, path: str, headers: Mapping[str, str], body: bytes) -> Event:
    return {
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": method,
        "headers": dict(headers),
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "requestContext": {"stage": "dev", "path": f"/dev{path}", "httpMethod": method},
        **_body_fields(body, False),
    }


def http_v2_stage(method: str, path: str, headers: Mapping[str, str], body: bytes) -> Event:
    return {
        "version": "2.0",
        "routeKey": "ANY /{proxy+}",
        "rawPath": f"/dev{path}",
        "rawQueryString": "",
        "headers": dict(headers),
        "requestContext": {"stage": "dev", "http": {"method": method, "path": f"/dev{path}"}},
        **_body_fields(body, False),
    }


def function_url(method: str, path: str, headers: Mapping[str, str], body: bytes) -> Event:
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": dict(headers),
        "requestContext": {
            "domainName": "abc.lambda-url.us-east-1.on.aws",
            "stage": "$default",
            "http": {"method": method, "path": path},
        },
        **_body_fields(body, bool(body)),
    }


def alb_multi(method: str, path: str, headers: Mapping[str, str], body: bytes) -> Event:
    return {
        "requestContext": {"elb": {"targetGroupArn": "arn:aws:elasticloadbalancing:x"}},
        "httpMethod": method,
        "path": path,
        "multiValueQueryStringParameters": {},
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        **_body_fields(body, False),
    }


FORMATS: dict[str, Callable[[str, str, Mapping[str, str], bytes], Event]] = {
    "rest-v1": rest_v1,
    "http-v2-stage": http_v2_stage,
    "function-url": function_url,
    "alb-multi": alb_multi,
}


def lambda_send(handler: LambdaHandler, make_event: Callable[..., Event]) -> Send:
    def send(method: str, path: str, headers: Mapping[str, str], body: bytes) -> Answer:
        answer = handler.handle(make_event(method, path, headers, body))
        assert isinstance(answer, dict)
        if "multiValueHeaders" in answer:
            got = {k: ", ".join(v) for k, v in answer["multiValueHeaders"].items()}
        else:
            got = dict(answer["headers"])
        text = answer["body"]
        data = base64.b64decode(text) if answer["isBase64Encoded"] else text.encode()
        return answer["statusCode"], got, data

    return send


@pytest.fixture(scope="module")
def handlers(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], LambdaHandler]:
    """One handler per (setup, format), over an empty store."""
    store = str(tmp_path_factory.mktemp("store"))
    nowhere = Path(store) / "no-embedded-bundle"
    return {
        (setup.id, name): LambdaHandler(setup.settings(store), embedded_model=nowhere)
        for setup in SETUPS
        for name in FORMATS
    }


@pytest.mark.parametrize("event_format", list(FORMATS))
@pytest.mark.parametrize(
    ("setup", "case"),
    [(setup, case) for setup in SETUPS for case in setup.cases],
    ids=[f"{setup.id}-{case.id}" for setup in SETUPS for case in setup.cases],
)
def test_conformance(
    handlers: dict[tuple[str, str], LambdaHandler], setup: Setup, case: Case, event_format: str
) -> None:
    handler = handlers[(setup.id, event_format)]
    check(case, lambda_send(handler, FORMATS[event_format]))
