"""The README's install path from a clone: `pip install '/path/to/modelapi[server]'` into a
fresh virtual environment gives a `modelapi` that serves the built-in model."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import PIMA_EXAMPLE, REPO_ROOT


def _free_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as sock:
        return int(sock.getsockname()[1])


@pytest.mark.timeout(600)
def test_pip_install_from_the_clone_serves_the_builtin_model(
    tmp_path: Path, pima_example_answer: dict[str, object]
) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODELAPI_", "VIRTUAL_ENV"))}
    installed = subprocess.run(
        [
            str(venv / "bin/pip"),
            "install",
            "-q",
            "--disable-pip-version-check",
            f"{REPO_ROOT}[server]",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=540,
        check=False,
    )
    assert installed.returncode == 0, installed.stderr[-3000:]
    version = subprocess.run(
        [str(venv / "bin/modelapi"), "--version"], capture_output=True, text=True, check=True
    )
    assert version.stdout.startswith("modelapi, version ")
    port = _free_port()
    server = subprocess.Popen(
        [str(venv / "bin/modelapi"), "serve", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/ping", timeout=1) as response:
                    assert json.loads(response.read()) == {"ping": "pong"}
                break
            except OSError:
                assert server.poll() is None, server.stderr.read().decode()  # type: ignore[union-attr]
                assert time.monotonic() < deadline, "the server did not answer within 60 s"
                time.sleep(0.2)
        # curl's default content type, as existing clients send it
        request = urllib.request.Request(f"{url}/predict", PIMA_EXAMPLE)
        with urllib.request.urlopen(request, timeout=10) as response:
            answer = json.loads(response.read())
        assert answer["outcome"] == pima_example_answer["outcome"]
        assert answer["probabilities"] == pytest.approx(pima_example_answer["probabilities"])
    finally:
        server.terminate()
        server.wait(10)
        assert server.stderr is not None
        server.stderr.close()
