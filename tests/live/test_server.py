"""The app under uvicorn on a real socket: the conformance table, curl, keep-alive, body limits."""

from __future__ import annotations

import shlex
import socket
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import msgspec
import pytest

from modelapi.app import create_app
from modelapi.predictor import Predictor
from tests.conformance import SETUPS, Case, Setup, check, params
from tests.oracles import answer
from tests.servers import HttpSend, serve_app

# The command existing users run, exactly as the issue gives it.
CURL = (
    'curl -X POST http://127.0.0.1:8000/predict -d \'{"pregnancies": 2, "glucose": 148, '
    '"blood_pressure": 72, "skin_thickness": 35, "insulin": 0, "bmi": 33.6, '
    '"diabetes_pedigree_function": 0.674, "age": 22}\''
)


@pytest.fixture(scope="module")
def urls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """One live server per conformance setup."""
    store = str(tmp_path_factory.mktemp("store"))
    with ExitStack() as stack:
        yield {s.id: stack.enter_context(serve_app(create_app(s.settings(store)))) for s in SETUPS}


@pytest.mark.parametrize(
    ("setup", "case"),
    [pair for setup in SETUPS for pair in params(setup)],
    ids=[f"{setup.id}-{case.id}" for setup in SETUPS for case in setup.cases],
)
def test_conformance_over_a_socket(urls: dict[str, str], setup: Setup, case: Case) -> None:
    with HttpSend(urls[setup.id]) as send:
        check(case, send)


def test_the_curl_command_answers(urls: dict[str, str], pima_predictor: Predictor) -> None:
    port = urls["default"].rsplit(":", 1)[1]
    command = shlex.split(CURL.replace("127.0.0.1:8000", f"127.0.0.1:{port}"))
    result = subprocess.run(
        [*command, "--silent", "--show-error", "--include"],
        capture_output=True,
        check=True,
        timeout=30,
    )
    head, _, body = result.stdout.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert b"x-model-version: diabetes:1" in head.lower()
    row = [2.0, 148.0, 72.0, 35.0, 0.0, 33.6, 0.674, 22.0]
    [prediction] = pima_predictor.predict([row])
    assert msgspec.json.decode(body) == msgspec.json.decode(
        msgspec.json.encode(answer(pima_predictor, prediction))
    )


def test_curl_sends_the_form_content_type_it_always_sent(urls: dict[str, str]) -> None:
    port = urls["default"].rsplit(":", 1)[1]
    command = shlex.split(CURL.replace("127.0.0.1:8000", f"127.0.0.1:{port}"))
    result = subprocess.run(
        [*command, "--verbose", "--silent"], capture_output=True, check=True, timeout=30
    )
    assert b"> Content-Type: application/x-www-form-urlencoded" in result.stderr


def test_keep_alive_serves_many_requests_on_one_connection(urls: dict[str, str]) -> None:
    host, port = urls["default"].removeprefix("http://").split(":")
    body = b'{"pregnancies": 2, "glucose": 148, "blood_pressure": 72, "skin_thickness": 35, "insulin": 0, "bmi": 33.6, "diabetes_pedigree_function": 0.674, "age": 22}'  # noqa: E501
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        answers = []
        with sock.makefile("rb") as reader:
            for path, payload in [("/predict", body), ("/predict", b"{}"), ("/nope", b"")] * 3:
                request = (
                    f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(payload)}\r\n\r\n"
                ).encode() + payload
                sock.sendall(request)
                answers.append(_read_response(reader))
    assert [status for status, _, _ in answers] == [200, 422, 404] * 3
    assert all(b"connection: close" not in head.lower() for _, head, _ in answers)


def test_pipelined_requests_are_answered_in_order(urls: dict[str, str]) -> None:
    host, port = urls["default"].removeprefix("http://").split(":")
    requests = b"".join(
        f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode() for path in ["/ping", "/nope", "/health"]
    )
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(requests)
        with sock.makefile("rb") as reader:
            statuses = [_read_response(reader)[0] for _ in range(3)]
    assert statuses == [200, 404, 200]


def test_declared_oversize_body_is_refused_before_it_is_sent(urls: dict[str, str]) -> None:
    host, port = urls["default"].removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        # 100 MB declared, 10 bytes sent: the answer must come without the rest.
        sock.sendall(
            b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n0123456789"
        )
        with sock.makefile("rb") as reader:
            status, head, body = _read_response(reader)
            assert reader.read() == b""  # the server closed the connection
    assert status == 413
    assert b"connection: close" in head.lower()
    assert msgspec.json.decode(body)["error"] == "payload_too_large"


def test_chunked_body_is_refused_once_it_passes_the_limit(urls: dict[str, str]) -> None:
    host, port = urls["default"].removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"x" * 3000
        for _ in range(3):  # 9000 bytes > 8192; the final zero-size chunk is never sent
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        with sock.makefile("rb") as reader:
            status, _, body = _read_response(reader)
    assert status == 413
    assert msgspec.json.decode(body)["error"] == "payload_too_large"


def test_an_abandoned_request_does_not_disturb_the_server(
    urls: dict[str, str], tmp_path: Path
) -> None:
    host, port = urls["default"].removeprefix("http://").split(":")
    for _ in range(20):
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n{")
    with HttpSend(urls["default"]) as send:
        assert send("GET", "/ping", {}, b"")[0] == 200


def test_a_request_the_parser_refuses_is_a_400_not_a_crash(urls: dict[str, str]) -> None:
    host, port = urls["default"].removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"BREW /predict HTTP/1.1\r\nHost: x\r\n\r\n")
        with sock.makefile("rb") as reader:
            status, _, _ = _read_response(reader)
    assert status == 400
    with HttpSend(urls["default"]) as send:
        assert send("GET", "/ping", {}, b"")[0] == 200


def _read_response(reader: object) -> tuple[int, bytes, bytes]:
    """Read one HTTP/1.1 response with a Content-Length body: (status, head, body)."""
    lines = []
    while True:
        line = reader.readline()  # type: ignore[attr-defined]
        assert line, "connection closed before the response"
        if line == b"\r\n":
            break
        lines.append(line)
    head = b"".join(lines)
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    return int(lines[0].split()[1]), head, reader.read(length)  # type: ignore[attr-defined]
