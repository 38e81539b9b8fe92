"""Fuzzing the Lambda adapter: random and broken events always get a well-formed answer.

Events start from the real API Gateway, Function URL, ALB and direct-invocation fixtures in
tests/events and are then broken at random: keys dropped, values of the wrong type, bodies that
are not JSON, bad base64, unknown payload versions. Whatever arrives, the three entry points
(`handler`, `predict`, `ping`) must answer in the event's response format with a status the
contract knows, and must never reach the 500 edge (which would log "unexpected error").
"""

from __future__ import annotations

import base64
import copy
import json
import logging
import math
from collections.abc import Callable, Iterator
from pathlib import Path

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelapi import aws_lambda
from modelapi.aws_lambda import LambdaHandler
from modelapi.config import Settings
from modelapi.errors import ErrorBody
from modelapi.store.builtin import BUILTIN_ROOT
from tests.adversarial.budget import scaled
from tests.aws_lambda.events import all_event_files

EXAMPLES = scaled(300, 5000)
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    # The fixtures (the handler, captured logs) are meant to span every example.
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)
EVENTS = {path.stem: json.loads(path.read_text()) for path in all_event_files()}
HTTP_EVENTS = {name: event for name, event in EVENTS.items() if not name.startswith("direct")}
STATUSES = {200, 400, 401, 404, 405, 413, 415, 422}
EDGE_MESSAGE = "unexpected error"
Entry = Callable[[object, object], object]


@pytest.fixture(scope="module")
def lambda_handler(tmp_path_factory: pytest.TempPathFactory) -> LambdaHandler:
    """One handler for the module, serving the shipped bundle as if embedded in the package."""
    store = tmp_path_factory.mktemp("empty-store")
    return LambdaHandler(Settings(store=str(store)), embedded_model=BUILTIN_ROOT / "diabetes/1")


@pytest.fixture
def entry_points(
    lambda_handler: LambdaHandler, monkeypatch: pytest.MonkeyPatch
) -> dict[str, Entry]:
    """The module-level entry points, answering with the module's handler."""
    monkeypatch.setattr(aws_lambda, "_default", lambda_handler)
    return {"handler": aws_lambda.handler, "predict": aws_lambda.predict, "ping": aws_lambda.ping}


@pytest.fixture
def edge_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Captured error logs; the test fails if anything reached the handler's 500 edge."""
    with caplog.at_level(logging.ERROR, logger="modelapi"):
        yield caplog
    assert EDGE_MESSAGE not in caplog.text


# ---- what a well-formed answer is ------------------------------------------------------------


def _is_http(event: object) -> bool:
    """Whether API Gateway, a Function URL or an ALB could have sent this event."""
    return isinstance(event, dict) and (
        isinstance(event.get("requestContext"), dict) or "httpMethod" in event or "rawPath" in event
    )


def assert_well_formed(event: object, answer: object) -> None:
    """The answer is plain JSON in the format the event's caller reads, with a known status."""
    text = json.dumps(answer, allow_nan=False)  # what the Lambda runtime must serialise
    assert len(text) < 2_000_000
    if isinstance(answer, dict) and "statusCode" in answer:
        status = answer["statusCode"]
        assert type(status) is int
        assert status in STATUSES, answer
        body = answer["body"]
        assert isinstance(body, str)
        if _is_http(event):
            assert type(answer["isBase64Encoded"]) is bool
            raw = base64.b64decode(body, validate=True) if answer["isBase64Encoded"] else body
            headers = answer.get("headers") or {
                name: values[0] for name, values in answer["multiValueHeaders"].items()
            }
            assert all(isinstance(v, str) for v in headers.values())
            if status != 200:
                msgspec.json.decode(raw, type=ErrorBody)
        elif status != 200:
            msgspec.json.decode(body, type=ErrorBody)
        return
    # A plain direct invocation: the prediction itself, or the error body itself.
    assert not _is_http(event), "an HTTP event is always answered with a statusCode"
    if isinstance(answer, dict) and "error" in answer:
        msgspec.convert(answer, type=ErrorBody)
        return
    answers = answer if isinstance(answer, list) else [answer]
    for item in answers:
        assert isinstance(item, dict)
        probabilities = item["probabilities"]
        assert all(0 <= p <= 1 for p in probabilities.values())
        # The label is the likelier class (a tie at exactly 0.5 goes by the decision's sign).
        likelier = max(probabilities, key=probabilities.get)
        assert str(item["outcome"]) == likelier or probabilities["0"] == probabilities["1"]


# ---- strategies ------------------------------------------------------------------------------

_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats()  # json.loads in the runtime turns NaN and Infinity tokens into floats
    | st.text(max_size=30)
    | st.sampled_from(["GET", "POST", "/predict", "/ping", "2.0", "1.0", "$default", "dev", ""])
)
_json = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=20,
)
_bodies = st.one_of(
    st.none(),
    st.text(max_size=200),
    st.sampled_from(
        [
            "",
            "{",
            "null",
            "[]",
            "[{}]",
            '{"pregnancies": 2}',
            "NaN",
            "\ud800",
            "%%%",
            "=" * 7,
            "aGVsbG8",
            '{"glucose": "\\ud800"}',
        ]
    ),
    st.binary(max_size=100).map(lambda data: base64.b64encode(data).decode()),
    _json,
)


def _slots(value: object, out: list[tuple[object, object]]) -> list[tuple[object, object]]:
    """Every (container, key) pair of a JSON value, depth first."""
    if isinstance(value, dict):
        for key in list(value):
            out.append((value, key))
            _slots(value[key], out)
    elif isinstance(value, list):
        for index in range(len(value)):
            out.append((value, index))
            _slots(value[index], out)
    return out


@st.composite
def broken_events(draw: st.DrawFn) -> object:
    """A real event with one to five things broken in it."""
    event = copy.deepcopy(EVENTS[draw(st.sampled_from(sorted(EVENTS)))])
    for _ in range(draw(st.integers(1, 5))):
        slots = _slots(event, [])
        action = draw(st.sampled_from(["delete", "replace", "body", "base64", "version"]))
        if action == "body" and isinstance(event, dict):
            event["body"] = draw(_bodies)
        elif action == "base64" and isinstance(event, dict):
            event["isBase64Encoded"] = draw(st.sampled_from([True, "true", 1, None, False]))
            event["body"] = draw(_bodies)
        elif action == "version" and isinstance(event, dict):
            event["version"] = draw(st.sampled_from(["1.0", "2.0", "3.0", "", 2, None, ["2.0"]]))
        elif slots:
            container, key = draw(st.sampled_from(slots))
            if action == "delete" and isinstance(container, dict):
                del container[key]
            else:
                container[key] = draw(_json)  # type: ignore[index]
    return event


# ---- properties ------------------------------------------------------------------------------


@FUZZ
@given(event=broken_events(), entry=st.sampled_from(["handler", "predict", "ping"]))
def test_broken_events_get_well_formed_answers(
    entry_points: dict[str, Entry], edge_log: pytest.LogCaptureFixture, event: object, entry: str
) -> None:
    assert_well_formed(event, entry_points[entry](event, None))


@FUZZ
@given(event=_json, entry=st.sampled_from(["handler", "predict", "ping"]))
def test_any_json_value_as_an_event_gets_a_well_formed_answer(
    entry_points: dict[str, Entry], edge_log: pytest.LogCaptureFixture, event: object, entry: str
) -> None:
    assert_well_formed(event, entry_points[entry](event, None))


@FUZZ
@given(
    name=st.sampled_from(sorted(HTTP_EVENTS)),
    body=st.binary(max_size=200),
    how=st.sampled_from(["star", "urlsafe", "unpadded", "spaces", "valid"]),
)
def test_bad_base64_is_a_400_and_valid_base64_of_any_bytes_is_answered(
    lambda_handler: LambdaHandler,
    edge_log: pytest.LogCaptureFixture,
    name: str,
    body: bytes,
    how: str,
) -> None:
    event = copy.deepcopy(HTTP_EVENTS[name])
    encoded = base64.b64encode(body).decode()
    text = {
        "star": encoded + "*",
        "urlsafe": base64.urlsafe_b64encode(body).decode() + "-_",
        # Without its padding, or one character too many: never a whole number of quads.
        "unpadded": encoded.rstrip("=") if "=" in encoded else encoded + "A",
        "spaces": " ".join(encoded) + " !",
        "valid": encoded,
    }[how]
    event.update(body=text, isBase64Encoded=True)
    answer = lambda_handler.handle(event)
    assert_well_formed(event, answer)
    assert isinstance(answer, dict)
    if how != "valid":
        assert answer["statusCode"] == 400
        error = msgspec.json.decode(_raw_body(answer), type=ErrorBody)
        assert [(d.field, d.reason) for d in error.details] == [
            ("body", "is marked base64 but is not valid base64")
        ]


def _raw_body(answer: dict[str, object]) -> bytes:
    body = str(answer["body"])
    return base64.b64decode(body) if answer["isBase64Encoded"] else body.encode()


@pytest.mark.parametrize("name", sorted(HTTP_EVENTS))
@pytest.mark.parametrize(
    "version", ["1.0", "2.0", "3.0", "", "2", 2, 2.0, None, True, ["2.0"], {"v": "2.0"}]
)
def test_any_payload_version_is_answered(
    lambda_handler: LambdaHandler, edge_log: pytest.LogCaptureFixture, name: str, version: object
) -> None:
    event = {**copy.deepcopy(HTTP_EVENTS[name]), "version": version}
    answer = lambda_handler.handle(event)
    assert_well_formed(event, answer)


@pytest.mark.parametrize("name", sorted(EVENTS))
def test_every_key_of_every_event_can_go_missing(
    lambda_handler: LambdaHandler, edge_log: pytest.LogCaptureFixture, name: str
) -> None:
    original = EVENTS[name]
    n_slots = len(_slots(copy.deepcopy(original), []))
    for index in range(n_slots):
        event = copy.deepcopy(original)
        container, key = _slots(event, [])[index]
        if isinstance(container, dict):
            del container[key]
        else:
            container[key] = None  # type: ignore[index]
        assert_well_formed(event, lambda_handler.handle(event))


@pytest.mark.parametrize(
    "event",
    [
        None,
        0,
        -1.5,
        math.inf,
        "",
        "not json",
        [],
        [None],
        {},
        {"body": None},
        {"body": {"deep": [[[[[]]]]]}},
        {"body": [1] * 20_000},
        {"httpMethod": None},
        {"rawPath": 5},
        {"requestContext": None},
        {"requestContext": {"http": "POST"}},
        {"requestContext": {"elb": None}, "multiValueHeaders": None},
        {"requestContext": {"stage": 7}, "version": "2.0", "rawPath": "/7/predict"},
        {"httpMethod": "POST", "path": "/predict", "headers": [["a", "b"]], "body": "{}"},
        {"httpMethod": "POST", "path": "/predict", "multiValueHeaders": {"a": "b"}},
        {"httpMethod": "POST", "path": "/predict", "body": "\ud800\udfff"},
        {"rawPath": "/predict", "requestContext": {"http": {"method": ["POST"]}}},
    ],
    ids=repr,
)
def test_odd_events_are_answered(
    entry_points: dict[str, Entry], edge_log: pytest.LogCaptureFixture, event: object
) -> None:
    for entry in entry_points.values():
        assert_well_formed(event, entry(copy.deepcopy(event), None))


def test_an_event_nested_as_deep_as_json_loads_allows_is_answered(
    entry_points: dict[str, Entry], edge_log: pytest.LogCaptureFixture
) -> None:
    # The runtime decodes events with json.loads, whose recursion limit caps the depth.
    deep: object = 1
    for _ in range(900):
        deep = [deep]
    for event in (deep, {"body": deep}, {"body": json.dumps(deep)}, {"pregnancies": deep}):
        for entry in entry_points.values():
            assert_well_formed(event, entry(event, None))


def test_the_fixtures_cover_every_response_format() -> None:
    names = {Path(name).stem.split("_")[0] for name in EVENTS}
    assert names == {"alb", "direct", "function", "http", "rest"}
