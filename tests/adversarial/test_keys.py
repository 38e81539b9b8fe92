"""The API key: an empty or unusable key stops start-up, a short one is warned about, and a key
is the same string on every adapter.

An empty `MODELAPI_API_KEY` once meant "no key", so a deployment that meant to set one and
got an empty secret served every route to anyone. Keys are printable ASCII: an HTTP server
reads header bytes as latin-1 and a Lambda event arrives as UTF-8 text, so any other character
would match on one adapter and not on the other.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

from modelapi.aws_lambda import LambdaHandler
from modelapi.config import MIN_KEY_CHARS, Settings
from modelapi.errors import ConfigError
from tests.aws_lambda.events import load_event
from tests.conftest import PIMA_EXAMPLE
from tests.servers import HttpSend, clean_environment, serve_process

BUNDLE = Path(__file__).resolve().parents[2] / "src/modelapi/models/diabetes/1"
# Every printable ASCII character but the space, and long enough not to be warned about.
PUNCTUATED_KEY = "".join(chr(c) for c in range(0x21, 0x7F))
UNUSABLE_KEYS = [
    "",
    " ",
    "\t",
    "   \n",
    "cl\u00e9-0123456789abcdef",
    "two words 0123456789",
    "\x00" * 20,
]


@pytest.mark.parametrize("key", UNUSABLE_KEYS, ids=repr)
def test_an_unusable_key_is_a_configuration_error(key: str) -> None:
    with pytest.raises(ConfigError, match="MODELAPI_API_KEY"):
        Settings.from_env({"MODELAPI_API_KEY": key})
    with pytest.raises(ConfigError, match="--api-key"):
        Settings().replace(api_key=key)


def test_a_short_key_works_with_a_warning() -> None:
    short = Settings.from_env({"MODELAPI_API_KEY": "x" * (MIN_KEY_CHARS - 1)})
    [warning] = short.warnings()
    assert f"shorter than {MIN_KEY_CHARS} characters" in warning
    assert "x" * 4 not in warning, "the warning never quotes the key"
    assert Settings(api_key="x" * MIN_KEY_CHARS).warnings() == []
    assert Settings().warnings() == []


def _serve(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modelapi", "serve", "--port", "0", *args],
        env=clean_environment(env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("args", "env"),
    [
        ((), {"MODELAPI_API_KEY": ""}),
        ((), {"MODELAPI_API_KEY": "  "}),
        (("--api-key", ""), {}),
        (("--api-key", " "), {"MODELAPI_API_KEY": PUNCTUATED_KEY}),
        ((), {"MODELAPI_API_KEY": "cl\u00e9-0123456789abcdef"}),
    ],
    ids=["env-empty", "env-spaces", "flag-empty", "flag-space-over-env", "env-non-ascii"],
)
def test_serve_refuses_to_start_with_an_unusable_key(
    args: tuple[str, ...], env: dict[str, str]
) -> None:
    result = _serve(*args, env=env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "modelapi: serving" not in result.stdout
    [line] = result.stderr.strip().splitlines()
    # The setting is named as it was given: the flag, or the variable.
    assert line.startswith("error: --api-key " if args else "error: MODELAPI_API_KEY ")


def test_serve_warns_about_a_short_key_and_requires_it(tmp_path: Path) -> None:
    key = "short-key"
    env = {"MODELAPI_API_KEY": key}
    with serve_process(tmp_path, env=env) as server, HttpSend(server.url) as send:
        assert send("POST", "/predict", {}, PIMA_EXAMPLE)[0] == 401
        assert send("POST", "/predict", {"x-api-key": key}, PIMA_EXAMPLE)[0] == 200
    output = server.output()
    assert f"warning: MODELAPI_API_KEY is shorter than {MIN_KEY_CHARS} characters" in output
    assert key not in output


def _lambda(env: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> LambdaHandler:
    for name, value in clean_environment(env).items():
        monkeypatch.setenv(name, value)
    for name in ("MODELAPI_API_KEY", "MODELAPI_STORE"):
        if name not in env:
            monkeypatch.delenv(name, raising=False)
    return LambdaHandler(embedded_model=BUNDLE)


def _api_event(headers: dict[str, str]) -> dict[str, object]:
    event = load_event("http_v2_stage_predict.json")
    assert isinstance(event, dict)
    return {**event, "headers": {**event["headers"], **headers}}


@pytest.mark.parametrize("key", ["", "   ", "cl\u00e9-0123456789abcdef"], ids=repr)
def test_lambda_refuses_to_serve_with_an_unusable_key(
    key: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    handler = _lambda({"MODELAPI_API_KEY": key}, monkeypatch, tmp_path)
    for event in (_api_event({}), load_event("direct_plain_features.json")):
        answer = handler.handle(event)
        assert isinstance(answer, dict)
        status = answer.get("statusCode", 503 if answer.get("error") else 200)
        assert status == 503, answer
        assert "MODELAPI_API_KEY" in str(answer)
        assert "outcome" not in str(answer)


def test_lambda_warns_about_a_short_key(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    handler = _lambda({"MODELAPI_API_KEY": "short-key"}, monkeypatch, tmp_path)
    with caplog.at_level(logging.WARNING, logger="modelapi"):
        answer = handler.handle(_api_event({"x-api-key": "short-key"}))
    assert isinstance(answer, dict)
    assert answer["statusCode"] == 200
    assert f"shorter than {MIN_KEY_CHARS} characters" in caplog.text


def test_the_same_key_opens_both_adapters_and_near_misses_open_neither(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    env = {"MODELAPI_API_KEY": PUNCTUATED_KEY}
    handler = _lambda(env, monkeypatch, tmp_path)
    # The key with its last character made non-ASCII, as UTF-8 (what a client sends) and as
    # the latin-1 reading of those bytes (what an HTTP server hands the app).
    near = PUNCTUATED_KEY[:-1] + "\u00e9"
    misread = near.encode().decode("latin-1")
    with serve_process(tmp_path, env=env) as server, HttpSend(server.url) as send:
        for given, status in ((PUNCTUATED_KEY, 200), (PUNCTUATED_KEY[:-1], 401)):
            for headers in ({"x-api-key": given}, {"authorization": f"Bearer {given}"}):
                assert send("POST", "/predict", headers, PIMA_EXAMPLE)[0] == status, headers
                answer = handler.handle(_api_event(headers))
                assert isinstance(answer, dict)
                assert answer["statusCode"] == status, headers
        raw = near.encode()
        assert _raw_status(server.url, b"x-api-key: " + raw) == 401
        for given in (near, misread):
            answer = handler.handle(_api_event({"x-api-key": given}))
            assert isinstance(answer, dict)
            assert answer["statusCode"] == 401
            assert msgspec.json.decode(answer["body"])["error"] == "unauthorized"


def _raw_status(url: str, header: bytes) -> int:
    """Send a request with one header of raw bytes (http.client would refuse non-ASCII)."""
    import socket

    host, port = url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            b"POST /predict HTTP/1.1\r\nhost: x\r\nconnection: close\r\n"
            + header
            + b"\r\ncontent-length: %d\r\n\r\n" % len(PIMA_EXAMPLE)
            + PIMA_EXAMPLE
        )
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return int(answer.split(b" ", 2)[1])
