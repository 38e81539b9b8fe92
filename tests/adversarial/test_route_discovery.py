"""Route discovery: with a key set, every path but /ping and /health answers the same 401.

Before, an unknown path answered 404 and a known one 401 (or 405 for another method), so a
client without the key could list the routes, and which optional ones (V2, /metrics) were on.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelapi.service import OPEN_PATHS
from tests.servers import HttpSend, ServeProcess, serve_process

KEY = secrets.token_hex(16)
# Known routes with their own and other methods, templates filled and not, and paths that
# are no route at all.
PROBES = [
    (method, path)
    for path in (
        "/predict",
        "/model",
        "/metrics",
        "/openapi.json",
        "/docs",
        "/",
        "/v2",
        "/v2/models/diabetes",
        "/v2/models/other/ready",
        "/v2/models/diabetes/infer",
        "/nope",
        "/admin",
        "/.env",
        "/v2/models",
        "/predict/",
        "//predict",
        "/ping/x",
    )
    for method in ("GET", "POST", "PUT", "DELETE", "OPTIONS")
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    """`modelapi serve` with a key."""
    cwd = tmp_path_factory.mktemp("serve-discovery")
    with serve_process(cwd, env={"MODELAPI_API_KEY": KEY}) as process:
        yield process


def test_without_the_key_every_path_answers_the_same_401(server: ServeProcess) -> None:
    answers = set()
    with HttpSend(server.url) as send:
        for method, path in PROBES:
            status, headers, body = send(method, path, {}, b"")
            assert status == 401, (method, path, status)
            answers.add((headers["www-authenticate"], headers["content-type"], body))
            status, headers, _ = send("HEAD", path, {}, b"")
            assert (status, headers.get("www-authenticate")) == (401, "Bearer"), path
    assert len(answers) == 1, "the 401 must not differ by path or method"


def test_with_the_key_routes_are_told_apart(server: ServeProcess) -> None:
    key = {"x-api-key": KEY}
    with HttpSend(server.url) as send:
        assert send("GET", "/nope", key, b"")[0] == 404
        assert send("DELETE", "/predict", key, b"")[0] == 405
        assert send("GET", "/model", key, b"")[0] == 200
        for path in sorted(OPEN_PATHS):
            assert send("GET", path, {}, b"")[0] == 200
            assert send("POST", path, {}, b"")[0] == 405, "an open route keeps its 405"


def test_without_a_key_set_unknown_paths_are_404(tmp_path: Path) -> None:
    with serve_process(tmp_path) as server, HttpSend(server.url) as send:
        assert send("GET", "/nope", {}, b"")[0] == 404
        assert send("DELETE", "/predict", {}, b"")[0] == 405
