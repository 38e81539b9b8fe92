"""`python -m modelapi serve` in its own process, its whole output kept in a file.

The output goes to a file rather than a pipe so that a server logging at debug level can
never block on a full pipe, and so that a test can read every line it wrote, uvicorn's
included, while it runs and after it has stopped.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.live.servers import wait_until_up

__all__ = ["ServeProcess", "clean_environment", "rss_bytes", "serve_process"]

_SERVING = re.compile(r"modelapi: serving (\S+)(?: \(.*\))? on (http://\S+) \(")


def clean_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without MODELAPI_* variables, plus `extra`."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MODELAPI_")}
    environ.update(extra or {})
    return environ


class ServeProcess:
    """A running `modelapi serve`: its URL, its process and everything it has written."""

    def __init__(self, process: subprocess.Popen[bytes], log: Path) -> None:
        self.process = process
        self.log = log
        self.url = ""
        self.model = ""

    def output(self) -> str:
        """Everything the server has written so far (stdout and stderr)."""
        return self.log.read_bytes().decode("utf-8", "replace")

    def wait_for(self, text: str, timeout_s: float = 20) -> None:
        """Wait until the output holds `text`; fail the test if it does not in time."""
        deadline = time.monotonic() + timeout_s
        while text not in self.output():
            if time.monotonic() > deadline or self.process.poll() is not None:
                pytest.fail(f"server output never said {text!r}:\n{self.output()[-2000:]}")
            time.sleep(0.05)


@contextmanager
def serve_process(
    cwd: Path,
    *args: str,
    env: Mapping[str, str] | None = None,
    wait_ready: bool = True,
    preexec: Callable[[], None] | None = None,
) -> Iterator[ServeProcess]:
    """Start `modelapi serve --port 0 ARGS`; yield it once it answers /ping; stop it after.

    `preexec` runs in the child before it starts (to lower a resource limit, say).
    """
    log = cwd / f"serve-{time.monotonic_ns()}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "modelapi", "serve", "--port", "0", *args],
            cwd=cwd,
            env=clean_environment(env),
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=preexec,
        )
    server = ServeProcess(process, log)
    try:
        deadline = time.monotonic() + 30
        while (match := _SERVING.search(server.output())) is None:
            if time.monotonic() > deadline or process.poll() is not None:
                pytest.fail(f"server did not start:\n{server.output()[-2000:]}")
            time.sleep(0.05)
        server.model, server.url = match.group(1), match.group(2)
        if wait_ready:
            wait_until_up(server.url)
        yield server
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
