"""`python -m modelapi serve` as a user runs it: a real process, a real port, curl."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

from modelapi.bundle import Bundle
from modelapi.store.local import LocalStore
from tests.conftest import PIMA_EXAMPLE
from tests.servers import HttpSend, serve_process


def _curl(url: str, *extra: str) -> tuple[str, dict[str, object]]:
    result = subprocess.run(
        ["curl", "--silent", "--include", "-X", "POST", f"{url}/predict", "-d",
         PIMA_EXAMPLE.decode(), *extra],
        capture_output=True,
        check=True,
        timeout=30,
    )  # fmt: skip
    head, _, body = result.stdout.decode().partition("\r\n\r\n")
    return head, msgspec.json.decode(body)


def test_serve_defaults_to_the_built_in_model(tmp_path: Path) -> None:
    with serve_process(tmp_path) as server:
        assert server.model == "diabetes:1"
        assert server.url.startswith("http://127.0.0.1:")
        head, body = _curl(server.url)
        assert head.startswith("HTTP/1.1 200")
        assert "x-model-version: diabetes:1" in head.lower()
        assert set(body) == {"outcome", "probabilities"}
    assert server.process.returncode == 0
    assert "Traceback" not in server.stderr()


def test_serve_logs_no_request_line_or_body_by_default(tmp_path: Path) -> None:
    with serve_process(tmp_path) as server:
        _curl(server.url)
    stderr = server.stderr()
    assert "Application startup complete" in stderr  # the log was captured
    assert "POST /predict" not in stderr
    assert "148" not in stderr


def test_access_log_names_requests_never_bodies(tmp_path: Path) -> None:
    marked = PIMA_EXAMPLE.replace(b"33.6", b"48151.62342")
    with serve_process(tmp_path, "--access-log") as server:
        subprocess.run(
            ["curl", "--silent", "-X", "POST", f"{server.url}/predict", "-d", marked.decode()],
            capture_output=True,
            check=True,
            timeout=30,
        )
    output = server.output()
    assert '"POST /predict HTTP/1.1" 200' in output
    assert "48151" not in output


def test_serve_with_workers_rebuilds_the_settings_from_flags_in_each_worker(
    tmp_path: Path, builtin_bundle: Bundle
) -> None:
    store = LocalStore(tmp_path / "store")
    store.put(builtin_bundle)
    store.put(builtin_bundle)
    args = ("diabetes:2", "--store", str(store.root), "--workers", "2", "--api-key", "s3cret")
    with serve_process(tmp_path, *args) as server:
        assert server.model == "diabetes:2"
        assert server.workers == 2
        for _ in range(6):  # connections spread over both workers
            head, body = _curl(server.url, "-H", "X-API-Key: s3cret")
            assert "x-model-version: diabetes:2" in head.lower()
            head, body = _curl(server.url)
            assert head.startswith("HTTP/1.1 401")
            assert body["error"] == "unauthorized"


def test_serve_reads_the_model_from_the_environment(tmp_path: Path, builtin_bundle: Bundle) -> None:
    store = LocalStore(tmp_path / "store")
    store.put(builtin_bundle)
    store.set_alias("diabetes", "production", 1)
    env = {"MODELAPI_MODEL": "diabetes@production", "MODELAPI_STORE": str(store.root)}
    with serve_process(tmp_path, env=env) as server:
        assert server.model == "diabetes:1"
        assert _curl(server.url)[0].startswith("HTTP/1.1 200")


@pytest.mark.parametrize("workers", ["1", "2"])
def test_serve_refuses_a_model_the_store_does_not_hold(tmp_path: Path, workers: str) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "modelapi",
            "serve",
            "nosuchmodel",
            "--port",
            "0",
            "--workers",
            workers,
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == "error: no model named 'nosuchmodel' in ./models"
    assert "Traceback" not in result.stderr
    assert "modelapi: serving" not in result.stdout


def test_serve_says_when_it_serves_the_built_in_model(tmp_path: Path) -> None:
    with serve_process(tmp_path, "diabetes") as server, HttpSend(server.url) as send:
        assert server.model == "diabetes:1"
        assert send("GET", "/ping", {}, b"")[0] == 200
    assert "(built in: ./models has no model diabetes)" in server.stdout()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["bad name!"], "model name"),
        (["--workers", "0"], "--workers must be"),
        (["--reload-interval-s", "-1"], "--reload-interval-s must be"),
    ],
)
def test_serve_refuses_bad_settings_in_one_line(
    tmp_path: Path, args: list[str], message: str
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "modelapi", "serve", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("error: ")
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_refuses_a_port_in_use(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "modelapi", "serve", "--port", str(port)],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr
