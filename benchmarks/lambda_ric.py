"""The Lambda package run by the AWS Lambda runtime interface client, as the managed runtime does.

`awslambdaric` (the code the managed Python runtime runs) starts in `python3.12 -I -S` with only
the unpacked package and a runtime folder (boto3 and awslambdaric, as /var/runtime holds them)
on the path and Lambda's environment variables set. It talks to `RuntimeApi`, a minimal
implementation of the documented Lambda Runtime API served on 127.0.0.1: next invocation (with
the request id, deadline, function ARN and trace headers), response, invocation error and init
error.

`run_ric` answers events in one such process and reports the init duration as Lambda's REPORT
line does (process start to the first next-invocation request: the handler module imported),
and the first response (process start to the first answer posted). `ric_figures` is the
benchmark's entry point: medians over several cold starts.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import threading
import time
import uuid
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as installed_version
from pathlib import Path

from benchmarks.install import LAMBDA_PYTHON, uv

__all__ = ["RicRun", "RuntimeApi", "ensure_ric_runtime", "ric_figures", "run_ric", "unpack"]

_API = "/2018-06-01/runtime"
# Used when this environment has no awslambdaric of its own (the dev lock pins it otherwise).
_DEFAULT_RIC_VERSION = "4.2.2"
# awslambdaric's entry point with the path the managed runtime gives it: task root first.
_BOOTSTRAP = (
    "import os, sys; sys.path[:0] = [os.environ['LAMBDA_TASK_ROOT'],"
    " os.environ['LAMBDA_RUNTIME_DIR']]; from awslambdaric.__main__ import main;"
    " main(['awslambdaric', os.environ['_HANDLER']])"
)


@dataclass
class _Invocation:
    request_id: str
    event: bytes
    answer: bytes | None = None
    error: dict[str, object] | None = None


@dataclass
class RuntimeApi:
    """The Lambda Runtime API on 127.0.0.1: hands out queued events and records the answers."""

    timeout_ms: int = 15_000
    function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:modelapi"
    invocations: list[_Invocation] = field(default_factory=list)
    init_error: dict[str, object] | None = None
    first_next_at: float | None = None
    first_answer_at: float | None = None
    _pending: list[_Invocation] = field(default_factory=list)
    _changed: threading.Condition = field(default_factory=threading.Condition)
    _closed: bool = False

    def queue(self, event: object) -> str:
        """Queue one event for the next invocation; return its request id."""
        invocation = _Invocation(str(uuid.uuid4()), json.dumps(event).encode())
        with self._changed:
            self.invocations.append(invocation)
            self._pending.append(invocation)
            self._changed.notify_all()
        return invocation.request_id

    def wait_done(self, timeout_s: float) -> bool:
        """Wait until every queued event is answered (or init failed); False on timeout."""
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while self.init_error is None and any(
                i.answer is None and i.error is None for i in self.invocations
            ):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)
        return True

    def close(self) -> None:
        """Release any request still waiting for an event."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    def next_invocation(self) -> _Invocation | None:
        """The next queued event; waits (as Lambda's long poll does) until there is one."""
        with self._changed:
            if self.first_next_at is None:
                self.first_next_at = time.perf_counter()
            while not self._pending and not self._closed:
                self._changed.wait()
            return self._pending.pop(0) if self._pending else None

    def record(
        self, request_id: str, answer: bytes | None, error: dict[str, object] | None
    ) -> bool:
        """Record an invocation's answer or error; False for an unknown request id."""
        with self._changed:
            found = next((i for i in self.invocations if i.request_id == request_id), None)
            if found is None:
                return False
            found.answer, found.error = answer, error
            if self.first_answer_at is None:
                self.first_answer_at = time.perf_counter()
            self._changed.notify_all()
            return True

    def record_init_error(self, error: dict[str, object]) -> None:
        """Record the error the runtime reports when the handler cannot be loaded."""
        with self._changed:
            self.init_error = error
            self._changed.notify_all()

    @contextmanager
    def serving(self) -> Iterator[str]:
        """Serve the API on a free port of 127.0.0.1; yield its host:port."""
        server = _Server(("127.0.0.1", 0), _handler_for(self))
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"127.0.0.1:{server.server_address[1]}"
        finally:
            self.close()
            server.shutdown()
            server.server_close()
            thread.join(10)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        # A runtime that exits (after an init error) or is stopped drops its connection.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


def _handler_for(api: RuntimeApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            if self.path != f"{_API}/invocation/next":
                self._reply(404, b'{"errorMessage": "unknown path"}')
                return
            invocation = api.next_invocation()
            if invocation is None:
                self.close_connection = True
                return
            deadline_ms = int(time.time() * 1000) + api.timeout_ms
            self._reply(
                200,
                invocation.event,
                {
                    "Lambda-Runtime-Aws-Request-Id": invocation.request_id,
                    "Lambda-Runtime-Deadline-Ms": str(deadline_ms),
                    "Lambda-Runtime-Invoked-Function-Arn": api.function_arn,
                    "Lambda-Runtime-Trace-Id": _trace_id(),
                },
            )

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            parts = self.path.removeprefix(f"{_API}/").split("/")
            if parts == ["init", "error"]:
                api.record_init_error(
                    _error(body, self.headers.get("Lambda-Runtime-Function-Error-Type"))
                )
                self._reply(202, b'{"status": "OK"}')
            elif len(parts) == 3 and parts[0] == "invocation" and parts[2] in ("response", "error"):
                is_error = parts[2] == "error"
                error = (
                    _error(body, self.headers.get("Lambda-Runtime-Function-Error-Type"))
                    if is_error
                    else None
                )
                known = api.record(parts[1], None if is_error else body, error)
                self._reply(202 if known else 400, b'{"status": "OK"}')
            else:
                self._reply(404, b'{"errorMessage": "unknown path"}')

        def _reply(self, status: int, body: bytes, headers: Mapping[str, str] = {}) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Keep the runtime's requests out of the test output."""

    return Handler


def _trace_id() -> str:
    return f"Root=1-{uuid.uuid4().hex[:8]}-{uuid.uuid4().hex[:24]};Sampled=0"


def _error(body: bytes, error_type: str | None) -> dict[str, object]:
    try:
        decoded = json.loads(body or b"{}")
    except ValueError:
        decoded = {"raw": body.decode("utf-8", "replace")}
    return {"type": error_type or "", "body": decoded}


@dataclass(frozen=True)
class RicRun:
    """What one runtime-interface-client process answered, and how long its cold start took."""

    answers: list[object]
    errors: list[dict[str, object] | None]
    init_error: dict[str, object] | None
    init_ms: float | None
    first_response_ms: float | None
    stderr: str


def lambda_env(task_root: Path, runtime_dir: Path, handler: str) -> dict[str, str]:
    """The environment variables a managed Python 3.12 runtime sets for a function."""
    return {
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
        "AWS_LAMBDA_FUNCTION_NAME": "modelapi",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/modelapi",
        "AWS_LAMBDA_LOG_STREAM_NAME": "2026/01/01/[$LATEST]0123456789abcdef",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "LAMBDA_TASK_ROOT": str(task_root),
        "LAMBDA_RUNTIME_DIR": str(runtime_dir),
        "_HANDLER": handler,
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "PATH": "/usr/local/bin:/usr/bin:/bin",
    }


def run_ric(
    task_root: Path,
    runtime_dir: Path,
    events: Sequence[object],
    *,
    env: Mapping[str, str] | None = None,
    handler: str = "modelapi.aws_lambda.handler",
    python: Path = LAMBDA_PYTHON,
    timeout_s: float = 60,
) -> RicRun:
    """Answer `events` in one fresh awslambdaric process over the unpacked package."""
    api = RuntimeApi()
    for event in events:
        api.queue(event)
    with api.serving() as address:
        full_env = {
            **lambda_env(task_root, runtime_dir, handler),
            "AWS_LAMBDA_RUNTIME_API": address,
            **(env or {}),
        }
        started = time.perf_counter()
        process = subprocess.Popen(
            [str(python), "-I", "-S", "-c", _BOOTSTRAP],
            cwd=task_root,
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        try:
            finished = api.wait_done(timeout_s)
        finally:
            process.terminate()
            output, _ = process.communicate(timeout=30)
    if not finished:
        raise RuntimeError(f"no answer within {timeout_s} s: {output.decode()[-2000:]}")

    def since_start(at: float | None) -> float | None:
        return None if at is None else round((at - started) * 1000, 2)

    return RicRun(
        answers=[None if i.answer is None else json.loads(i.answer) for i in api.invocations],
        errors=[i.error for i in api.invocations],
        init_error=api.init_error,
        init_ms=since_start(api.first_next_at),
        first_response_ms=since_start(api.first_answer_at),
        stderr=output.decode("utf-8", "replace"),
    )


def ric_version() -> str:
    """The awslambdaric version to run: the one the dev lock installed here, else the default."""
    try:
        return installed_version("awslambdaric")
    except PackageNotFoundError:
        return _DEFAULT_RIC_VERSION


def ensure_ric_runtime(folder: Path, python: Path = LAMBDA_PYTHON) -> Path:
    """Install boto3 and awslambdaric for CPython 3.12 into `folder` (as /var/runtime holds them).

    Byte-compiled; a stamp keeps a rerun from installing again. Returns the folder.
    """
    wanted = f"awslambdaric=={ric_version()}"
    stamp = folder / ".ric-stamp"
    if stamp.is_file() and stamp.read_text() == wanted:
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    done = subprocess.run(
        [
            *uv(),
            "pip",
            "install",
            "--quiet",
            "--only-binary",
            ":all:",
            "--python-platform",
            "x86_64-manylinux_2_34",
            "--python-version",
            "3.12",
            "--target",
            str(folder),
            *(["--compile-bytecode", "--python", str(python)] if python.exists() else []),
            "boto3",
            wanted,
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    if done.returncode != 0:
        raise RuntimeError(f"installing {wanted} and boto3 failed: {done.stderr[-800:]}")
    stamp.write_text(wanted)
    return folder


def unpack(zip_path: Path, task_root: Path) -> Path:
    """Unpack a Lambda zip into an empty `task_root`, as Lambda lays it out in /var/task."""
    shutil.rmtree(task_root, ignore_errors=True)
    task_root.mkdir(parents=True)
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(task_root)
    return task_root


def ric_figures(
    zip_path: Path,
    event: object,
    work: Path,
    *,
    env: Mapping[str, str] | None = None,
    n_cold: int = 5,
) -> dict[str, object]:
    """Cold starts under awslambdaric: init and first-response medians (ms) over n_cold runs.

    Each run unpacks the zip afresh into `work` and answers `event` once in a new process.
    The runtime folder is installed under `work` on first use.
    """
    runtime_dir = ensure_ric_runtime(work / "ric-runtime")
    inits: list[float] = []
    firsts: list[float] = []
    for _ in range(n_cold):
        task_root = unpack(zip_path, work / "ric-task")
        run = run_ric(task_root, runtime_dir, [event], env=env)
        if run.init_ms is None or run.first_response_ms is None or run.errors[0] is not None:
            raise RuntimeError(f"the runtime did not answer: {run.init_error or run.stderr[-800:]}")
        inits.append(run.init_ms)
        firsts.append(run.first_response_ms)
    shutil.rmtree(work / "ric-task", ignore_errors=True)
    return {
        "ric_init_median_ms": round(statistics.median(inits), 2),
        "ric_first_response_median_ms": round(statistics.median(firsts), 2),
        "ric_first_response_min_ms": round(min(firsts), 2),
        "ric_first_response_max_ms": round(max(firsts), 2),
        "ric_runs": n_cold,
    }
