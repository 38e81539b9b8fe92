"""A store can never make a process hold more than a bundle may: every read has a bound.

A gibibyte-sized artifact beside a good manifest (a sparse file: no disk used), a manifest or
an alias far over its limit: each is refused after reading at most its bound, measured as the
peak of Python's allocations (tracemalloc) while the read runs. Before the bounds, these reads
took a gibibyte and more.
"""

from __future__ import annotations

import logging
import os
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import msgspec
import pytest

from modelapi.bundle import MANIFEST, MAX_ARTIFACT_BYTES, MAX_MANIFEST_BYTES, Bundle
from modelapi.errors import BundleError
from modelapi.source import ModelSource
from modelapi.store import MAX_ALIAS_BYTES
from modelapi.store.local import LocalStore

GIB = 1024**3
# Far above any bound below that is not MAX_MANIFEST_BYTES, far below what an unbounded read takes.
PEAK_BYTES = 8 * 1024 * 1024


def _peak(action: Callable[[], object]) -> int:
    """The peak of Python's allocations, in bytes, while `action` runs (its errors are kept)."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        action()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


def _refused(action: Callable[[], object], match: str) -> Callable[[], object]:
    def run() -> None:
        with pytest.raises(BundleError, match=match):
            action()

    return run


def _sparse(path: Path, size: int) -> None:
    with open(path, "wb") as handle:
        handle.truncate(size)


@pytest.fixture
def store(tmp_path: Path, builtin_bundle: Bundle) -> LocalStore:
    """diabetes:1 and diabetes:2 in a folder; production points at 1."""
    store = LocalStore(tmp_path / "models")
    store.put(builtin_bundle)
    store.put(builtin_bundle)
    store.set_alias("diabetes", "production", 1)
    return store


def test_a_gibibyte_artifact_beside_a_good_manifest_is_refused_unread_at_each_reload(
    store: LocalStore, caplog: pytest.LogCaptureFixture
) -> None:
    source = ModelSource("diabetes@production", store.uri)
    assert source.load()
    _sparse(store.root / "diabetes" / "2" / "linear.json", GIB)
    store.set_alias("diabetes", "production", 2)
    with caplog.at_level(logging.ERROR):
        for _ in range(3):  # as a reload interval would
            assert _peak(source.refresh) < PEAK_BYTES
    assert source.predictor is not None
    assert source.predictor.model_id == "diabetes:1"
    assert f"linear.json: size {GIB} bytes, manifest says" in caplog.text


def test_a_manifest_declaring_an_artifact_over_the_cap_is_refused_unread(
    store: LocalStore,
) -> None:
    folder = store.root / "diabetes" / "2"
    manifest = msgspec.json.decode((folder / MANIFEST).read_bytes())
    manifest["artifacts"]["linear.json"]["size"] = MAX_ARTIFACT_BYTES + 1
    (folder / MANIFEST).write_bytes(msgspec.json.encode(manifest))
    _sparse(folder / "linear.json", MAX_ARTIFACT_BYTES + 1)
    read = _refused(
        lambda: store.read("diabetes", 2, serving_only=True),
        rf"linear.json is said to hold {MAX_ARTIFACT_BYTES + 1} bytes.*MAX_ARTIFACT_BYTES",
    )
    assert _peak(read) < PEAK_BYTES


def test_a_gibibyte_manifest_or_alias_is_refused_unread(store: LocalStore) -> None:
    _sparse(store.root / "diabetes" / "2" / MANIFEST, GIB)
    _sparse(store.root / "diabetes" / "aliases" / "huge", GIB)
    manifest = _refused(
        lambda: store.read_manifest("diabetes", 2), rf"size {GIB} bytes, limit {MAX_MANIFEST_BYTES}"
    )
    bundle = _refused(
        lambda: store.read("diabetes", 2), rf"size {GIB} bytes, limit {MAX_MANIFEST_BYTES}"
    )
    alias = _refused(
        lambda: store.resolve_alias("diabetes", "huge"),
        rf"size {GIB} bytes, limit {MAX_ALIAS_BYTES}",
    )
    for read in (manifest, bundle, alias):
        assert _peak(read) < PEAK_BYTES


def test_a_named_pipe_posing_as_an_artifact_is_refused_without_waiting(store: LocalStore) -> None:
    artifact = store.root / "diabetes" / "2" / "linear.json"
    artifact.unlink()
    os.mkfifo(artifact)  # opened for reading, it would wait for a writer forever
    with pytest.raises(BundleError, match="not a regular file"):
        store.read("diabetes", 2, serving_only=True)
