"""`python -m modelapi serve` as a user runs it: a real process, a real port, curl."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import msgspec
import pytest

from modelapi.bundle import Bundle
from modelapi.store.local import LocalStore
from tests.conftest import PIMA_EXAMPLE
from tests.live.servers import HttpSend, wait_until_up

_SERVING = re.compile(r"modelapi: serving (\S+)(?: \(.*\))? on (http://\S+) \((\d+) workers?\)")


@contextmanager
def _serve(
    cwd: Path, *args: str, env: dict[str, str] | None = None
) -> Iterator[tuple[str, str, subprocess.Popen[str]]]:
    """Start `modelapi serve` on a free port; yield (model, url, process); stop it with SIGINT."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MODELAPI_")}
    environ.update(env or {})
    process = subprocess.Popen(
        [sys.executable, "-m", "modelapi", "serve", "--port", "0", *args],
        cwd=cwd,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = _SERVING.search(line)
        assert match, f"no 'serving' line: {line!r}"
        model, url = match.group(1), match.group(2)
        wait_until_up(url)
        yield model, url, process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        assert process.stdout is not None
        assert process.stderr is not None
        process.stdout.close()
        # Kept for the test to read once the process has ended.
        process.stderr_text = process.stderr.read()  # type: ignore[attr-defined]
        process.stderr.close()


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
    with _serve(tmp_path) as (model, url, process):
        assert model == "diabetes:1"
        assert url.startswith("http://127.0.0.1:")
        head, body = _curl(url)
        assert head.startswith("HTTP/1.1 200")
        assert "x-model-version: diabetes:1" in head.lower()
        assert set(body) == {"outcome", "probabilities"}
    assert process.returncode == 0
    assert "Traceback" not in process.stderr_text  # type: ignore[attr-defined]


def test_serve_logs_no_request_line_or_body_by_default(tmp_path: Path) -> None:
    with _serve(tmp_path) as (_, url, process):
        _curl(url)
    stderr: str = process.stderr_text  # type: ignore[attr-defined]
    assert "Application startup complete" in stderr  # the log was captured
    assert "POST /predict" not in stderr
    assert "148" not in stderr


def test_access_log_names_requests_never_bodies(tmp_path: Path) -> None:
    marked = PIMA_EXAMPLE.replace(b"33.6", b"48151.62342")
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MODELAPI_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "modelapi", "serve", "--port", "0", "--access-log"],
        cwd=tmp_path,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    try:
        match = None
        for line in process.stdout:  # log lines on stderr come first here
            match = _SERVING.search(line)
            if match:
                break
        assert match
        url = match.group(2)
        wait_until_up(url)
        subprocess.run(
            ["curl", "--silent", "-X", "POST", f"{url}/predict", "-d", marked.decode()],
            capture_output=True,
            check=True,
            timeout=30,
        )
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=20)
        process.stdout.close()
    assert '"POST /predict HTTP/1.1" 200' in output
    assert "48151" not in output


def test_serve_with_workers_rebuilds_the_settings_from_flags_in_each_worker(
    tmp_path: Path, builtin_bundle: Bundle
) -> None:
    store = LocalStore(tmp_path / "store")
    store.put(builtin_bundle)
    store.put(builtin_bundle)
    args = ("diabetes:2", "--store", str(store.root), "--workers", "2", "--api-key", "s3cret")
    with _serve(tmp_path, *args) as (model, url, _):
        assert model == "diabetes:2"
        for _ in range(6):  # connections spread over both workers
            head, body = _curl(url, "-H", "X-API-Key: s3cret")
            assert "x-model-version: diabetes:2" in head.lower()
            head, body = _curl(url)
            assert head.startswith("HTTP/1.1 401")
            assert body["error"] == "unauthorized"


def test_serve_reads_the_model_from_the_environment(tmp_path: Path, builtin_bundle: Bundle) -> None:
    store = LocalStore(tmp_path / "store")
    store.put(builtin_bundle)
    store.set_alias("diabetes", "production", 1)
    env = {"MODELAPI_MODEL": "diabetes@production", "MODELAPI_STORE": str(store.root)}
    with _serve(tmp_path, env=env) as (model, url, _):
        assert model == "diabetes:1"
        assert _curl(url)[0].startswith("HTTP/1.1 200")


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
    with _serve(tmp_path, "diabetes") as (model, url, _), HttpSend(url) as send:
        assert model == "diabetes:1"
        assert send("GET", "/ping", {}, b"")[0] == 200


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
