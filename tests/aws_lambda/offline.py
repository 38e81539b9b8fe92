"""serverless-offline started on the generated project: API Gateway's events built by its code."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.aws_lambda.serverless_project import OSLS, free_port, tool_env

__all__ = ["Offline", "running_offline"]


@dataclass(frozen=True)
class Offline:
    """A running `osls offline`: its base URL and what it printed so far."""

    url: str
    output: list[str]

    def printed(self) -> str:
        """Everything the process printed until now."""
        return "".join(self.output)

    def api_key(self) -> str:
        """The API key serverless-offline made for the private routes (it prints it)."""
        found = re.search(r"Key with token: '([^']+)'", self.printed())
        assert found, self.printed()[-2000:]
        return found.group(1)


@contextmanager
def running_offline(project: Path, *args: str, start_timeout_s: float = 90) -> Iterator[Offline]:
    """Start `osls offline` in the project on free ports of 127.0.0.1; stop it afterwards."""
    http_port, lambda_port = free_port(), free_port()
    command = [
        str(OSLS),
        "offline",
        "--host",
        "127.0.0.1",
        "--httpPort",
        str(http_port),
        "--lambdaPort",
        str(lambda_port),
        *args,
    ]
    process = subprocess.Popen(
        command,
        cwd=project,
        env=tool_env(project.parent / "home"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its handler processes are stopped with it, by group
    )
    output: list[str] = []
    assert process.stdout is not None
    reader = threading.Thread(target=lambda: output.extend(process.stdout or ()), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + start_timeout_s
        while "Server ready" not in "".join(output):
            assert process.poll() is None, "".join(output)[-3000:]
            assert time.monotonic() < deadline, "".join(output)[-3000:]
            time.sleep(0.1)
        yield Offline(f"http://127.0.0.1:{http_port}", output)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(20)
        reader.join(5)
        process.stdout.close()
