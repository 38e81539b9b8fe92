"""Hot reload under load: an alias flipped between versions while requests keep coming."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from modelapi.app import create_app
from modelapi.bundle import Bundle, artifact_entry
from modelapi.config import Settings
from modelapi.predictor import Predictor
from modelapi.store.local import LocalStore
from tests.conftest import PIMA_EXAMPLE
from tests.oracles import answer
from tests.servers import HttpSend, serve_app

N_CLIENTS = 6


def _shifted(bundle: Bundle, delta: float) -> Bundle:
    """The bundle with its intercept moved, so its answers differ from the original's."""
    spec = msgspec.json.decode(bundle.files["linear.json"])
    spec["intercept"] = [value + delta for value in spec["intercept"]]
    data = msgspec.json.encode(spec)
    artifacts = {**bundle.manifest.artifacts, "linear.json": artifact_entry(data)}
    manifest = msgspec.structs.replace(bundle.manifest, artifacts=artifacts)
    return Bundle(manifest, {**bundle.files, "linear.json": data})


@pytest.fixture
def store(tmp_path: Path, builtin_bundle: Bundle) -> LocalStore:
    """A store with diabetes:1 and a different diabetes:2; production points at 1."""
    store = LocalStore(tmp_path / "models")
    store.put(builtin_bundle)
    store.put(_shifted(builtin_bundle, 0.5))
    store.set_alias("diabetes", "production", 1)
    return store


def _expected_bodies(store: LocalStore) -> dict[str, object]:
    row = list(msgspec.json.decode(PIMA_EXAMPLE).values())
    expected: dict[str, object] = {}
    for version in store.versions("diabetes"):
        predictor = Predictor(store.read("diabetes", version))
        expected[f"diabetes:{version}"] = answer(predictor, predictor.predict([row])[0])
    return expected


class _Load:
    """Clients sending the Pima example in a loop, each on its own keep-alive connection."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.stop = threading.Event()
        self.answers: list[tuple[int, str | None, bytes]] = []
        self.failures: list[BaseException] = []
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run) for _ in range(N_CLIENTS)]

    def _run(self) -> None:
        try:
            with HttpSend(self.url) as send:
                while not self.stop.is_set():
                    status, headers, body = send("POST", "/predict", {}, PIMA_EXAMPLE)
                    with self._lock:
                        self.answers.append((status, headers.get("x-model-version"), body))
        except BaseException as exc:  # a failed request must fail the test, not vanish
            self.failures.append(exc)

    def __enter__(self) -> _Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self._threads:
            thread.join(30)

    def versions_since(self, index: int) -> set[str | None]:
        """The versions answered since the index-th answer."""
        with self._lock:
            return {version for _, version, _ in self.answers[index:]}

    def count(self) -> int:
        """How many answers so far."""
        with self._lock:
            return len(self.answers)


def _wait_for(load: _Load, version: str, timeout_s: float = 10) -> None:
    """Wait until answers come from `version` alone."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        start = load.count()
        time.sleep(0.1)
        if load.versions_since(start) == {version}:
            return
    pytest.fail(f"the server did not switch to {version} within {timeout_s} s")


@pytest.fixture
def url(store: LocalStore) -> Iterator[str]:
    """A live server for diabetes@production that re-checks the alias every 50 ms."""
    settings = Settings(model="diabetes@production", store=str(store.root), reload_interval_s=0.05)
    with serve_app(create_app(settings)) as url:
        yield url


def test_flipping_the_alias_under_load_fails_no_request(url: str, store: LocalStore) -> None:
    expected = _expected_bodies(store)
    assert expected["diabetes:1"] != expected["diabetes:2"]
    with _Load(url) as load:
        _wait_for(load, "diabetes:1")
        for flip in range(6):
            store.set_alias("diabetes", "production", 2 if flip % 2 == 0 else 1)
            _wait_for(load, "diabetes:2" if flip % 2 == 0 else "diabetes:1")
    assert not load.failures
    assert len(load.answers) > 50
    for status, version, body in load.answers:
        assert status == 200
        assert version in expected
        assert msgspec.json.decode(body) == expected[version]  # each answer is one version's


def test_a_broken_version_is_logged_and_the_old_one_keeps_serving(
    url: str, store: LocalStore, builtin_bundle: Bundle, caplog: pytest.LogCaptureFixture
) -> None:
    broken = store.put(_shifted(builtin_bundle, -0.5))
    artifact = Path(store.root) / "diabetes" / str(broken.version) / "linear.json"
    data = bytearray(artifact.read_bytes())
    data[len(data) // 2] ^= 0x01
    artifact.write_bytes(bytes(data))

    with caplog.at_level(logging.ERROR, logger="modelapi"), _Load(url) as load:
        _wait_for(load, "diabetes:1")
        store.set_alias("diabetes", "production", broken.version)
        deadline = time.monotonic() + 10
        while "could not be reloaded" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.02)
        start = load.count()
        time.sleep(0.3)
        assert load.versions_since(start) == {"diabetes:1"}
        store.set_alias("diabetes", "production", 2)
        _wait_for(load, "diabetes:2")
    assert "could not be reloaded, still serving diabetes:1" in caplog.text
    assert "linear.json" in caplog.text  # the log names the bad file
    assert not load.failures
    assert {status for status, _, _ in load.answers} == {200}
    assert {version for _, version, _ in load.answers} == {"diabetes:1", "diabetes:2"}
    with HttpSend(url) as send:
        assert send("GET", "/health", {}, b"")[0] == 200
