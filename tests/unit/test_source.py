"""ModelSource: load once, explain failures, retry, and swap to a promoted version."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import msgspec
import pytest

from modelapi.bundle import Bundle, read_bundle
from modelapi.errors import ModelUnavailable
from modelapi.source import ModelSource
from modelapi.store.local import LocalStore


def _renamed(bundle: Bundle, name: str) -> Bundle:
    return Bundle(msgspec.structs.replace(bundle.manifest, name=name), dict(bundle.files))


@pytest.fixture
def store(tmp_path: Path, builtin_bundle: Bundle) -> LocalStore:
    store = LocalStore(tmp_path / "models")
    store.put(_renamed(builtin_bundle, "m"))
    store.set_alias("m", "production", 1)
    return store


def test_loads_the_aliased_version_once(store: LocalStore) -> None:
    source = ModelSource("m@production", store.uri)
    first = source.get()
    assert first.model_id == "m:1"
    assert source.get() is first
    assert source.predictor is not None


def test_a_missing_model_gives_the_reason_then_loads_when_it_appears(
    tmp_path: Path, builtin_bundle: Bundle, caplog: pytest.LogCaptureFixture
) -> None:
    store = LocalStore(tmp_path / "empty")
    source = ModelSource("late", store.uri)
    with caplog.at_level(logging.ERROR), pytest.raises(ModelUnavailable, match="no model named"):
        source.get()
    assert source.predictor is None
    assert "could not be loaded" in caplog.text
    store.put(_renamed(builtin_bundle, "late"))
    assert source.get().model_id == "late:1"


def test_refresh_swaps_to_a_promoted_version(store: LocalStore, builtin_bundle: Bundle) -> None:
    source = ModelSource("m@production", store.uri)
    assert source.get().model_id == "m:1"
    assert source.refresh() is False
    store.put(_renamed(builtin_bundle, "m"))
    store.set_alias("m", "production", 2)
    assert source.refresh() is True
    assert source.get().model_id == "m:2"


def test_a_broken_new_version_keeps_the_old_one_serving(
    store: LocalStore, builtin_bundle: Bundle, caplog: pytest.LogCaptureFixture
) -> None:
    source = ModelSource("m@production", store.uri)
    assert source.get().model_id == "m:1"
    stored = store.put(_renamed(builtin_bundle, "m"))
    artifact = store.root / "m" / str(stored.version) / "linear.json"
    artifact.write_bytes(artifact.read_bytes().replace(b"[", b"[ ", 1))
    store.set_alias("m", "production", stored.version)
    with caplog.at_level(logging.ERROR):
        assert source.refresh() is False
    assert source.get().model_id == "m:1"
    assert "still serving m:1" in caplog.text
    assert "linear.json" in caplog.text


def test_refresh_if_due_respects_the_interval(store: LocalStore, builtin_bundle: Bundle) -> None:
    hourly = ModelSource("m@production", store.uri, reload_interval_s=3600)
    off = ModelSource("m@production", store.uri, reload_interval_s=0)
    eager = ModelSource("m@production", store.uri, reload_interval_s=1e-9)
    for source in (hourly, off, eager):
        assert source.get().model_id == "m:1"
    store.put(_renamed(builtin_bundle, "m"))
    store.set_alias("m", "production", 2)
    for source in (hourly, off, eager):
        source.refresh_if_due()
    deadline = time.monotonic() + 10  # refreshed in a thread beside the caller
    while eager.get().model_id != "m:2":
        assert time.monotonic() < deadline, "the due refresh never swapped the model"
        time.sleep(0.01)
    assert hourly.get().model_id == "m:1"
    assert off.get().model_id == "m:1"


def test_a_plain_name_falls_back_to_the_builtin_model(tmp_path: Path) -> None:
    source = ModelSource("diabetes", str(tmp_path / "nothing-here"))
    assert source.get().model_id == "diabetes:1"


def test_a_bundle_folder_is_served_directly(builtin_bundle: Bundle, tmp_path: Path) -> None:
    from modelapi.bundle import write_bundle

    folder = write_bundle(builtin_bundle, tmp_path / "bundle")
    source = ModelSource(str(folder), None)
    assert source.get().model_id == "diabetes:1"
    assert read_bundle(folder).manifest == builtin_bundle.manifest


def test_refresh_moves_from_the_builtin_model_to_a_stored_one(
    tmp_path: Path, builtin_bundle: Bundle, caplog: pytest.LogCaptureFixture
) -> None:
    store = LocalStore(tmp_path / "models")
    source = ModelSource("diabetes", store.uri)
    assert source.get().model_id == "diabetes:1"
    with caplog.at_level(logging.WARNING):
        assert source.refresh() is False
    assert "check failed" not in caplog.text
    store.put(builtin_bundle)
    assert source.refresh() is True
    assert source.get().model_id == "diabetes:1"
    assert source.refresh() is False
