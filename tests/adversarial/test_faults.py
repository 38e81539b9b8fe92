"""Faults: S3 failing in every way a server meets, and processes killed half-way through a write.

The S3 store sits behind a proxy (tests/adversarial/s3_faults.py) in front of the moto server,
which refuses connections, never answers, answers 403, 404 or 500, answers with garbage, or
cuts answers in half. A server that starts during the fault answers 503 with the reason and
logs it; once S3 is back it loads the model on its own; a fault during a reload keeps the
version it serves. Each runs for both ways the store reads objects (the standard library and
botocore). An S3 that drips its answers a byte at a time never stops `modelapi serve` from
answering /ping and /health, at start-up or during a reload, and each dripping read is
abandoned at the store's deadline.

`modelapi models copy` and `modelapi train` are killed with SIGKILL at random points: no
version that is not complete may ever be visible in the store, and the next run succeeds.
"""

from __future__ import annotations

import logging
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import boto3
import msgspec
import pytest

import modelapi.app
import modelapi.source
from modelapi.app import create_app
from modelapi.bundle import Bundle
from modelapi.config import Settings
from modelapi.errors import ErrorBody
from modelapi.store import ModelStore, open_store
from modelapi.store.local import LocalStore
from modelapi.store.s3 import S3Store
from tests.adversarial.budget import IS_LONG, scaled
from tests.adversarial.s3_faults import FaultProxy, fault_proxy
from tests.conftest import PIMA_EXAMPLE
from tests.servers import HttpSend, clean_environment, serve_app, serve_process

FAULTS = ["refuse", "silent", "403", "404", "500", "garbage", "partial"]
REASONS = {
    "refuse": "cannot reach the S3 endpoint",
    "silent": "ReadTimeoutError",
    "403": "access denied",
    "404": "has no alias 'production'",
    "500": "InternalError",
    "garbage": "cannot reach the S3 endpoint",
    "partial": "cannot reach the S3 endpoint",
}
KILLS = scaled(3, 12)


@pytest.fixture
def s3_model(s3_store_uri: str, builtin_bundle: Bundle) -> str:
    """diabetes:1 in a new bucket on moto, with production pointing at it; returns the URI."""
    store = S3Store(s3_store_uri)
    store.put(builtin_bundle)
    store.set_alias("diabetes", "production", 1)
    return s3_store_uri


@pytest.fixture
def proxy(aws_env: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultProxy]:
    """The fault proxy in front of moto, as the S3 endpoint every store in this process uses."""
    with fault_proxy(aws_env) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", proxy.url)
        yield proxy


@pytest.fixture
def short_timeouts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Open S3 stores with 0.5 s timeouts and one attempt, so a silent endpoint costs 1 s."""

    def quick(uri: str, *, read_deadline_s: float | None = None) -> ModelStore:
        if uri.startswith("s3://"):
            return S3Store(uri, connect_timeout_s=0.5, read_timeout_s=0.5, max_attempts=1)
        return open_store(uri, read_deadline_s=read_deadline_s)

    monkeypatch.setattr(modelapi.source, "open_store", quick)


def _until(check: Callable[[], bool], what: str, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout_s} s"
        time.sleep(0.05)


def _moto_store(uri: str, endpoint: str, monkeypatch: pytest.MonkeyPatch) -> S3Store:
    """A store that talks to moto directly, past the proxy (the operator's side)."""
    with monkeypatch.context() as patch:
        patch.setenv("AWS_ENDPOINT_URL_S3", endpoint)
        return S3Store(uri)


@pytest.mark.usefixtures("s3_read_path", "short_timeouts")
@pytest.mark.parametrize("fault", FAULTS)
def test_a_server_started_during_an_s3_fault_answers_503_then_recovers_and_keeps_its_version(
    fault: str,
    s3_model: str,
    proxy: FaultProxy,
    aws_env: str,
    builtin_bundle: Bundle,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    proxy.mode = fault
    settings = Settings(model="diabetes@production", store=s3_model, reload_interval_s=0.2)
    with caplog.at_level(logging.WARNING, logger="modelapi"):
        app = create_app(settings)
    [logged] = [r.getMessage() for r in caplog.records if "could not be loaded" in r.getMessage()]
    assert logged.startswith("model diabetes@production could not be loaded: ")
    assert REASONS[fault] in logged
    try:
        with serve_app(app) as url, HttpSend(url) as send:
            for method, path in (("GET", "/health"), ("POST", "/predict")):
                status, _, body = send(method, path, {}, PIMA_EXAMPLE if method == "POST" else b"")
                assert status == 503
                error = msgspec.json.decode(body, type=ErrorBody)
                assert error.error == "model_unavailable"
                assert REASONS[fault] in error.details[0].reason
            assert send("GET", "/ping", {}, b"")[0] == 200

            proxy.mode = "pass"  # S3 is back: the server loads the model on its own
            _until(lambda: send("GET", "/health", {}, b"")[0] == 200, "recovery")
            assert send("POST", "/predict", {}, PIMA_EXAMPLE)[0] == 200

            # A new version is promoted while S3 fails: the served one is kept.
            operator = _moto_store(s3_model, aws_env, monkeypatch)
            operator.put(builtin_bundle)
            proxy.mode = fault
            caplog.clear()
            operator.set_alias("diabetes", "production", 2)
            _until(lambda: "keeping diabetes:1" in caplog.text, "a failed re-check")
            for _ in range(10):
                status, headers, _ = send("POST", "/predict", {}, PIMA_EXAMPLE)
                assert (status, headers["x-model-version"]) == (200, "diabetes:1")
            proxy.mode = "pass"
            _until(
                lambda: send("GET", "/model", {}, b"")[1].get("x-model-version") == "diabetes:2",
                "the promoted version being served",
            )
    finally:
        app.close()


@pytest.mark.usefixtures("s3_read_path")
def test_modelapi_serve_logs_the_s3_fault_at_start_up_and_answers_503(
    s3_model: str, proxy: FaultProxy, tmp_path: Path
) -> None:
    proxy.mode = "403"
    env = {
        "AWS_ENDPOINT_URL_S3": proxy.url,
        "MODELAPI_STORE": s3_model,
        "MODELAPI_MODEL": "diabetes@production",
    }
    with serve_process(tmp_path, env=env) as server:
        assert server.model == "diabetes@production"
        with HttpSend(server.url) as send:
            status, _, body = send("GET", "/health", {}, b"")
        assert status == 503
        assert b"access denied" in body
        output = server.output()
        assert "model diabetes@production could not be loaded: access denied" in output
        # modelapi's own error says all there is: one line, no traceback
        assert "Traceback" not in output
        assert output.count("could not be loaded") == 1


@pytest.mark.usefixtures("s3_read_path")
@pytest.mark.skipif(
    not IS_LONG, reason="long variant (--long): waits out the S3 store's real timeouts"
)
def test_a_silent_s3_endpoint_delays_start_up_by_a_bounded_time(
    s3_model: str, proxy: FaultProxy, tmp_path: Path
) -> None:
    proxy.mode = "silent"
    env = {
        "AWS_ENDPOINT_URL_S3": proxy.url,
        "MODELAPI_STORE": s3_model,
        "MODELAPI_MODEL": "diabetes@production",
    }
    started = time.monotonic()
    with serve_process(tmp_path, env=env) as server:
        # connect 2 s + read 5 s, two attempts: the process is up and says why, not hung.
        assert time.monotonic() - started < 60
        server.wait_for("ReadTimeoutError")
        with HttpSend(server.url) as send:
            assert send("GET", "/health", {}, b"")[0] == 503


def _answers_at_once(url: str, health: int) -> str:
    """/ping and /health answer well inside the store's deadline; return /health's body."""
    with HttpSend(url) as send:
        for _ in range(10):
            started = time.monotonic()
            assert send("GET", "/ping", {}, b"")[0] == 200
            status, _, body = send("GET", "/health", {}, b"")
            assert status == health
            assert time.monotonic() - started < 1
    return body.decode()


@pytest.mark.usefixtures("aws_env")
def test_a_server_starting_while_s3_drips_answers_ping_and_health_at_once(
    s3_model: str, proxy: FaultProxy, tmp_path: Path
) -> None:
    # The way of reading does not matter here (both keep the deadline: the store tests), so
    # this runs once, with the credentials in the environment.
    proxy.mode = "drip"
    env = {
        "AWS_ENDPOINT_URL_S3": proxy.url,
        "MODELAPI_STORE": s3_model,
        "MODELAPI_MODEL": "diabetes@production",
        "MODELAPI_STORE_DEADLINE_S": "7",
    }
    with serve_process(tmp_path, env=env) as server:
        # Up while the first read still drips, before its deadline: the start-up waited for
        # it 5 s at most, and the server says the model is not loaded yet (not why it failed).
        assert server.model == "diabetes@production"
        assert "has not been loaded yet" in _answers_at_once(server.url, 503)
        assert proxy.dripping == 1
        server.wait_for("is still loading after 5 s")
        server.wait_for("S3 did not finish a read of", timeout_s=15)  # abandoned at 7 s
        assert "within its 7 s deadline" in server.output()
        with HttpSend(server.url) as send:
            assert b"deadline" in send("GET", "/health", {}, b"")[2]


@pytest.mark.usefixtures("s3_read_path")
def test_a_reload_from_a_dripping_s3_never_stops_the_server_answering(
    s3_model: str,
    proxy: FaultProxy,
    tmp_path: Path,
    aws_env: str,
    builtin_bundle: Bundle,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = {
        "AWS_ENDPOINT_URL_S3": proxy.url,
        "MODELAPI_STORE": s3_model,
        "MODELAPI_MODEL": "diabetes@production",
        "MODELAPI_RELOAD_INTERVAL_S": "0.2",
        "MODELAPI_STORE_DEADLINE_S": "2",
    }
    with serve_process(tmp_path, env=env) as server:
        assert server.model == "diabetes:1"
        operator = _moto_store(s3_model, aws_env, monkeypatch)
        operator.put(builtin_bundle)
        proxy.mode = "drip"
        operator.set_alias("diabetes", "production", 2)
        _until(lambda: proxy.dripping > 0, "a dripping reload")
        assert '"diabetes:1"' in _answers_at_once(server.url, 200)
        server.wait_for("keeping diabetes:1: S3 did not finish a read of")
        assert "within its 2 s deadline" in server.output()
        proxy.mode = "pass"
        with HttpSend(server.url) as send:
            _until(
                lambda: send("GET", "/model", {}, b"")[1].get("x-model-version") == "diabetes:2",
                "the promoted version being served",
            )


# ---- killed half-way through a write -----------------------------------------------------------


def _assert_only_complete_versions(store: ModelStore) -> int:
    """Every listed version reads back whole and verified; aliases name listed versions."""
    count = 0
    for name in store.names():
        versions = store.versions(name)
        for version in versions:
            bundle = store.read(name, version)  # verifies every artifact's size and sha256
            assert set(bundle.files) == set(bundle.manifest.artifacts)
            count += 1
        for alias, version in store.aliases(name).items():
            assert version in versions, f"{name}@{alias} names an incomplete version"
    return count


def _run_and_kill(command: list[str], env: dict[str, str], cwd: Path, after_s: float) -> int:
    process = subprocess.Popen(
        command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        process.wait(after_s)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGKILL)
    return process.wait(30)


def _full_run_s(command: list[str], env: dict[str, str], cwd: Path) -> float:
    started = time.monotonic()
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, timeout=240)
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    return time.monotonic() - started


@pytest.fixture
def source_store(tmp_path: Path, builtin_bundle: Bundle) -> LocalStore:
    """Six versions of diabetes with aliases: a copy with something to be killed in."""
    store = LocalStore(tmp_path / "source")
    for _ in range(6):
        store.put(builtin_bundle)
    store.set_alias("diabetes", "production", 4)
    store.set_alias("diabetes", "staging", 6)
    return store


_CLAIMED = re.compile(r"if no write is running, (?:delete|remove) (\S+?)/? and try again")


def _copy_to_the_end(command: list[str], env: dict[str, str], cwd: Path) -> None:
    """Run the copy until it succeeds, clearing crashed claims the way its error says to."""
    for _ in range(10):
        result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, timeout=120)
        if result.returncode == 0:
            return
        message = result.stderr.decode()
        # A version claimed by a killed copy is never taken over silently: the error names
        # the exact leftover to delete once no write is running.
        match = _CLAIMED.search(message)
        assert match, message[-2000:]
        _delete(match.group(1))
    pytest.fail("the copy did not finish after clearing its crashed claims")


def _delete(location: str) -> None:
    if location.startswith("s3://"):
        bucket, _, prefix = location.removeprefix("s3://").partition("/")
        objects = boto3.client("s3").list_objects_v2(Bucket=bucket, Prefix=prefix + "/")
        for item in objects.get("Contents", []):
            boto3.client("s3").delete_object(Bucket=bucket, Key=item["Key"])
    else:
        shutil.rmtree(location)


@pytest.mark.parametrize("destination", ["local", "s3"])
def test_a_copy_killed_at_any_point_leaves_no_half_written_version(
    destination: str, source_store: LocalStore, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    # The S3 fixtures point AWS_* (in this process's environment) at moto; the child inherits it.
    uri = (
        request.getfixturevalue("s3_store_uri") if destination == "s3" else str(tmp_path / "copies")
    )
    env = clean_environment()
    command = [sys.executable, "-m", "modelapi", "models", "copy", "diabetes",
               "--store", str(source_store.root), "--to", uri]  # fmt: skip
    probe_uri = uri + "-probe" if destination == "local" else uri.replace("/models", "/probe")
    probe = [*command[:-1], probe_uri]
    whole_s = _full_run_s(probe, env, tmp_path)
    rng = random.Random(KILLS)
    destination_store = open_store(uri)
    for _ in range(KILLS):
        _run_and_kill(command, env, tmp_path, rng.uniform(0.2, whole_s))
        _assert_only_complete_versions(destination_store)
    _copy_to_the_end(command, env, tmp_path)
    assert _assert_only_complete_versions(destination_store) == 6
    assert destination_store.aliases("diabetes") == {"production": 4, "staging": 6}


def _kill_while_writing(command: list[str], cwd: Path, folder: Path, delays_s: list[float]) -> None:
    """Run `command` once per delay, together; once a new version folder appears under
    `folder`, SIGKILL each run that delay later."""
    before = set(folder.iterdir()) if folder.exists() else set()
    processes = [
        subprocess.Popen(
            command,
            cwd=cwd,
            env=clean_environment(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in delays_s
    ]
    try:
        while any(p.poll() is None for p in processes):
            if folder.exists() and any(p.name.isdigit() for p in set(folder.iterdir()) - before):
                started = time.monotonic()
                for process, delay_s in sorted(
                    zip(processes, delays_s, strict=True), key=lambda x: x[1]
                ):
                    time.sleep(max(0.0, started + delay_s - time.monotonic()))
                    process.send_signal(signal.SIGKILL)
                break
            time.sleep(0.001)
    finally:
        for process in processes:
            process.wait(60)


def test_training_killed_while_it_writes_leaves_no_half_written_version(
    pima_csv: Path, tmp_path: Path
) -> None:
    # Training takes seconds and writes for a few milliseconds: each run is killed within
    # 4 ms of the first new version folder, which leaves bundles half-written (seen: a
    # folder holding only linear.json and a temporary model.skops).
    store_root = tmp_path / "models"
    command = [sys.executable, "-m", "modelapi", "train", str(pima_csv), "--name", "pima",
               "--store", str(store_root)]  # fmt: skip
    store = LocalStore(store_root)
    rng = random.Random(KILLS)
    for _ in range(scaled(1, 4)):
        delays = [rng.uniform(0, 0.004) for _ in range(3)]
        _kill_while_writing(command, tmp_path, store_root / "pima", delays)
        _assert_only_complete_versions(store)
    before = _assert_only_complete_versions(store)
    result = subprocess.run(command, cwd=tmp_path, env=clean_environment(), capture_output=True)
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    assert _assert_only_complete_versions(store) == before + 1
