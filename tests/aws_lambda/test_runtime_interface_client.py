"""The package under the AWS Lambda runtime interface client, as the managed runtime runs it.

awslambdaric starts in `python3.12 -I -S` with only the unpacked zip and a runtime folder
(boto3, awslambdaric) on its path and Lambda's environment variables, and talks to the Runtime
API that `benchmarks.lambda_ric` serves on 127.0.0.1. One process answers each event family's
recorded events, with the model embedded and from moto S3; the answers are the in-process
handler's. The init duration is recorded for the benchmark.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from benchmarks.lambda_ric import run_ric, unpack

from modelapi.aws_lambda import LambdaHandler
from modelapi.aws_lambda.events import family_of
from modelapi.bundle import Bundle
from modelapi.config import Settings
from modelapi.deploy.lambda_zip import LambdaPackage
from modelapi.store import open_store
from modelapi.store.builtin import BUILTIN_ROOT
from tests.aws_lambda.conftest import LAMBDA_PYTHON
from tests.aws_lambda.events import EVENTS, load_event
from tests.conftest import require_tool

# Event family -> the group its events are answered in (one process per group).
GROUP_OF = {
    "rest": "rest_v1",
    "http": "http_v2",
    "function_url": "function_url",
    "alb": "alb",
    "alb_multi": "alb",
    "direct_body": "direct",
    "direct_plain": "direct",
}
GROUPS = sorted(set(GROUP_OF.values()))


def group_events(group: str) -> list[object]:
    """The recorded events of one family group, in file order."""
    events = [load_event(case.file) for case in EVENTS]
    return [event for event in events if GROUP_OF[family_of(event).name] == group]


@pytest.fixture(autouse=True)
def lambda_python() -> None:
    require_tool(LAMBDA_PYTHON, "the Lambda runtime's Python 3.12 (pyenv install 3.12)")


@pytest.mark.parametrize("group", GROUPS)
def test_embedded_model_answers_every_family(
    group: str,
    embedded_zip: LambdaPackage,
    ric_runtime: Path,
    tmp_path: Path,
    record_property: pytest.RecordProperty,
) -> None:
    events = group_events(group)
    assert events
    run = run_ric(unpack(embedded_zip.zip_path, tmp_path / "task"), ric_runtime, events)
    assert run.init_error is None, run.stderr
    assert run.errors == [None] * len(events), run.stderr
    reference = LambdaHandler(Settings(), embedded_model=BUILTIN_ROOT / "diabetes" / "1")
    assert run.answers == json.loads(json.dumps([reference.handle(e) for e in events]))
    assert run.init_ms is not None
    assert run.first_response_ms is not None
    assert 0 < run.init_ms <= run.first_response_ms
    record_property("init_ms", run.init_ms)
    record_property("first_response_ms", run.first_response_ms)


@pytest.mark.parametrize("group", GROUPS)
def test_s3_model_answers_every_family(
    group: str,
    s3_zip: LambdaPackage,
    ric_runtime: Path,
    builtin_bundle: Bundle,
    s3_store_uri: str,
    aws_env: str,
    tmp_path: Path,
    record_property: pytest.RecordProperty,
) -> None:
    store = open_store(s3_store_uri)
    store.set_alias("diabetes", "production", store.put(builtin_bundle).version)
    env = {
        "AWS_ENDPOINT_URL_S3": aws_env,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "MODELAPI_STORE": s3_store_uri,
        "MODELAPI_MODEL": "diabetes@production",
    }
    events = group_events(group)
    run = run_ric(unpack(s3_zip.zip_path, tmp_path / "task"), ric_runtime, events, env=env)
    assert run.init_error is None, run.stderr
    assert run.errors == [None] * len(events), run.stderr
    settings = Settings(model="diabetes@production", store=s3_store_uri)
    reference = LambdaHandler(settings, embedded_model=tmp_path / "no-bundle")
    assert run.answers == json.loads(json.dumps([reference.handle(e) for e in events]))
    assert (
        any(
            isinstance(a, dict) and "x-model-version" in str(a) and "diabetes:1" in str(a)
            for a in run.answers
        )
        or group == "direct"
    )
    record_property("first_response_ms", run.first_response_ms)


def test_missing_handler_is_reported_as_an_init_error(
    embedded_zip: LambdaPackage, ric_runtime: Path, tmp_path: Path
) -> None:
    task = unpack(embedded_zip.zip_path, tmp_path / "task")
    run = run_ric(task, ric_runtime, [{}], handler="modelapi.aws_lambda.no_such_handler")
    assert run.init_error is not None
    assert run.init_error["type"] == "Runtime.HandlerNotFound"
    assert run.answers == [None]


def test_a_handler_that_raises_is_reported_as_an_invocation_error(
    embedded_zip: LambdaPackage, ric_runtime: Path, tmp_path: Path
) -> None:
    # family_of takes one argument: called as a handler (event, context), it raises.
    task = unpack(embedded_zip.zip_path, tmp_path / "task")
    run = run_ric(task, ric_runtime, [{}], handler="modelapi.aws_lambda.events.family_of")
    assert run.init_error is None
    error = run.errors[0]
    assert error is not None
    body = error["body"]
    assert isinstance(body, dict)
    assert body["errorType"] == "TypeError"
    assert run.answers == [None]


def test_docs_and_metrics_are_not_in_the_package(
    embedded_zip: LambdaPackage, ric_runtime: Path, tmp_path: Path
) -> None:
    # As docs/DEPLOY.md says: Swagger UI's assets and /metrics stay out of the zip.
    def get(path: str) -> object:
        event = load_event("http_v2_default_ping.json")
        assert isinstance(event, dict)
        event["rawPath"] = event["requestContext"]["http"]["path"] = path
        return event

    paths = ["/docs", "/metrics", "/openapi.json"]
    task = unpack(embedded_zip.zip_path, tmp_path / "task")
    run = run_ric(task, ric_runtime, [get(path) for path in paths])
    statuses = [answer["statusCode"] for answer in run.answers if isinstance(answer, dict)]
    assert statuses == [404, 404, 200]
