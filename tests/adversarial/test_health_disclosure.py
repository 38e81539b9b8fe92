"""/health without the key says "not ready" and nothing about the store.

A load failure's reason names the store: the bucket, the prefix, the endpoint URL, local
paths. Without the key, /health answers only that the model is not loaded; the reason goes to
the log, and to a caller with the key (on a server without a key, every caller is one).
"""

from __future__ import annotations

import secrets
import socket
from pathlib import Path

import msgspec

from tests.servers import HttpSend, serve_process

KEY = secrets.token_hex(16)
BUCKET = "zq7-secret-bucket"
PREFIX = "zq7-secret-prefix"
GENERIC = "the model is not loaded; the reason is in the server's log"


def _closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (connections are refused at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _reason(body: bytes) -> str:
    decoded = msgspec.json.decode(body)
    assert decoded["error"] == "model_unavailable"
    [detail] = decoded["details"]
    return str(detail["reason"])


def test_health_tells_the_reason_only_to_a_caller_with_the_key(tmp_path: Path) -> None:
    endpoint = f"http://127.0.0.1:{_closed_port()}"
    env = {
        "MODELAPI_API_KEY": KEY,
        "MODELAPI_STORE": f"s3://{BUCKET}/{PREFIX}",
        "MODELAPI_MODEL": "diabetes@production",
        "MODELAPI_RELOAD_INTERVAL_S": "0",
        "AWS_ENDPOINT_URL_S3": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    secrets_shown = (BUCKET, PREFIX, endpoint, str(tmp_path))
    with serve_process(tmp_path, env=env) as server, HttpSend(server.url) as send:
        for headers in ({}, {"x-api-key": "wrong"}, {"authorization": "Bearer wrong"}):
            for path in ("/health", "/health?verbose=1"):
                status, _, body = send("GET", path, headers, b"")
                assert status == 503
                assert _reason(body) == GENERIC
                for secret in secrets_shown:
                    assert secret.encode() not in body
        status, _, body = send("GET", "/health", {"x-api-key": KEY}, b"")
        assert status == 503
        assert BUCKET in _reason(body)
        status, _, body = send("GET", "/v2/health/ready", {}, b"")
        assert status == 401, "the V2 readiness route needs the key"
        assert BUCKET.encode() not in body
    assert BUCKET in server.output(), "the reason is in the log"


def test_without_a_key_set_health_keeps_the_reason(tmp_path: Path) -> None:
    # A store that does not answer: the server starts and waits for it (a store that
    # answers without the model stops the start instead).
    env = {
        "MODELAPI_STORE": f"s3://{BUCKET}/{PREFIX}",
        "MODELAPI_MODEL": "diabetes@production",
        "MODELAPI_RELOAD_INTERVAL_S": "0",
        "AWS_ENDPOINT_URL_S3": f"http://127.0.0.1:{_closed_port()}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    with serve_process(tmp_path, env=env) as server, HttpSend(server.url) as send:
        status, _, body = send("GET", "/health", {}, b"")
    assert status == 503
    assert BUCKET in _reason(body)
