"""Real servers on 127.0.0.1 for the tests, started one way each, and a plain HTTP client.

- `serve_process`: `python -m modelapi serve --port 0` in its own process. It waits for the
  start-up line (which names the model and the free port the server took), then for /ping;
  it keeps stdout and stderr in files and stops the process with SIGINT afterwards. If the
  test fails inside it, the server's output is added to the failure.
- `serve_app` / `serve_model`: uvicorn in a thread of the test process, on a free port.

Output goes to files rather than pipes so that a server logging at debug level can never block
on a full pipe, and so that a test can read every line it wrote, uvicorn's included, while it
runs and after it has stopped.
"""

from __future__ import annotations

import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from modelapi.app import create_app
from modelapi.config import Settings
from modelapi.predictor import Predictor
from modelapi.source import ModelSource
from tests.conformance import Answer

__all__ = [
    "HttpSend",
    "ServeProcess",
    "clean_environment",
    "rss_bytes",
    "serve_app",
    "serve_model",
    "serve_process",
    "wait_until_up",
]

# `modelapi: serving diabetes:1 on http://127.0.0.1:8000 (1 worker)`; the built-in model is
# named as `diabetes:1 (built in: ./models has no model diabetes)`.
_SERVING = re.compile(r"modelapi: serving (\S+)(?: \(.*\))? on (http://\S+) \((\d+) workers?\)")
_SHOWN_CHARS = 4000


def clean_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without MODELAPI_* variables, plus `extra`."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MODELAPI_")}
    environ.update(extra or {})
    return environ


class ServeProcess:
    """A running `modelapi serve`: its URL, model, process and everything it has written."""

    def __init__(self, process: subprocess.Popen[bytes], stdout: Path, stderr: Path) -> None:
        self.process = process
        self._stdout, self._stderr = stdout, stderr
        self.url = ""
        self.model = ""
        self.workers = 0

    def stdout(self) -> str:
        """What the server has written to stdout so far (the start-up line)."""
        return self._stdout.read_bytes().decode("utf-8", "replace")

    def stderr(self) -> str:
        """What the server has written to stderr so far (its log and uvicorn's)."""
        return self._stderr.read_bytes().decode("utf-8", "replace")

    def output(self) -> str:
        """Everything the server has written so far: stdout, then stderr."""
        return self.stdout() + self.stderr()

    def wait_for(self, text: str, timeout_s: float = 20) -> None:
        """Wait until the output holds `text`; fail the test if it does not in time."""
        deadline = time.monotonic() + timeout_s
        while text not in self.output():
            if time.monotonic() > deadline or self.process.poll() is not None:
                pytest.fail(f"server output never said {text!r}:\n{self._tail()}")
            time.sleep(0.05)

    def _tail(self) -> str:
        return f"stdout:\n{self.stdout()[-_SHOWN_CHARS:]}\nstderr:\n{self.stderr()[-_SHOWN_CHARS:]}"


@contextmanager
def serve_process(
    cwd: Path,
    *args: str,
    env: Mapping[str, str] | None = None,
    wait_ready: bool = True,
    preexec: Callable[[], None] | None = None,
) -> Iterator[ServeProcess]:
    """Start `modelapi serve --port 0 ARGS` in `cwd`; yield it once it answers /ping.

    `env` is added to this process's environment without its MODELAPI_* variables.
    `preexec` runs in the child before it starts (to lower a resource limit, say).
    """
    stem = cwd / f"serve-{time.monotonic_ns()}"
    stdout, stderr = stem.with_suffix(".out"), stem.with_suffix(".err")
    with stdout.open("wb") as out, stderr.open("wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "modelapi", "serve", "--port", "0", *args],
            cwd=cwd,
            env=clean_environment(env),
            stdout=out,
            stderr=err,
            preexec_fn=preexec,
        )
    server = ServeProcess(process, stdout, stderr)
    try:
        deadline = time.monotonic() + 30
        while (match := _SERVING.search(server.stdout())) is None:
            if time.monotonic() > deadline or process.poll() is not None:
                pytest.fail(f"server did not start:\n{server._tail()}")
            time.sleep(0.05)
        server.model, server.url = match.group(1), match.group(2)
        server.workers = int(match.group(3))
        if wait_ready:
            wait_until_up(server.url)
        try:
            yield server
        except (Exception, pytest.fail.Exception) as exc:
            exc.add_note(f"output of modelapi serve {' '.join(args)}:\n{server._tail()}")
            raise
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def rss_bytes(pid: int) -> int:
    """The resident set size of a process, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for process {pid}")


@contextmanager
def serve_app(app: Any) -> Iterator[str]:
    """Serve an ASGI app with uvicorn (uvloop, httptools) on 127.0.0.1; yield its base URL."""
    sock = socket.create_server(("127.0.0.1", 0))
    config = uvicorn.Config(
        app, loop="uvloop", http="httptools", ws="none", lifespan="on", log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline and thread.is_alive():
            time.sleep(0.01)
        assert server.started, "server did not start within 10 s"
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@contextmanager
def serve_model(predictor: Predictor | None, settings: Settings) -> Iterator[str]:
    """Serve `predictor` (None: no model loaded) as `create_app` would; yield the base URL."""
    source = (
        ModelSource.of(predictor)
        if predictor is not None
        else ModelSource("absent", settings.store)
    )
    app = create_app(settings, source=source)
    try:
        with serve_app(app) as url:
            yield url
    finally:
        app.close()


class HttpSend:
    """A conformance `send` over one keep-alive HTTP/1.1 connection (reopened if closed)."""

    def __init__(self, url: str) -> None:
        self.connection = http.client.HTTPConnection(url.removeprefix("http://"), timeout=10)

    def __call__(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> Answer:
        """Send one request and read its whole answer."""
        connection = self.connection
        connection.request(method, path, body=body or None, headers=dict(headers))
        response = connection.getresponse()
        data = response.read()
        out = {name.lower(): value for name, value in response.getheaders()}
        if response.will_close:
            connection.close()
        return response.status, out, data

    def close(self) -> None:
        """Close the connection."""
        self.connection.close()

    def __enter__(self) -> HttpSend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def wait_until_up(url: str) -> None:
    """Wait up to 20 s for a server (e.g. a `modelapi serve` subprocess) to answer /ping."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with HttpSend(url) as send:
                if send("GET", "/ping", {}, b"")[0] == 200:
                    return
        except OSError:
            time.sleep(0.05)
    pytest.fail(f"{url} did not answer /ping within 20 s")
