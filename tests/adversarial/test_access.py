"""Access: with an API key set, no route but /ping and /health answers without it.

The routes come from the OpenAPI document the server itself serves, so a route added later is
covered without touching this file. The key is checked against keys of every length, and is
looked for (with a unique marker in every body) in every answer and every line the server
writes, uvicorn's and the access log's included, at debug level.
"""

from __future__ import annotations

import json
import secrets
import string
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from modelapi.app import create_app
from modelapi.config import Settings
from modelapi.errors import ErrorBody
from modelapi.predictor import Predictor
from modelapi.service import OPEN_PATHS, Request, Service
from modelapi.source import ModelSource
from tests.conftest import PIMA_EXAMPLE
from tests.servers import HttpSend, ServeProcess, serve_process

# A key of the shape users make (`openssl rand -hex 32`), drawn anew for every run.
KEY = secrets.token_hex(32)
MARKER = "48151.62342"  # a feature value no test data holds
MARKER_TEXT = "zq7MarkerValue"
# An unknown key is named in the 422 (cut at 64 characters) so that a client can fix it; a
# key is the client's field name, not a value, but it must not reach a log either.
MARKER_KEY = "zq7MarkerKey"
PARAMETERS = {"name": "diabetes"}
# A small body limit, so that an oversized body is refused without a megabyte on the wire.
ENV = {"MODELAPI_API_KEY": KEY, "MODELAPI_MAX_BODY_BYTES": "4096"}
_UNAUTHORIZED = "unauthorized"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    """`modelapi serve` with the key in the environment, the access log on, at debug level."""
    cwd = tmp_path_factory.mktemp("serve-access")
    with serve_process(cwd, "--access-log", "--log-level", "debug", env=ENV) as process:
        yield process


@pytest.fixture(scope="module")
def document(server: ServeProcess) -> dict[str, object]:
    """The OpenAPI document, fetched with the key."""
    with HttpSend(server.url) as send:
        status, _, body = send("GET", "/openapi.json", {"x-api-key": KEY}, b"")
    assert status == 200
    result: dict[str, object] = json.loads(body)
    return result


def _operations(document: dict[str, object]) -> list[tuple[str, str]]:
    """Every (method, concrete path) of the document, templates filled in."""
    paths = document["paths"]
    assert isinstance(paths, dict)
    operations = []
    for template, methods in paths.items():
        path = template.format(**PARAMETERS)
        operations.extend((method.upper(), path) for method in methods)
    return operations


def _assert_unauthorized(status: int, headers: dict[str, str], body: bytes) -> None:
    assert status == 401, (status, body[:200])
    assert headers.get("www-authenticate") == "Bearer"
    error = msgspec.json.decode(body, type=ErrorBody)
    assert error.error == _UNAUTHORIZED
    assert [d.field for d in error.details] == ["authorization"]


def test_every_documented_route_but_ping_and_health_needs_the_key(
    server: ServeProcess, document: dict[str, object]
) -> None:
    operations = _operations(document)
    assert len(operations) >= 15
    body = PIMA_EXAMPLE
    with HttpSend(server.url) as send:
        for method, path in operations:
            sent = body if method == "POST" else b""
            answer = send(method, path, {"content-type": "application/json"}, sent)
            if path in OPEN_PATHS:
                assert answer[0] == 200, (method, path)
            else:
                assert answer[0] == 401, (method, path)
                _assert_unauthorized(*answer)
                if method == "GET":  # HEAD answers what GET would, without a body
                    status, headers, _ = send("HEAD", path, {}, b"")
                    assert (status, headers.get("www-authenticate")) == (401, "Bearer")
            with_key = send(method, path, {"x-api-key": KEY, "content-type": "text/csv"}, b"")
            assert with_key[0] != 401, (method, path)


def test_the_document_lists_every_route_the_service_answers(
    document: dict[str, object], pima_predictor: Predictor, tmp_path: Path
) -> None:
    # The route list above comes from the document; a route missing there would go untested.
    app = create_app(
        Settings(store=str(tmp_path), api_key=KEY), source=ModelSource.of(pima_predictor)
    )
    try:
        routes = set(app.service.routes)
    finally:
        app.close()
    paths = document["paths"]
    assert isinstance(paths, dict)
    assert routes == set(paths)


def _wrong_keys() -> list[str]:
    """Keys of every length from 0 to twice the real one, and near misses of the real one."""
    alphabet = string.ascii_letters + string.digits
    keys = {"".join(secrets.choice(alphabet) for _ in range(n)) for n in range(2 * len(KEY) + 2)}
    keys |= {KEY[:n] for n in range(len(KEY))}
    # (Space around a Bearer token is trimmed like any header's, so it is not a wrong key.)
    keys |= {KEY + c for c in "0a-"} | {KEY[1:], KEY.upper(), KEY[::-1], KEY * 2}
    keys |= {KEY[:i] + ("0" if KEY[i] != "0" else "1") + KEY[i + 1 :] for i in range(len(KEY))}
    keys |= {"é" * 10, "\x00" * len(KEY), KEY[:-1] + "\x00", "null", "undefined", "*"}
    keys.discard(KEY)
    return sorted(keys)


WRONG_KEYS = _wrong_keys()


def test_wrong_keys_of_every_length_are_refused(pima_predictor: Predictor) -> None:
    service = Service(ModelSource.of(pima_predictor), Settings(store="/nonexistent", api_key=KEY))
    assert len(WRONG_KEYS) > 3 * len(KEY)
    for path in ("/predict", "/model", "/v2/models/diabetes/infer", "/openapi.json", "/nowhere"):
        for wrong in WRONG_KEYS:
            for headers in (
                {"x-api-key": wrong},
                {"authorization": f"Bearer {wrong}"},
                {"authorization": wrong},
                {"authorization": f"Basic {KEY}", "x-api-key": wrong},
                {"authorization": f"Token {KEY}"},
                {"x-api-key": wrong, "authorization": f"Bearer {KEY}"},
            ):
                method = "GET" if path in {"/model", "/openapi.json"} else "POST"
                response = service.handle(Request(method, path, headers, PIMA_EXAMPLE))
                assert response.status in {401, 404}, (path, headers)
                assert KEY not in response.body.decode()
                if path != "/nowhere":
                    _assert_unauthorized(response.status, response.headers, response.body)


def test_wrong_keys_are_refused_over_a_socket(server: ServeProcess) -> None:
    with HttpSend(server.url) as send:
        for wrong in WRONG_KEYS:
            if not wrong.isascii() or "\x00" in wrong or wrong != wrong.strip():
                continue  # not a header value an HTTP client sends; checked in process above
            for header in ("x-api-key", "authorization"):
                value = wrong if header == "x-api-key" else f"Bearer {wrong}"
                _assert_unauthorized(*send("POST", "/predict", {header: value}, PIMA_EXAMPLE))
        status, _, _ = send("POST", "/predict", {"authorization": f"Bearer {KEY}"}, PIMA_EXAMPLE)
        assert status == 200


def _marked_requests() -> list[tuple[str, str, dict[str, str], bytes]]:
    """Requests whose bodies carry the markers, valid and invalid, with and without the key."""
    marked = PIMA_EXAMPLE.replace(b"33.6", MARKER.encode())
    rows = json.loads(marked)
    infer = {
        "inputs": [
            {"name": key, "shape": [1], "datatype": "FP64", "data": [value]}
            for key, value in rows.items()
        ]
    }
    bodies = [
        marked,
        msgspec.json.encode([rows] * 3),
        msgspec.json.encode({**rows, "glucose": MARKER_TEXT}),
        msgspec.json.encode({**rows, MARKER_KEY: 1}),
        marked[:-1],
        b"[" + marked + b"," + MARKER_TEXT.encode() + b"]",
        b"Glucose,BMI\n" + MARKER.encode() + b"," + MARKER_TEXT.encode() + b"\n",
        marked * 40,  # over the body limit
    ]
    key = {"x-api-key": KEY}
    requests = []
    for body in bodies:
        for headers in (key, {}, {**key, "content-type": "text/csv"}):
            requests.append(("POST", "/predict", headers, body))
        requests.append(("POST", "/v2/models/diabetes/infer", key, body))
    requests.append(("POST", "/v2/models/diabetes/infer", key, msgspec.json.encode(infer)))
    return requests


def test_no_key_body_or_feature_value_reaches_an_answer_or_a_log(server: ServeProcess) -> None:
    answers = []
    for method, path, headers, body in _marked_requests():
        with HttpSend(server.url) as send:
            status, out_headers, answer = send(method, path, headers, body)
        assert status < 500, answer[:200]
        answers.append(json.dumps(out_headers) + answer.decode("utf-8", "replace"))
    with HttpSend(server.url) as send:  # the answers that hold data, not just errors
        for path in ("/model", "/openapi.json", "/metrics", "/health", "/docs", "/"):
            status, out_headers, answer = send("GET", path, {"x-api-key": KEY}, b"")
            answers.append(json.dumps(out_headers) + answer.decode("utf-8", "replace"))
    server.wait_for('"GET /health HTTP/1.1" 200')  # the access log has caught up
    output = server.output()
    assert '"POST /predict HTTP/1.1" 200' in output, "the access log is on"
    for secret in (KEY, KEY[:16], MARKER, MARKER_TEXT[:8], MARKER_KEY):
        assert secret not in output, f"{secret[:6]}... appears in the server's output"
    for answer in answers:
        assert KEY[:16] not in answer
        assert MARKER_TEXT not in answer
        assert MARKER not in answer


def test_the_default_log_holds_no_request_at_all(tmp_path: Path) -> None:
    with serve_process(tmp_path, env=ENV) as server:
        for method, path, headers, body in _marked_requests():
            with HttpSend(server.url) as send:
                assert send(method, path, headers, body)[0] < 500
    output = server.output()
    assert "Application startup complete" in output
    assert "POST /predict" not in output
    for secret in (KEY[:16], MARKER, MARKER_TEXT[:8], MARKER_KEY):
        assert secret not in output
