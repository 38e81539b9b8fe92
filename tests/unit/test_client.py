"""The client's own behaviour against small canned HTTP servers on 127.0.0.1.

Answers a modelapi server never gives (a proxy's 502 page, a dropped keep-alive connection, a
server that never answers) are served here by hand; tests/live/test_client.py runs the client
against the real app.
"""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import modelapi
from modelapi.client import Client, ServerError, ServerUnreachable
from modelapi.errors import (
    ConfigError,
    FieldError,
    InvalidInput,
    MethodNotAllowed,
    ModelUnavailable,
    NotFound,
    PayloadTooLarge,
    Unauthorized,
)

Answer = tuple[int, dict[str, str], bytes]


class Recorded:
    """What the canned server saw: (method, path, headers, body) per request, connections."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        self.connections = 0


@contextmanager
def canned(
    answer: Callable[[str, str], Answer], *, close_after: bool = False
) -> Iterator[tuple[str, Recorded]]:
    """An HTTP/1.1 server answering every request with `answer(method, path)`."""
    seen = Recorded()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            seen.connections += 1
            super().setup()

        def _answer(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            body = self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            seen.requests.append((self.command, self.path, headers, body))
            status, extra, data = answer(self.command, self.path)
            self.send_response(status)
            for name, value in {"Content-Length": str(len(data)), **extra}.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
            if close_after:
                # Drop the connection without saying so, as an idle keep-alive timeout does.
                self.close_connection = True

        do_GET = do_POST = _answer

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def json_answer(status: int, body: bytes) -> Callable[[str, str], Answer]:
    return lambda method, path: (status, {"Content-Type": "application/json"}, body)


def test_client_is_exported_from_the_package() -> None:
    assert modelapi.Client is Client
    assert "Client" in modelapi.__all__


@pytest.mark.parametrize(
    ("url", "kwargs", "message"),
    [
        ("127.0.0.1:8000", {}, "use http(s)://host"),
        ("ftp://example.org", {}, "use http(s)://host"),
        ("http://", {}, "use http(s)://host"),
        ("http://127.0.0.1:99999", {}, "port outside 1-65535"),
        ("http://127.0.0.1:8000", {"timeout_s": 0}, "timeout_s must be a positive"),
    ],
)
def test_bad_urls_and_timeouts_are_config_errors(
    url: str, kwargs: dict[str, float], message: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        Client(url, **kwargs)


def test_a_refused_connection_names_the_url() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    with pytest.raises(ServerUnreachable, match="connection refused") as caught:
        Client(url).ping()
    assert str(caught.value).startswith(url)
    assert isinstance(caught.value, ConnectionError)


def test_a_server_that_never_answers_times_out() -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        with pytest.raises(ServerUnreachable, match="no answer within the timeout"):
            Client(url, timeout_s=0.2).ping()


def test_the_key_prefix_and_body_are_sent() -> None:
    answer = json_answer(200, b'{"outcome": 1}')
    with canned(answer) as (url, seen), Client(url + "/dev/", api_key="k3y") as client:
        assert client.predict({"glucose": 148}) == {"outcome": 1}
    method, path, headers, body = seen.requests[0]
    assert (method, path, body) == ("POST", "/dev/predict", b'{"glucose":148}')
    assert headers["authorization"] == "Bearer k3y"
    assert headers["content-type"] == "application/json"


def test_one_connection_serves_many_calls() -> None:
    with canned(json_answer(200, b'{"ping": "pong"}')) as (url, seen), Client(url) as client:
        assert all(client.ping() for _ in range(5))
    assert (len(seen.requests), seen.connections) == (5, 1)


def test_a_dropped_keep_alive_connection_is_reopened_once() -> None:
    answer = json_answer(200, b'{"ping": "pong"}')
    with canned(answer, close_after=True) as (url, seen), Client(url) as client:
        assert all(client.ping() for _ in range(3))
    assert (len(seen.requests), seen.connections) == (3, 3)


@pytest.mark.parametrize(
    ("status", "body", "kind", "details"),
    [
        (
            422,
            b'{"error": "invalid_input", "details": [{"field": "glucose", "reason": "is required"},'
            b' {"field": "age", "reason": "must be a number"}]}',
            InvalidInput,
            [FieldError("glucose", "is required"), FieldError("age", "must be a number")],
        ),
        (
            413,
            b'{"error": "payload_too_large", "details": [{"field": "body", "reason": "too big"}]}',
            PayloadTooLarge,
            [FieldError("body", "too big")],
        ),
        (
            500,
            b'{"error": "internal_error", "details": [{"field": "request", "reason": "oops"}]}',
            ServerError,
            [FieldError("request", "oops")],
        ),
    ],
)
def test_error_bodies_become_modelapi_errors_with_details(
    status: int, body: bytes, kind: type[Exception], details: list[FieldError]
) -> None:
    with (
        canned(json_answer(status, body)) as (url, _),
        Client(url) as client,
        pytest.raises(kind) as caught,
    ):
        client.predict([{"glucose": 1}])
    assert list(caught.value.details) == details  # type: ignore[attr-defined]
    if isinstance(caught.value, ServerError):
        assert caught.value.status == status


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        ("unauthorized", Unauthorized),
        ("not_found", NotFound),
        ("model_unavailable", ModelUnavailable),
    ],
)
def test_message_errors_keep_the_servers_reason(code: str, kind: type[Exception]) -> None:
    body = b'{"error": "%s", "details": [{"field": "x", "reason": "the reason"}]}' % code.encode()
    with (
        canned(json_answer(418, body)) as (url, _),
        Client(url) as client,
        pytest.raises(kind, match="the reason"),
    ):
        client.model()


def test_method_not_allowed_carries_the_allowed_methods() -> None:
    body = b'{"error": "method_not_allowed", "details": [{"field": "method", "reason": "no"}]}'

    def answer(method: str, path: str) -> Answer:
        return (
            405,
            {"Allow": "GET, HEAD", "Content-Type": "application/json"},
            body,
        )

    with (
        canned(answer) as (url, _),
        Client(url) as client,
        pytest.raises(MethodNotAllowed) as caught,
    ):
        client.model()
    assert caught.value.allowed == ("GET", "HEAD")


def test_a_proxy_page_is_a_server_error_with_its_status() -> None:
    def answer(method: str, path: str) -> Answer:
        return (
            502,
            {"Content-Type": "text/html"},
            b"<html>Bad Gateway</html>",
        )

    with (
        canned(answer) as (url, _),
        Client(url) as client,
        pytest.raises(ServerError, match="answered HTTP 502") as caught,
    ):
        client.predict({"glucose": 1})
    assert caught.value.status == 502
    assert "Bad Gateway" not in str(caught.value)


@pytest.mark.parametrize(
    ("sent", "answer"),
    [({"glucose": 1}, b"[]"), ([{"glucose": 1}], b"{}")],
)
def test_an_answer_of_the_wrong_shape_is_refused(sent: object, answer: bytes) -> None:
    with (
        canned(json_answer(200, answer)) as (url, _),
        Client(url) as client,
        pytest.raises(ServerError, match="unexpected shape"),
    ):
        client.predict(sent)  # type: ignore[call-overload]


def test_predict_takes_dicts_not_text() -> None:
    with pytest.raises(TypeError, match="dict of features"):
        Client("http://127.0.0.1:1").predict("glucose=148")  # type: ignore[call-overload]
